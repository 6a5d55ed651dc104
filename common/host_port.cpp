#include "common/host_port.h"

#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace kdp {

namespace {

std::optional<std::uint16_t> parsePort(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s.size() > 1 && s[0] == '0')) {
    return std::nullopt;
  }
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v > 65535) {
    return std::nullopt;
  }
  return static_cast<std::uint16_t>(v);
}

}  // namespace

std::string HostPort::str() const {
  std::string host = ip.isV6() ? "[" + ip.str() + "]" : ip.str();
  return host + ":" + std::to_string(port);
}

std::optional<HostPort> parseHostPort(std::string_view text,
                                      std::optional<std::uint16_t> defaultPort) {
  std::string_view host;
  std::optional<std::uint16_t> port;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    const auto rest = text.substr(close + 1);
    if (rest.empty()) {
      port = defaultPort;
    } else if (rest[0] == ':') {
      port = parsePort(rest.substr(1));
    } else {
      return std::nullopt;
    }
    // Brackets hold IPv6 only.
    if (host.find(':') == std::string_view::npos) {
      return std::nullopt;
    }
  } else if (const auto colon = text.find(':'); colon == std::string_view::npos) {
    host = text;
    port = defaultPort;
  } else if (text.find(':', colon + 1) == std::string_view::npos) {
    host = text.substr(0, colon);
    port = parsePort(text.substr(colon + 1));
    if (host.empty()) {
      return std::nullopt;
    }
  } else {
    // Bare IPv6: a port can only follow brackets.
    host = text;
    port = defaultPort;
  }
  auto ip = IpAddr::parse(host);
  if (!ip || !port) {
    return std::nullopt;
  }
  return HostPort{*ip, *port};
}

socklen_t toSockaddr(const HostPort& hp, sockaddr_storage& ss) {
  std::memset(&ss, 0, sizeof ss);
  if (hp.ip.isV4()) {
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(hp.port);
    std::memcpy(&sin.sin_addr, hp.ip.bytes().data(), 4);
    std::memcpy(&ss, &sin, sizeof sin);
    return sizeof sin;
  }
  sockaddr_in6 sin6{};
  sin6.sin6_family = AF_INET6;
  sin6.sin6_port = htons(hp.port);
  std::memcpy(&sin6.sin6_addr, hp.ip.bytes().data(), 16);
  std::memcpy(&ss, &sin6, sizeof sin6);
  return sizeof sin6;
}

}  // namespace kdp
