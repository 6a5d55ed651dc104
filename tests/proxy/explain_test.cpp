#include "proxy/explain.h"

#include <catch2/catch.hpp>

#include "proxy/compiler.h"
#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

Ruleset cluster() {
  NodeInfo node;
  node.name = "node-a";
  node.nodeIps = {*IpAddr::parse("192.0.2.10")};
  node.nodePortIps = node.nodeIps;
  node.clusterCidrs = {*Cidr::parse("10.244.0.0/16")};
  node.serviceCidrs = {*Cidr::parse("10.96.0.0/16")};
  return compile(*kdp::test::snapshotOf(R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  loadBalancerSourceRanges: [198.51.100.0/24]
  ports: [{name: http, port: 80, targetPort: 8080, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 203.0.113.10}]}}
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec: {clusterIP: 10.96.0.21, ports: [{port: 80}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.2.12], nodeName: node-b}
)"), node);
}

std::string probe(const char* src, const char* dst, std::uint16_t port) {
  return explain(cluster(), Probe{*IpAddr::parse(src), *IpAddr::parse(dst), port, kProtoTcp});
}

}  // namespace

TEST_CASE("explain: the path of a new connection through our chains", "[proxy]") {
  SECTION("ClusterIP from a pod: DNAT over the endpoints, source kept") {
    CHECK(probe("10.244.1.5", "10.96.0.20", 80) == R"(connection 10.244.1.5 -> 10.96.0.20:80/tcp
  nat -> services: service-ips[10.96.0.20:80/tcp] = goto endpoints-2  (Service shop/web:http)
  endpoints-2: dnat to numgen random mod 2 over backends-2:
    slot 0: 10.244.1.11:8080
    slot 1: 10.244.2.12:8080
  => DNAT, source kept
)");
  }
  SECTION("ClusterIP from outside the cluster CIDR, and hairpin") {
    CHECK_THAT(probe("192.0.2.99", "10.96.0.20", 80),
               Catch::Contains("masqueraded (to a ClusterIP from outside the cluster CIDR"));
    CHECK_THAT(probe("10.244.1.11", "10.96.0.20", 80),
               Catch::Contains("slot 0: 10.244.1.11:8080  (hairpin: masqueraded)"));
  }
  SECTION("LB IP: source ranges decide") {
    CHECK_THAT(probe("198.51.100.7", "203.0.113.10", 80),
               Catch::Contains("is allowed") && Catch::Contains("=> DNAT, masqueraded"));
    CHECK_THAT(probe("192.0.2.99", "203.0.113.10", 80),
               Catch::EndsWith("=> DROPPED (Service shop/web:http)\n"));
  }
  SECTION("no endpoints, wrong port, unallocated ClusterIP, not ours") {
    CHECK_THAT(probe("10.244.1.5", "10.96.0.21", 80),
               Catch::Contains("(Service shop/empty:80)") && Catch::Contains("REJECTED (no endpoints"));
    CHECK_THAT(probe("10.244.1.5", "10.96.0.20", 81),
               Catch::EndsWith("is a ClusterIP without this port\n  => REJECTED (connection refused)\n"));
    CHECK_THAT(probe("10.244.1.5", "10.96.0.99", 80), Catch::EndsWith("but not allocated\n  => DROPPED\n"));
    CHECK_THAT(probe("10.244.1.5", "8.8.8.8", 53), Catch::Contains("not a Service destination"));
  }
}
