#include "proxy/local_addresses.h"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>

#include "common/c_handle.h"

namespace kdp::proxy {

std::vector<IpAddr> localAddresses() {
  ifaddrs* raw = nullptr;
  if (::getifaddrs(&raw) != 0) {
    return {};
  }
  const CHandle<ifaddrs, &::freeifaddrs> list(raw);
  std::vector<IpAddr> out;
  for (const ifaddrs* a = list.get(); a != nullptr; a = a->ifa_next) {
    if (a->ifa_addr == nullptr) {
      continue;
    }
    if (a->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(a->ifa_addr);
      out.push_back(IpAddr::fromBytes(IpFamily::V4,
                                      reinterpret_cast<const std::uint8_t*>(&sin->sin_addr)));
    } else if (a->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(a->ifa_addr);
      out.push_back(IpAddr::fromBytes(IpFamily::V6, sin6->sin6_addr.s6_addr));
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace kdp::proxy
