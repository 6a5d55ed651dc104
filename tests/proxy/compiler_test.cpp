#include "proxy/compiler.h"

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>

#include "proxy/render.h"
#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;
using kdp::test::nodeA;
using kdp::test::setsOf;
using kdp::test::snapshotOf;

namespace {

[[maybe_unused]] std::string compileSets(std::string_view yaml, const NodeInfo& node = nodeA()) {
  const auto text = renderNft(compile(*snapshotOf(yaml), node));
  const auto sets = setsOf(text);
  if (std::getenv("KDP_PRINT_GOLDEN") != nullptr) {
    std::fprintf(stderr, "----\n%s----\n", sets.c_str());
  }
  return sets;
}

// A Service web (two ports: by number and by name) and its slice, parametrised in the tests.
constexpr std::string_view kWeb = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.20
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: https}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-1
  namespace: shop
  labels: {kubernetes.io/service-name: web}
addressType: IPv4
ports:
- {name: http, protocol: TCP, port: 8080}
- {name: https, protocol: TCP, port: 8443}
endpoints:
- {addresses: [10.244.1.11], conditions: {ready: true}, nodeName: node-a}
- {addresses: [10.244.2.12], conditions: {ready: true}, nodeName: node-b}
- {addresses: [10.244.1.13], conditions: {ready: false, serving: true, terminating: true}, nodeName: node-a}
)";

}  // namespace

TEST_CASE("compile: ClusterIP with two ports, named targetPort, the whole table", "[proxy]") {
  const auto text = renderNft(compile(*snapshotOf(kWeb), nodeA()));
  if (std::getenv("KDP_PRINT_GOLDEN") != nullptr) {
    std::fprintf(stderr, "----\n%s----\n", text.c_str());
  }
  CHECK(text == R"(add table ip kube-dataplane
delete table ip kube-dataplane
table ip kube-dataplane {
	map service-ips {
		type ipv4_addr . inet_proto . inet_service : verdict
		elements = {
			10.96.0.20 . tcp . 80 : goto endpoints-2,
			10.96.0.20 . tcp . 443 : goto endpoints-2
		}
	}
	map no-endpoint-services {
		type ipv4_addr . inet_proto . inet_service : verdict
	}
	set masquerade-services {
		type ipv4_addr . inet_proto . inet_service
	}
	set cluster-ips {
		type ipv4_addr
		elements = {
			10.96.0.20
		}
	}
	set firewall-ips {
		type ipv4_addr . inet_proto . inet_service
	}
	set firewall-allow {
		type ipv4_addr . inet_proto . inet_service . ipv4_addr
		flags interval
	}
	set hairpin {
		type ipv4_addr . ipv4_addr
		elements = {
			10.244.1.11 . 10.244.1.11
		}
	}
	map backends-2 {
		typeof ip daddr . meta l4proto . th dport . numgen random mod 1 : ip daddr . th dport
		elements = {
			10.96.0.20 . tcp . 80 . 0 : 10.244.1.11 . 8080,
			10.96.0.20 . tcp . 80 . 1 : 10.244.2.12 . 8080,
			10.96.0.20 . tcp . 443 . 0 : 10.244.1.11 . 8443,
			10.96.0.20 . tcp . 443 . 1 : 10.244.2.12 . 8443
		}
	}
	chain reject-chain {
		reject
	}
	chain filter-prerouting {
		type filter hook prerouting priority -110; policy accept;
		ct state new jump firewall-check
	}
	chain filter-input {
		type filter hook input priority -110; policy accept;
		ct state new jump no-endpoints-check
	}
	chain filter-forward {
		type filter hook forward priority -110; policy accept;
		ct state new jump no-endpoints-check
		ct state new jump cluster-ips-check
	}
	chain filter-output {
		type filter hook output priority -110; policy accept;
		ct state new jump no-endpoints-check
	}
	chain filter-output-post-dnat {
		type filter hook output priority -90; policy accept;
		ct state new jump cluster-ips-check
	}
	chain firewall-check {
		ip daddr . meta l4proto . th dport @firewall-ips ip daddr . meta l4proto . th dport . ip saddr != @firewall-allow drop
	}
	chain no-endpoints-check {
		ip daddr . meta l4proto . th dport vmap @no-endpoint-services
	}
	chain cluster-ips-check {
		ip daddr @cluster-ips reject
	}
	chain nat-prerouting {
		type nat hook prerouting priority -100; policy accept;
		jump services
	}
	chain nat-output {
		type nat hook output priority -100; policy accept;
		jump services
	}
	chain nat-postrouting {
		type nat hook postrouting priority 100; policy accept;
		jump masquerading
	}
	chain services {
		ip daddr @cluster-ips ip saddr != 10.244.0.0/16 meta mark set meta mark | 0x4000
		ip daddr . meta l4proto . th dport @masquerade-services meta mark set meta mark | 0x4000
		ip daddr . meta l4proto . th dport vmap @service-ips
	}
	chain masquerading {
		ct status dnat ip saddr . ip daddr @hairpin meta mark set meta mark | 0x4000
		meta mark & 0x4000 == 0 return
		meta mark set meta mark ^ 0x4000 masquerade fully-random
	}
	chain endpoints-2 {
		dnat ip to ip daddr . meta l4proto . th dport . numgen random mod 2 map @backends-2
	}
}
)");
}

TEST_CASE("compile: ClusterIP spreads over ready endpoints, by port name", "[proxy]") {
  CHECK(compileSets(kWeb) == R"(service-ips: 10.96.0.20 . tcp . 80 : goto endpoints-2
service-ips: 10.96.0.20 . tcp . 443 : goto endpoints-2
cluster-ips: 10.96.0.20
hairpin: 10.244.1.11 . 10.244.1.11
backends-2: 10.96.0.20 . tcp . 80 . 0 : 10.244.1.11 . 8080
backends-2: 10.96.0.20 . tcp . 80 . 1 : 10.244.2.12 . 8080
backends-2: 10.96.0.20 . tcp . 443 . 0 : 10.244.1.11 . 8443
backends-2: 10.96.0.20 . tcp . 443 . 1 : 10.244.2.12 . 8443
)");
}

TEST_CASE("compile: UDP and SCTP ports, several slices, duplicates once", "[proxy]") {
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: kube-system}
spec:
  clusterIP: 10.96.0.10
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 5353}
  - {name: sig, port: 9000, protocol: SCTP}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-a, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}, {name: dns-tcp, protocol: TCP, port: 5353}, {name: sig, protocol: SCTP, port: 9000}]
endpoints:
- {addresses: [10.244.1.5]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dns-b, namespace: kube-system, labels: {kubernetes.io/service-name: dns}}
addressType: IPv4
ports: [{name: dns, protocol: UDP, port: 5353}]
endpoints:
- {addresses: [10.244.2.6]}
- {addresses: [10.244.1.5]}
)") == R"(service-ips: 10.96.0.10 . tcp . 53 : goto endpoints-1
service-ips: 10.96.0.10 . udp . 53 : goto endpoints-2
service-ips: 10.96.0.10 . sctp . 9000 : goto endpoints-1
cluster-ips: 10.96.0.10
hairpin: 10.244.1.5 . 10.244.1.5
hairpin: 10.244.2.6 . 10.244.2.6
backends-1: 10.96.0.10 . tcp . 53 . 0 : 10.244.1.5 . 5353
backends-1: 10.96.0.10 . sctp . 9000 . 0 : 10.244.1.5 . 9000
backends-2: 10.96.0.10 . udp . 53 . 0 : 10.244.1.5 . 5353
backends-2: 10.96.0.10 . udp . 53 . 1 : 10.244.2.6 . 5353
)");
}

TEST_CASE("compile: no endpoints rejects; not-ready endpoints are not used", "[proxy]") {
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: default}
spec:
  clusterIP: 10.96.0.30
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: notready, namespace: default}
spec:
  clusterIP: 10.96.0.31
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: notready-1, namespace: default, labels: {kubernetes.io/service-name: notready}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.7], conditions: {ready: false}}
)") == R"(no-endpoint-services: 10.96.0.30 . tcp . 80 : goto reject-chain
no-endpoint-services: 10.96.0.31 . tcp . 80 : goto reject-chain
cluster-ips: 10.96.0.30
cluster-ips: 10.96.0.31
)");
}

TEST_CASE("compile: terminating endpoints serve when none is ready", "[proxy]") {
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: rolling, namespace: default}
spec:
  clusterIP: 10.96.0.32
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: rolling-1, namespace: default, labels: {kubernetes.io/service-name: rolling}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.8], conditions: {ready: false, serving: true, terminating: true}}
- {addresses: [10.244.1.9], conditions: {ready: false, serving: false, terminating: true}}
)") == R"(service-ips: 10.96.0.32 . tcp . 80 : goto endpoints-1
cluster-ips: 10.96.0.32
hairpin: 10.244.1.8 . 10.244.1.8
backends-1: 10.96.0.32 . tcp . 80 . 0 : 10.244.1.8 . 80
)");
}

TEST_CASE("compile: NodePort with policy Cluster masquerades, Local keeps this node's endpoints",
          "[proxy]") {
  constexpr std::string_view kNodePorts = R"(
apiVersion: v1
kind: Service
metadata: {name: cluster, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.40
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.41
  externalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080, nodePort: 30081}]
---
apiVersion: v1
kind: Service
metadata: {name: remote, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.42
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  ports: [{port: 80, targetPort: 8080, nodePort: 30082}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: cluster-1, namespace: default, labels: {kubernetes.io/service-name: cluster}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.2.12], nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-1, namespace: default, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.2.12], nodeName: node-b}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: remote-1, namespace: default, labels: {kubernetes.io/service-name: remote}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8080}]
endpoints:
- {addresses: [10.244.2.12], nodeName: node-b}
)";
  CHECK(compileSets(kNodePorts) == R"(service-ips: 10.96.0.40 . tcp . 80 : goto endpoints-2
service-ips: 10.96.0.41 . tcp . 80 : goto endpoints-2
service-ips: 192.0.2.10 . tcp . 30080 : goto endpoints-2
service-ips: 192.0.2.10 . tcp . 30081 : goto endpoints-1
no-endpoint-services: 10.96.0.42 . tcp . 80 : drop
no-endpoint-services: 192.0.2.10 . tcp . 30082 : drop
masquerade-services: 192.0.2.10 . tcp . 30080
cluster-ips: 10.96.0.40
cluster-ips: 10.96.0.41
cluster-ips: 10.96.0.42
hairpin: 10.244.1.11 . 10.244.1.11
backends-1: 192.0.2.10 . tcp . 30081 . 0 : 10.244.1.11 . 8080
backends-2: 10.96.0.40 . tcp . 80 . 0 : 10.244.1.11 . 8080
backends-2: 10.96.0.40 . tcp . 80 . 1 : 10.244.2.12 . 8080
backends-2: 10.96.0.41 . tcp . 80 . 0 : 10.244.1.11 . 8080
backends-2: 10.96.0.41 . tcp . 80 . 1 : 10.244.2.12 . 8080
backends-2: 192.0.2.10 . tcp . 30080 . 0 : 10.244.1.11 . 8080
backends-2: 192.0.2.10 . tcp . 30080 . 1 : 10.244.2.12 . 8080
)");
}

TEST_CASE("compile: LoadBalancer IPs with source ranges, externalIPs, ipMode Proxy skipped",
          "[proxy]") {
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: lb, namespace: default}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.50
  externalIPs: [198.18.0.5]
  loadBalancerSourceRanges: [198.51.100.0/24, 203.0.113.7/32]
  ports: [{port: 443, targetPort: 8443, nodePort: 30443}]
status:
  loadBalancer:
    ingress: [{ip: 203.0.113.10}, {ip: 203.0.113.11, ipMode: Proxy}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: lb-1, namespace: default, labels: {kubernetes.io/service-name: lb}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 8443}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
)") == R"(service-ips: 10.96.0.50 . tcp . 443 : goto endpoints-1
service-ips: 192.0.2.10 . tcp . 30443 : goto endpoints-1
service-ips: 198.18.0.5 . tcp . 443 : goto endpoints-1
service-ips: 203.0.113.10 . tcp . 443 : goto endpoints-1
masquerade-services: 192.0.2.10 . tcp . 30443
masquerade-services: 198.18.0.5 . tcp . 443
masquerade-services: 203.0.113.10 . tcp . 443
cluster-ips: 10.96.0.50
firewall-ips: 203.0.113.10 . tcp . 443
firewall-allow: 203.0.113.10 . tcp . 443 . 198.51.100.0/24
firewall-allow: 203.0.113.10 . tcp . 443 . 203.0.113.7/32
hairpin: 10.244.1.11 . 10.244.1.11
backends-1: 10.96.0.50 . tcp . 443 . 0 : 10.244.1.11 . 8443
backends-1: 192.0.2.10 . tcp . 30443 . 0 : 10.244.1.11 . 8443
backends-1: 198.18.0.5 . tcp . 443 . 0 : 10.244.1.11 . 8443
backends-1: 203.0.113.10 . tcp . 443 . 0 : 10.244.1.11 . 8443
)");
}

TEST_CASE("compile: session affinity, topology hints, masquerade-all", "[proxy]") {
  NodeInfo node = nodeA();
  node.zone = "zone-a";
  node.masqueradeAll = true;
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: default}
spec:
  clusterIP: 10.96.0.60
  sessionAffinity: ClientIP
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: zoned, namespace: default}
spec:
  clusterIP: 10.96.0.61
  ports: [{port: 80}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: sticky-1, namespace: default, labels: {kubernetes.io/service-name: sticky}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.11]}
- {addresses: [10.244.2.12]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: zoned-1, namespace: default, labels: {kubernetes.io/service-name: zoned}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.11], zone: zone-a, hints: {forZones: [{name: zone-a}]}}
- {addresses: [10.244.1.12], zone: zone-a, hints: {forZones: [{name: zone-a}]}}
- {addresses: [10.244.2.12], zone: zone-b, hints: {forZones: [{name: zone-b}]}}
)", node) == R"(service-ips: 10.96.0.60 . tcp . 80 : goto endpoints-affinity-2-10800
service-ips: 10.96.0.61 . tcp . 80 : goto endpoints-2
masquerade-services: 10.96.0.60 . tcp . 80
masquerade-services: 10.96.0.61 . tcp . 80
cluster-ips: 10.96.0.60
cluster-ips: 10.96.0.61
hairpin: 10.244.1.11 . 10.244.1.11
hairpin: 10.244.1.12 . 10.244.1.12
hairpin: 10.244.2.12 . 10.244.2.12
backends-2: 10.96.0.61 . tcp . 80 . 0 : 10.244.1.11 . 80
backends-2: 10.96.0.61 . tcp . 80 . 1 : 10.244.1.12 . 80
affinity-backends-2: 10.96.0.60 . tcp . 80 . 0 : 10.244.1.11 . 80
affinity-backends-2: 10.96.0.60 . tcp . 80 . 1 : 10.244.2.12 . 80
)");
}

TEST_CASE("compile: dual-stack Service gets one table per family", "[proxy]") {
  NodeInfo node = nodeA();
  node.nodeIps.push_back(*IpAddr::parse("2001:db8::10"));
  node.nodePortIps = node.nodeIps;
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: dual, namespace: default}
spec:
  type: NodePort
  clusterIP: 10.96.0.70
  clusterIPs: [10.96.0.70, "fd00:96::70"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: RequireDualStack
  ports: [{port: 80, nodePort: 30070}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dual-4, namespace: default, labels: {kubernetes.io/service-name: dual}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: dual-6, namespace: default, labels: {kubernetes.io/service-name: dual}}
addressType: IPv6
ports: [{name: "", protocol: TCP, port: 80}]
endpoints:
- {addresses: ["fd00:244::11"], nodeName: node-a}
)", node) == R"(service-ips: 10.96.0.70 . tcp . 80 : goto endpoints-1
service-ips: 192.0.2.10 . tcp . 30070 : goto endpoints-1
masquerade-services: 192.0.2.10 . tcp . 30070
cluster-ips: 10.96.0.70
hairpin: 10.244.1.11 . 10.244.1.11
backends-1: 10.96.0.70 . tcp . 80 . 0 : 10.244.1.11 . 80
backends-1: 192.0.2.10 . tcp . 30070 . 0 : 10.244.1.11 . 80
service-ips: 2001:db8::10 . tcp . 30070 : goto endpoints-1
service-ips: fd00:96::70 . tcp . 80 : goto endpoints-1
masquerade-services: 2001:db8::10 . tcp . 30070
cluster-ips: fd00:96::70
hairpin: fd00:244::11 . fd00:244::11
backends-1: 2001:db8::10 . tcp . 30070 . 0 : fd00:244::11 . 80
backends-1: fd00:96::70 . tcp . 80 . 0 : fd00:244::11 . 80
)");
}

TEST_CASE("compile: what is not programmed", "[proxy]") {
  // An IPv6-only Service on an IPv4 node, a headless Service, an ExternalName, a slice port of
  // another protocol, and a Service port without a matching slice port.
  CHECK(compileSets(R"(
apiVersion: v1
kind: Service
metadata: {name: v6, namespace: default}
spec: {clusterIP: "fd00:96::1", ipFamilies: [IPv6], ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: default}
spec: {clusterIP: None, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: example.com}
---
apiVersion: v1
kind: Service
metadata: {name: proto, namespace: default}
spec: {clusterIP: 10.96.0.80, ports: [{port: 53, protocol: UDP}]}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: proto-1, namespace: default, labels: {kubernetes.io/service-name: proto}}
addressType: IPv4
ports: [{name: "", protocol: TCP, port: 53}]
endpoints:
- {addresses: [10.244.1.11]}
)") == R"(no-endpoint-services: 10.96.0.80 . udp . 53 : goto reject-chain
cluster-ips: 10.96.0.80
)");
}
