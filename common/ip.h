#pragma once
// IP addresses and prefixes as values: parsed once at decode time, compared and hashed cheaply.

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kdp {

enum class IpFamily : std::uint8_t { V4, V6 };

class IpAddr {
 public:
  IpAddr() = default;

  /// Strict syntax as the API server accepts it: dotted quad without leading zeros, or RFC 4291
  /// text for IPv6 (an IPv4-mapped IPv6 address is kept as IPv6). No zone, no prefix.
  static std::optional<IpAddr> parse(std::string_view text);
  static IpAddr v4(std::uint32_t hostOrder);
  /// From network-order bytes: 4 for V4, 16 for V6.
  static IpAddr fromBytes(IpFamily family, const std::uint8_t* bytes);

  IpFamily family() const noexcept { return family_; }
  bool isV4() const noexcept { return family_ == IpFamily::V4; }
  bool isV6() const noexcept { return family_ == IpFamily::V6; }
  /// Network byte order; 4 bytes used for IPv4.
  const std::array<std::uint8_t, 16>& bytes() const noexcept { return bytes_; }
  std::size_t size() const noexcept { return isV4() ? 4 : 16; }
  bool isLoopback() const noexcept;
  bool isUnspecified() const noexcept;

  /// Canonical text (RFC 5952 for IPv6).
  std::string str() const;

  auto operator<=>(const IpAddr&) const = default;

 private:
  std::array<std::uint8_t, 16> bytes_{};
  IpFamily family_ = IpFamily::V4;
};

class Cidr {
 public:
  Cidr() = default;
  Cidr(IpAddr base, std::uint8_t prefixLen) : addr_(base), len_(prefixLen) {}

  /// "10.0.0.0/8", "fd00::/64". The address may have host bits set (as the API tolerates in
  /// loadBalancerSourceRanges); they are cleared.
  static std::optional<Cidr> parse(std::string_view text);

  const IpAddr& addr() const noexcept { return addr_; }
  std::uint8_t prefixLen() const noexcept { return len_; }
  IpFamily family() const noexcept { return addr_.family(); }
  bool contains(const IpAddr& ip) const noexcept;
  std::string str() const;

  auto operator<=>(const Cidr&) const = default;

 private:
  IpAddr addr_;
  std::uint8_t len_ = 0;
};

}  // namespace kdp
