#pragma once
// The API server's syntax checks for names, label keys and values, port names and base64, as pure
// functions over text. Each check* function returns an empty string_view when the text is valid,
// else a short message in the API server's words (without the offending value, which the caller
// quotes). Used by the decoders; usable by anyone who builds objects by hand.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace kdp::k8s::detail {

inline constexpr std::size_t kDns1123LabelMaxLength = 63;
inline constexpr std::size_t kDns1123SubdomainMaxLength = 253;
inline constexpr std::size_t kQualifiedNameMaxLength = 63;
inline constexpr std::size_t kLabelValueMaxLength = 63;
inline constexpr std::size_t kIanaSvcNameMaxLength = 15;
inline constexpr std::size_t kTotalAnnotationSizeLimit = 256 * 1024;  // apimachinery's limit
inline constexpr std::size_t kMaxSecretSize = 1024 * 1024;            // core/v1 MaxSecretSize

/// RFC 1123 label: [a-z0-9]([-a-z0-9]*[a-z0-9])?, at most 63 (namespace and Namespace names,
/// hostnames, port names).
std::string_view checkDns1123Label(std::string_view s);
/// RFC 1123 subdomain: labels joined by '.', at most 253 (most object names, node names).
std::string_view checkDns1123Subdomain(std::string_view s);
/// RFC 1035 label: [a-z]([-a-z0-9]*[a-z0-9])?, at most 63 (Service names).
std::string_view checkDns1035Label(std::string_view s);
/// An RFC 1123 subdomain, or "*." followed by one (Ingress hosts, TLS hosts).
std::string_view checkWildcardDns1123Subdomain(std::string_view s);
/// IANA_SVC_NAME (RFC 6335): at most 15, [a-z0-9-], at least one letter, no leading, trailing or
/// double '-'. Named targetPorts and container port names.
std::string_view checkIanaSvcName(std::string_view s);
/// A label or annotation key: optional "<DNS-1123 subdomain>/" prefix, then a name of at most 63
/// of [A-Za-z0-9_.-] starting and ending with an alphanumeric.
std::string_view checkQualifiedName(std::string_view s);
/// A label value: empty, or at most 63 of [A-Za-z0-9_.-] starting and ending alphanumeric.
std::string_view checkLabelValue(std::string_view s);
/// A Secret/ConfigMap data key: [-._a-zA-Z0-9]+, at most 253, not "." or "..".
std::string_view checkConfigMapKey(std::string_view s);
/// "example.com/path": a DNS-1123 subdomain, '/', then a non-empty path (IngressClass controller).
std::string_view checkDomainPrefixedPath(std::string_view s);

/// Standard base64 (RFC 4648 alphabet with '=' padding) as Go's base64.StdEncoding decodes it,
/// which is what the API server uses for Secret data: '\r' and '\n' are ignored anywhere, padding
/// is required, nothing may follow it. Returns nullopt on any other byte or a bad length.
std::optional<std::string> decodeBase64(std::string_view text);

}  // namespace kdp::k8s::detail
