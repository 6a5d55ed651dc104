// --nodeport-addresses: NodePort addresses from the node's interfaces, never loopback.
#include <catch2/catch.hpp>

#include <algorithm>

#include "proxy/compiler.h"
#include "proxy/fixtures.h"
#include "proxy/local_addresses.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

IpAddr ip(const char* s) { return *IpAddr::parse(s); }

}  // namespace

TEST_CASE("node info: NodePort addresses from --nodeport-addresses and the interfaces", "[proxy]") {
  const auto snap = test::snapshotOf(R"(
apiVersion: v1
kind: Node
metadata: {name: node-a, labels: {topology.kubernetes.io/zone: zone-a}}
)");
  ProxyOptions o;
  o.nodeName = "node-a";
  o.nodeIPs = {ip("192.0.2.10"), ip("2001:db8::10")};
  const std::vector<IpAddr> local = {ip("127.0.0.1"), ip("::1"), ip("192.0.2.10"),
                                     ip("203.0.113.1"), ip("198.51.100.7"), ip("2001:db8::10"),
                                     ip("fd03::1")};
  // Default: the --node-ip addresses.
  auto n = makeNodeInfo(*snap, o, local);
  CHECK(n.zone == "zone-a");
  CHECK(n.nodePortIps == std::vector<IpAddr>{ip("2001:db8::10"), ip("192.0.2.10")});  // sorted by bytes
  // Ranges pick interface addresses; loopback never, even when a range covers it.
  o.nodePortAddresses = {*Cidr::parse("203.0.113.0/24"), *Cidr::parse("127.0.0.0/8"),
                         *Cidr::parse("fd03::/64"), *Cidr::parse("::1/128")};
  n = makeNodeInfo(*snap, o, local);
  CHECK(n.nodePortIps == std::vector<IpAddr>{ip("203.0.113.1"), ip("fd03::1")});
  o.nodePortAddresses = {*Cidr::parse("0.0.0.0/0")};
  n = makeNodeInfo(*snap, o, local);
  CHECK(n.nodePortIps ==
        std::vector<IpAddr>{ip("192.0.2.10"), ip("198.51.100.7"), ip("203.0.113.1")});
}

TEST_CASE("node info: the interfaces' addresses include loopback", "[proxy]") {
  const auto all = localAddresses();
  CHECK(std::find(all.begin(), all.end(), ip("127.0.0.1")) != all.end());
}
