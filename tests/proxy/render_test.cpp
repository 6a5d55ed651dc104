#include "proxy/render.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "proxy/compiler.h"
#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

/// Runs `nft -c -f file` inside a throwaway network namespace (never the machine's own); returns
/// the exit status. Needs root and the nft binary.
int nftCheckInNetns(const std::string& text) {
  const std::string ns = "kdp-render-test-" + std::to_string(::getpid());
  const std::string file = "/tmp/" + ns + ".nft";
  {
    std::ofstream out(file);
    out << text;
  }
  int rc = std::system(("ip netns add " + ns).c_str());
  if (rc == 0) {
    rc = std::system(("ip netns exec " + ns + " nft -c -f " + file).c_str());
    if (std::system(("ip netns del " + ns).c_str()) != 0) {
      rc = -1;
    }
  }
  std::remove(file.c_str());
  return rc;
}

}  // namespace

TEST_CASE("render: rules name their sets and families", "[proxy]") {
  StaticRule r;
  r.kind = RuleKind::DnatRandom;
  r.n = 3;
  CHECK(renderRule(r, IpFamily::V6) ==
        "dnat ip6 to ip6 daddr . meta l4proto . th dport . numgen random mod 3 map @backends-3");
  r.kind = RuleKind::MarkFromOutside;
  r.cidr = *Cidr::parse("fd00:244::/48");
  CHECK(renderRule(r, IpFamily::V6) ==
        "ip6 daddr @cluster-ips ip6 saddr != fd00:244::/48 meta mark set meta mark | 0x4000");
  r.kind = RuleKind::DropServiceCidr;
  r.cidr = *Cidr::parse("10.96.0.0/12");
  CHECK(renderRule(r, IpFamily::V4) == "ip daddr 10.96.0.0/12 drop");
}

TEST_CASE("render: nft -c accepts a dual-stack ruleset with every kind of element",
          "[proxy][netns]") {
  if (::geteuid() != 0 || std::system("command -v nft >/dev/null 2>&1") != 0) {
    WARN("skipped: needs root and nft");
    return;
  }
  const auto snap = test::snapshotOf(R"(
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  clusterIPs: [10.96.0.50, "fd00:96::50"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  externalIPs: [198.18.0.5]
  sessionAffinity: ClientIP
  loadBalancerSourceRanges: [198.51.100.0/24, "2001:db8:1::/48"]
  ports: [{name: h, port: 443, targetPort: 8443, nodePort: 30443}, {name: q, port: 53, protocol: UDP, nodePort: 30053}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.10}, {ip: "2001:db8:2::10"}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.51
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-4, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: h, protocol: TCP, port: 8443}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.2.11], nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-6, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv6
ports: [{name: h, protocol: TCP, port: 8443}, {name: q, protocol: UDP, port: 5353}]
endpoints:
- {addresses: ["fd00:244::11"], nodeName: node-a}
)");
  NodeInfo node;
  node.name = "node-a";
  node.nodeIps = {*IpAddr::parse("192.0.2.10"), *IpAddr::parse("2001:db8::10")};
  node.nodePortIps = node.nodeIps;
  node.clusterCidrs = {*Cidr::parse("10.244.0.0/16"), *Cidr::parse("fd00:244::/48")};
  node.serviceCidrs = {*Cidr::parse("10.96.0.0/16"), *Cidr::parse("fd00:96::/112")};
  const auto text = renderNft(compile(*snap, node));
  CHECK(nftCheckInNetns(text) == 0);
}
