#include "k8s/detail/validate.h"

#include <array>
#include <cstdint>

namespace kdp::k8s::detail {

namespace {

constexpr bool isLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

constexpr bool isAlnum(char c) {
  return isLowerAlnum(c) || (c >= 'A' && c <= 'Z');
}

constexpr bool isLower(char c) {
  return c >= 'a' && c <= 'z';
}

// [a-z0-9]([-a-z0-9]*[a-z0-9])? without the length check.
bool isLabelSyntax(std::string_view s) {
  if (s.empty() || !isLowerAlnum(s.front()) || !isLowerAlnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!isLowerAlnum(c) && c != '-') {
      return false;
    }
  }
  return true;
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool isQualifiedNameSyntax(std::string_view s) {
  if (s.empty() || !isAlnum(s.front()) || !isAlnum(s.back())) {
    return false;
  }
  for (char c : s) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

constexpr std::string_view kLabelMessage =
    "must be a lowercase RFC 1123 label: at most 63 characters of [a-z0-9] and '-', starting "
    "and ending with an alphanumeric character";
constexpr std::string_view kSubdomainMessage =
    "must be a lowercase RFC 1123 subdomain: at most 253 characters of [a-z0-9], '-' and '.', "
    "starting and ending with an alphanumeric character";
constexpr std::string_view kQualifiedNameMessage =
    "must be a qualified name: an optional DNS subdomain prefix and '/', then at most 63 "
    "characters of [A-Za-z0-9], '-', '_' and '.', starting and ending with an alphanumeric "
    "character";

}  // namespace

std::string_view checkDns1123Label(std::string_view s) {
  if (s.size() > kDns1123LabelMaxLength || !isLabelSyntax(s)) {
    return kLabelMessage;
  }
  return {};
}

std::string_view checkDns1123Subdomain(std::string_view s) {
  if (s.empty() || s.size() > kDns1123SubdomainMaxLength) {
    return kSubdomainMessage;
  }
  std::size_t start = 0;
  while (true) {
    std::size_t dot = s.find('.', start);
    auto label = s.substr(start, dot == std::string_view::npos ? s.size() - start : dot - start);
    if (!isLabelSyntax(label)) {
      return kSubdomainMessage;
    }
    if (dot == std::string_view::npos) {
      return {};
    }
    start = dot + 1;
  }
}

std::string_view checkDns1035Label(std::string_view s) {
  if (s.size() > kDns1123LabelMaxLength || !isLabelSyntax(s) || !isLower(s.front())) {
    return "must be an RFC 1035 label: at most 63 characters of [a-z0-9] and '-', starting with "
           "a letter and ending with an alphanumeric character";
  }
  return {};
}

std::string_view checkWildcardDns1123Subdomain(std::string_view s) {
  if (s.starts_with("*.")) {
    if (checkDns1123Subdomain(s.substr(2)).empty()) {
      return {};
    }
    return "a wildcard DNS-1123 subdomain must start with '*.', followed by a valid DNS "
           "subdomain";
  }
  return checkDns1123Subdomain(s);
}

std::string_view checkIanaSvcName(std::string_view s) {
  if (s.empty() || s.size() > kIanaSvcNameMaxLength) {
    return "must be no more than 15 characters";
  }
  bool letter = false;
  for (char c : s) {
    if (!isLowerAlnum(c) && c != '-') {
      return "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)";
    }
    letter = letter || isLower(c);
  }
  if (s.find("--") != std::string_view::npos) {
    return "must not contain consecutive hyphens";
  }
  if (!letter) {
    return "must contain at least one letter (a-z)";
  }
  if (s.front() == '-' || s.back() == '-') {
    return "must not begin or end with a hyphen";
  }
  return {};
}

std::string_view checkQualifiedName(std::string_view s) {
  std::string_view name = s;
  if (auto slash = s.find('/'); slash != std::string_view::npos) {
    auto prefix = s.substr(0, slash);
    name = s.substr(slash + 1);
    if (prefix.empty() || !checkDns1123Subdomain(prefix).empty()) {
      return "prefix part must be a lowercase RFC 1123 subdomain";
    }
  }
  if (name.size() > kQualifiedNameMaxLength || !isQualifiedNameSyntax(name)) {
    return kQualifiedNameMessage;
  }
  return {};
}

std::string_view checkLabelValue(std::string_view s) {
  if (s.empty()) {
    return {};
  }
  if (s.size() > kLabelValueMaxLength || !isQualifiedNameSyntax(s)) {
    return "must be at most 63 characters of [A-Za-z0-9], '-', '_' and '.', starting and ending "
           "with an alphanumeric character";
  }
  return {};
}

std::string_view checkConfigMapKey(std::string_view s) {
  constexpr std::string_view kMessage =
      "a valid config key must consist of at most 253 alphanumeric characters, '-', '_' or '.'";
  if (s.empty() || s.size() > kDns1123SubdomainMaxLength) {
    return kMessage;
  }
  for (char c : s) {
    if (!isAlnum(c) && c != '-' && c != '_' && c != '.') {
      return kMessage;
    }
  }
  if (s == "." || s == "..") {
    return "must not be '.' or '..'";
  }
  return {};
}

std::string_view checkDomainPrefixedPath(std::string_view s) {
  auto slash = s.find('/');
  if (slash == std::string_view::npos || slash + 1 == s.size()) {
    return "must be a domain-prefixed path (such as \"acme.io/foo\")";
  }
  if (!checkDns1123Subdomain(s.substr(0, slash)).empty()) {
    return kSubdomainMessage;
  }
  constexpr std::string_view kPathChars = "/-._~%!$&'()*+,;=:";
  for (char c : s.substr(slash + 1)) {
    if (!isAlnum(c) && kPathChars.find(c) == std::string_view::npos) {
      return "path part must be a valid path: [A-Za-z0-9/-._~%!$&'()*+,;=:]";
    }
  }
  return {};
}

std::optional<std::string> decodeBase64(std::string_view text) {
  static constexpr auto kTable = [] {
    std::array<std::int8_t, 256> t{};
    t.fill(-1);
    constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
      t[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::int8_t>(i);
    }
    return t;
  }();

  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t quantum[4];
  int n = 0;        // sextets in the current quantum
  int padding = 0;  // '=' seen in the current quantum
  for (char ch : text) {
    if (ch == '\r' || ch == '\n') {
      continue;
    }
    if (padding > 0 && ch != '=') {
      return std::nullopt;  // nothing may follow the padding
    }
    if (ch == '=') {
      // Padding only in the last two positions of a quantum, after at least two sextets.
      if (n + padding < 2 || n + padding >= 4) {
        return std::nullopt;
      }
      ++padding;
      if (n + padding == 4) {
        n = 4;  // completes the quantum; flushed below
      } else {
        continue;
      }
    } else {
      std::int8_t v = kTable[static_cast<unsigned char>(ch)];
      if (v < 0) {
        return std::nullopt;
      }
      quantum[n++] = static_cast<std::uint32_t>(v);
    }
    if (n == 4) {
      const int sextets = 4 - padding;
      std::uint32_t bits = 0;
      for (int i = 0; i < 4; ++i) {
        bits = (bits << 6) | (i < sextets ? quantum[i] : 0);
      }
      out.push_back(static_cast<char>(bits >> 16));
      if (sextets >= 3) {
        out.push_back(static_cast<char>((bits >> 8) & 0xFF));
      }
      if (sextets == 4) {
        out.push_back(static_cast<char>(bits & 0xFF));
      }
      n = 0;
      if (padding > 0) {
        padding = 4;  // marks "ended": any further character is refused
      }
    }
  }
  if (n != 0 || (padding > 0 && padding != 4)) {
    return std::nullopt;
  }
  return out;
}

}  // namespace kdp::k8s::detail
