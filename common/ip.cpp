#include "common/ip.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace kdp {

namespace {

// inet_pton accepts "01.2.3.4" on some libcs as octal-ish; the API server refuses leading zeros.
bool strictDottedQuad(std::string_view s) {
  int parts = 0;
  std::size_t i = 0;
  while (i <= s.size()) {
    std::size_t j = s.find('.', i);
    if (j == std::string_view::npos) {
      j = s.size();
    }
    auto part = s.substr(i, j - i);
    if (part.empty() || part.size() > 3 || (part.size() > 1 && part[0] == '0')) {
      return false;
    }
    unsigned v = 0;
    auto [p, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc{} || p != part.data() + part.size() || v > 255) {
      return false;
    }
    ++parts;
    i = j + 1;
    if (j == s.size()) {
      break;
    }
  }
  return parts == 4;
}

}  // namespace

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
  if (text.empty() || text.size() > 45) {
    return std::nullopt;
  }
  char buf[64];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr ip;
  if (text.find(':') == std::string_view::npos) {
    if (!strictDottedQuad(text) || inet_pton(AF_INET, buf, ip.bytes_.data()) != 1) {
      return std::nullopt;
    }
    ip.family_ = IpFamily::V4;
    return ip;
  }
  if (inet_pton(AF_INET6, buf, ip.bytes_.data()) != 1) {
    return std::nullopt;
  }
  ip.family_ = IpFamily::V6;
  return ip;
}

IpAddr IpAddr::v4(std::uint32_t hostOrder) {
  IpAddr ip;
  ip.bytes_[0] = static_cast<std::uint8_t>(hostOrder >> 24);
  ip.bytes_[1] = static_cast<std::uint8_t>(hostOrder >> 16);
  ip.bytes_[2] = static_cast<std::uint8_t>(hostOrder >> 8);
  ip.bytes_[3] = static_cast<std::uint8_t>(hostOrder);
  return ip;
}

IpAddr IpAddr::fromBytes(IpFamily family, const std::uint8_t* bytes) {
  IpAddr ip;
  ip.family_ = family;
  std::memcpy(ip.bytes_.data(), bytes, family == IpFamily::V4 ? 4 : 16);
  return ip;
}

bool IpAddr::isLoopback() const noexcept {
  if (isV4()) {
    return bytes_[0] == 127;
  }
  for (int i = 0; i < 15; ++i) {
    if (bytes_[i] != 0) {
      return false;
    }
  }
  return bytes_[15] == 1;
}

bool IpAddr::isUnspecified() const noexcept {
  for (std::size_t i = 0; i < size(); ++i) {
    if (bytes_[i] != 0) {
      return false;
    }
  }
  return true;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(isV4() ? AF_INET : AF_INET6, bytes_.data(), buf, sizeof buf);
  return buf;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) {
    return std::nullopt;
  }
  auto ip = IpAddr::parse(text.substr(0, slash));
  auto lenText = text.substr(slash + 1);
  unsigned len = 0;
  auto [p, ec] = std::from_chars(lenText.data(), lenText.data() + lenText.size(), len);
  if (!ip || lenText.empty() || ec != std::errc{} || p != lenText.data() + lenText.size() ||
      (lenText.size() > 1 && lenText[0] == '0') || len > ip->size() * 8) {
    return std::nullopt;
  }
  // Clear host bits so that equal prefixes compare equal.
  auto bytes = ip->bytes();
  for (std::size_t bit = len; bit < ip->size() * 8; ++bit) {
    bytes[bit / 8] &= static_cast<std::uint8_t>(~(0x80u >> (bit % 8)));
  }
  return Cidr(IpAddr::fromBytes(ip->family(), bytes.data()), static_cast<std::uint8_t>(len));
}

bool Cidr::contains(const IpAddr& ip) const noexcept {
  if (ip.family() != addr_.family()) {
    return false;
  }
  const auto& a = addr_.bytes();
  const auto& b = ip.bytes();
  unsigned full = len_ / 8;
  if (std::memcmp(a.data(), b.data(), full) != 0) {
    return false;
  }
  unsigned rest = len_ % 8;
  if (rest == 0) {
    return true;
  }
  auto mask = static_cast<std::uint8_t>(0xFFu << (8 - rest));
  return (a[full] & mask) == (b[full] & mask);
}

std::string Cidr::str() const {
  return addr_.str() + "/" + std::to_string(len_);
}

}  // namespace kdp
