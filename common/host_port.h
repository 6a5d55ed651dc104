#pragma once
// ADDR:PORT as the command line writes it: "127.0.0.1:9090", "[::1]:9090".

#include <sys/socket.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/ip.h"

namespace kdp {

struct HostPort {
  IpAddr ip;
  std::uint16_t port = 0;

  /// "10.0.0.1:53", "[fd00::1]:53".
  std::string str() const;
  bool operator==(const HostPort&) const = default;
};

/// "IPv4:PORT" or "[IPv6]:PORT", port 0-65535 in decimal without leading zeros. When
/// `defaultPort` is set, the port may be left out ("10.0.0.1", "fd00::1", "[fd00::1]").
std::optional<HostPort> parseHostPort(std::string_view text,
                                      std::optional<std::uint16_t> defaultPort = std::nullopt);

/// Fills `ss` with the socket address of `hp`; returns its length.
socklen_t toSockaddr(const HostPort& hp, sockaddr_storage& ss);

}  // namespace kdp
