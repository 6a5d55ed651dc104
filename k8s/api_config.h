#pragma once
// How to reach the Kubernetes API: from a kubeconfig file (--kubeconfig FILE) or from inside a
// pod (in-cluster config). Parsing is pure: file contents and the environment come in through
// callbacks, so that tests need neither files nor a pod.
//
// Supported kubeconfig fields (current-context only): clusters[].cluster.{server,
// certificate-authority-data, certificate-authority, insecure-skip-tls-verify, tls-server-name},
// users[].user.{token, tokenFile, client-certificate-data, client-certificate,
// client-key-data, client-key}. Relative file paths are relative to the kubeconfig's directory,
// as kubectl reads them. Unsupported authentication (exec, auth-provider, username/password) is
// refused with a message naming it rather than silently connecting anonymously.

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kdp::k8s {

/// A configuration that cannot work; the message is one line naming the file and field.
struct ApiConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ApiConfig {
  std::string origin;  // "--kubeconfig FILE" or "in-cluster config": for messages
  std::string server;  // the URL as given, e.g. "https://127.0.0.1:6443"
  std::string host;    // "127.0.0.1", "::1" (no brackets), "kubernetes.default.svc"
  std::uint16_t port = 443;
  std::string basePath;  // path prefix of the server URL without trailing '/', usually ""

  std::string caPem;        // empty: the system's trusted roots
  std::string caOrigin;     // where caPem came from, for verification errors
  bool insecureSkipTlsVerify = false;
  std::string tlsServerName;  // name to verify and send as SNI instead of host (optional)

  std::string clientCertPem, clientKeyPem;  // both or neither
  std::string token;      // static bearer token
  std::string tokenFile;  // bearer token re-read from this file when it changes (wins over token)

  /// "host:port" with IPv6 in brackets, for the Host header and messages.
  std::string hostPort() const;
};

/// Reads a whole file or throws ApiConfigError with a message naming `what` and the reason.
using FileReader = std::function<std::string(const std::string& path, std::string_view what)>;
/// The environment: nullopt when the variable is unset.
using EnvReader = std::function<std::optional<std::string>(const char* name)>;

/// A kubeconfig's text → ApiConfig. `path` names the file in messages and anchors relative paths.
ApiConfig parseKubeconfig(std::string_view yaml, const std::string& path, const FileReader& read);

inline constexpr std::string_view kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

/// In-cluster config: KUBERNETES_SERVICE_HOST/PORT, the service account's token (as tokenFile,
/// re-read when it rotates) and ca.crt under `serviceAccountDir`.
ApiConfig inClusterConfig(const EnvReader& env, const FileReader& read,
                          std::string_view serviceAccountDir = kServiceAccountDir);

/// True when KUBERNETES_SERVICE_HOST is set (we run inside a pod).
bool inCluster(const EnvReader& env);

/// The real file system and environment.
std::string readWholeFile(const std::string& path, std::string_view what);
std::optional<std::string> processEnv(const char* name);
ApiConfig loadKubeconfig(const std::string& path);

/// "https://host:port/path" → host, port, basePath of `config`. Throws ApiConfigError naming
/// `where` for anything else (only https is served by kube-apiserver).
void parseServerUrl(std::string_view url, std::string_view where, ApiConfig& config);

}  // namespace kdp::k8s
