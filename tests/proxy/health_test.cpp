#include "proxy/health.h"

#include <catch2/catch.hpp>

#include "proxy/fixtures.h"

using namespace kdp;
using namespace kdp::proxy;
using namespace std::chrono_literals;

namespace {

NodeInfo node(const char* name) {
  NodeInfo n;
  n.name = name;
  n.nodeIps = {*IpAddr::parse("192.0.2.10")};
  return n;
}

constexpr std::string_view kLocalLb = R"(
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.20
  externalTrafficPolicy: Local
  healthCheckNodePort: 32000
  ports: [{port: 80, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: cluster-lb, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.21
  ports: [{port: 80, nodePort: 30081}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-1, namespace: shop, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
ports: [{protocol: TCP, port: 80}]
endpoints:
- {addresses: [10.244.1.11], nodeName: node-a}
- {addresses: [10.244.1.12], nodeName: node-a}
- {addresses: [10.244.1.13], nodeName: node-a, conditions: {ready: false}}
- {addresses: [10.244.2.11], nodeName: node-b}
)";

}  // namespace

TEST_CASE("health: Services with a health check port and their local ready endpoints", "[proxy]") {
  const auto snap = test::snapshotOf(kLocalLb);
  const auto a = healthCheckServices(*snap, node("node-a"));
  REQUIRE(a.size() == 1);  // policy Cluster needs none
  CHECK(a[0] == HealthCheckService{"shop", "web", 32000, 2});
  const auto b = healthCheckServices(*snap, node("node-b"));
  REQUIRE(b.size() == 1);
  CHECK(b[0].localEndpoints == 1);
  CHECK(healthCheckServices(*snap, node("node-c"))[0].localEndpoints == 0);
}

TEST_CASE("health: a Service's answer is kube-proxy's, byte for byte", "[proxy]") {
  const HealthCheckService s{"shop", "web", 32000, 2};
  auto r = serviceHealthResponse(s, true);
  CHECK(r.status == 200);
  CHECK(r.body ==
        "{\n\t\"service\": {\n\t\t\"namespace\": \"shop\",\n\t\t\"name\": \"web\"\n\t},\n"
        "\t\"localEndpoints\": 2,\n\t\"serviceProxyHealthy\": true\n}");
  CHECK(r.serialize() ==
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff\r\n"
        "X-Load-Balancing-Endpoint-Weight: 2\r\nContent-Length: " +
            std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n" + r.body);
  // No local endpoint, or the proxy itself unhealthy: 503.
  CHECK(serviceHealthResponse({"shop", "web", 32000, 0}, true).status == 503);
  r = serviceHealthResponse(s, false);
  CHECK(r.status == 503);
  CHECK(r.body.find("\"serviceProxyHealthy\": false") != std::string::npos);
}

TEST_CASE("health: /healthz turns 503 when a change waits longer than the timeout", "[proxy]") {
  const auto t0 = std::chrono::system_clock::time_point{} + 1'700'000'000s;
  ProxyHealthState st;
  CHECK(proxyHealthy(st, t0));  // starting, nothing queued
  st.oldestPending = t0;
  CHECK(proxyHealthy(st, t0 + 59s));
  CHECK_FALSE(proxyHealthy(st, t0 + 60s));
  st.lastUpdated = t0 + 1s;
  st.oldestPending.reset();
  CHECK(proxyHealthy(st, t0 + 3600s));  // nothing waits: an idle proxy is healthy

  auto r = proxyHealthResponse(st, t0 + 2s);
  CHECK(r.status == 200);
  // While healthy, lastUpdated is now (kube-proxy's compatibility rule).
  CHECK(r.body ==
        R"({"lastUpdated":"2023-11-14T22:13:22Z","currentTime":"2023-11-14T22:13:22Z","healthy":true})");
  st.oldestPending = t0 + 5s;
  r = proxyHealthResponse(st, t0 + 70s + 250ms);
  CHECK(r.status == 503);
  CHECK(r.body ==
        R"({"lastUpdated":"2023-11-14T22:13:21Z","currentTime":"2023-11-14T22:14:30.25Z","healthy":false})");
  CHECK(rfc3339Nano(t0 + 1ns) == "2023-11-14T22:13:20.000000001Z");
}
