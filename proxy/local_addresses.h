#pragma once
// The addresses the interfaces of the caller's network namespace hold (getifaddrs), for
// --nodeport-addresses: NodePorts answer on those inside the given ranges.

#include <vector>

#include "common/ip.h"

namespace kdp::proxy {

/// Every IPv4 and IPv6 address on every interface, loopback included (the caller filters).
std::vector<IpAddr> localAddresses();

}  // namespace kdp::proxy
