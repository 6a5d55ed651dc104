// sessionAffinity ClientIP: chains per (endpoint count, timeout), the dynamic affinity-N map and
// affinity-backends-N, as nft text.
#include <catch2/catch.hpp>

#include "proxy/compiler.h"
#include "proxy/fixtures.h"
#include "proxy/render.h"

using namespace kdp;
using namespace kdp::proxy;

namespace {

constexpr std::string_view kSticky = R"(
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.96.0.60
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 3}}
  ports: [{port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: plain, namespace: default}
spec: {clusterIP: 10.96.0.61, ports: [{port: 80, targetPort: 8080}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sticky-1, namespace: default, labels: {kubernetes.io/service-name: sticky}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints: [{addresses: [10.244.1.11]}, {addresses: [10.244.2.12]}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: plain-1, namespace: default, labels: {kubernetes.io/service-name: plain}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints: [{addresses: [10.244.1.11]}, {addresses: [10.244.2.12]}]
)";

NodeInfo node() {
  NodeInfo n;
  n.name = "node-a";
  n.nodeIps = {*IpAddr::parse("192.0.2.10")};
  n.nodePortIps = n.nodeIps;
  return n;
}

bool has(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) {
    return true;
  }
  UNSCOPED_INFO("missing: " << part << "\nin:\n" << text);
  return false;
}

}  // namespace

TEST_CASE("affinity: remembered slot through ct mark, per endpoint count and timeout", "[proxy]") {
  const auto text = renderNft(compile(*test::snapshotOf(kSticky), node()));
  CHECK(has(text, "10.96.0.60 . tcp . 80 : goto endpoints-affinity-2-3"));
  CHECK(has(text, "10.96.0.61 . tcp . 80 : goto endpoints-2"));
  CHECK(has(text, R"(	map affinity-2 {
		typeof numgen random mod 1 : ct mark
		size 262144
		flags dynamic,timeout
	}
	map affinity-backends-2 {
		type ipv4_addr . inet_proto . inet_service . mark : ipv4_addr . inet_service
		elements = {
			10.96.0.60 . tcp . 80 . 0 : 10.244.1.11 . 8080,
			10.96.0.60 . tcp . 80 . 1 : 10.244.2.12 . 8080
		}
	}
)"));
  CHECK(has(text, R"(	chain endpoints-affinity-2-3 {
		ct mark set numgen random mod 2
		update @affinity-2 { jhash ip saddr . ip daddr . meta l4proto . th dport mod 4294967295 seed 0x1 timeout 3s : ct mark }
		ct mark set jhash ip saddr . ip daddr . meta l4proto . th dport mod 4294967295 seed 0x1 map @affinity-2
		dnat ip to ip daddr . meta l4proto . th dport . ct mark map @affinity-backends-2
	}
)"));
  // The plain Service's slots stay in backends-2; the sticky one's are only in affinity-backends-2.
  CHECK(has(text, "10.96.0.61 . tcp . 80 . 1 : 10.244.2.12 . 8080"));
  CHECK(text.find("10.96.0.60 . tcp . 80 . 0 : 10.244.1.11 . 8080") ==
        text.rfind("10.96.0.60 . tcp . 80 . 0 : 10.244.1.11 . 8080"));
}
