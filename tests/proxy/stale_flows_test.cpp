#include "proxy/stale_flows.h"

#include <catch2/catch.hpp>

#include "proxy/compiler.h"
#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;
using kdp::test::snapshotOf;

namespace {

NodeInfo node() {
  NodeInfo n;
  n.name = "node-a";
  n.nodeIps = {*IpAddr::parse("192.0.2.10")};
  n.nodePortIps = n.nodeIps;
  return n;
}

// dns: UDP 53 on a ClusterIP and a NodePort; web: TCP only.
std::string cluster(const std::string& dnsEndpoints) {
  return R"(
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec: {type: NodePort, clusterIP: 10.96.0.10, ports: [{name: dns, port: 53, protocol: UDP, targetPort: 5353, nodePort: 30053}]}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{protocol: TCP, port: 80}]
endpoints: [{addresses: [10.244.1.20]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-1, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints: )" + dnsEndpoints + "\n";
}

nft::ConntrackEntry udp(const char* client, const char* dst, std::uint16_t port,
                        const char* replySrc, std::uint16_t replyPort = 5353) {
  nft::ConntrackEntry e;
  e.proto = kProtoUdp;
  e.original = {*IpAddr::parse(client), *IpAddr::parse(dst), 40000, port};
  e.reply = {*IpAddr::parse(replySrc), *IpAddr::parse(client), replyPort, 40000};
  return e;
}

}  // namespace

TEST_CASE("stale flows: UDP destinations and their endpoints", "[proxy]") {
  const auto d = udpDestinations(compile(
      *snapshotOf(cluster("[{addresses: [10.244.1.7]}, {addresses: [10.244.2.7]}]")), node()));
  REQUIRE(d.size() == 2);  // ClusterIP and NodePort; web is TCP
  const ServiceKey clusterIp{*IpAddr::parse("10.96.0.10"), kProtoUdp, 53};
  const ServiceKey nodePort{*IpAddr::parse("192.0.2.10"), kProtoUdp, 30053};
  CHECK(d.at(clusterIp) == std::vector<IpAddr>{*IpAddr::parse("10.244.1.7"), *IpAddr::parse("10.244.2.7")});
  CHECK(d.at(nodePort) == d.at(clusterIp));

  const auto none = udpDestinations(compile(*snapshotOf(cluster("[]")), node()));
  CHECK(none.at(clusterIp).empty());  // rejected: still ours, without endpoints
}

TEST_CASE("stale flows: entries whose endpoint or destination went away", "[proxy]") {
  const auto before = udpDestinations(compile(
      *snapshotOf(cluster("[{addresses: [10.244.1.7]}, {addresses: [10.244.2.7]}]")), node()));
  const auto after =
      udpDestinations(compile(*snapshotOf(cluster("[{addresses: [10.244.2.7]}]")), node()));
  const std::vector<nft::ConntrackEntry> entries = {
      udp("10.244.1.5", "10.96.0.10", 53, "10.244.1.7"),   // to the removed endpoint: stale
      udp("10.244.1.5", "10.96.0.10", 53, "10.244.2.7"),   // to the kept one
      udp("203.0.113.2", "192.0.2.10", 30053, "10.244.1.7"),  // NodePort, removed endpoint
      udp("10.244.1.6", "10.96.0.10", 53, "10.96.0.10", 53),  // made before any DNAT: stale
      udp("10.244.1.5", "10.96.0.11", 53, "10.96.0.11", 53),  // not a destination of ours
      udp("10.244.1.5", "10.96.0.20", 80, "10.244.1.20", 80),  // TCP Service's IP, other proto
  };
  auto stale = staleUdpEntries(entries, before, after);
  REQUIRE(stale.size() == 3);
  CHECK(stale[0] == entries[0]);
  CHECK(stale[1] == entries[2]);
  CHECK(stale[2] == entries[3]);

  // The Service is deleted: every entry to its destinations goes; other entries stay.
  const auto gone = udpDestinations(compile(*snapshotOf(R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {clusterIP: 10.96.0.20, ports: [{port: 80}]}
)"), node()));
  stale = staleUdpEntries(entries, after, gone);
  CHECK(stale.size() == 4);
  // Nothing changed and nothing is wrong: nothing to delete.
  CHECK(staleUdpEntries({entries[1]}, after, after).empty());
  // TCP entries are never touched.
  auto tcp = entries[0];
  tcp.proto = kProtoTcp;
  CHECK(staleUdpEntries({tcp}, before, after).empty());
}
