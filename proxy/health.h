#pragma once
// kube-proxy's two health endpoints, as pure functions (the server is proxy/health_server.h):
//  - per Service of type LoadBalancer with externalTrafficPolicy: Local, an HTTP server on the
//    node addresses at spec.healthCheckNodePort, answering 200 while this node has ready
//    endpoints of the Service (and the proxy is healthy), else 503, so that the cloud load
//    balancer sends traffic only to nodes that can serve it locally;
//  - the proxy's own /healthz (and /livez): 503 once a change has waited longer than the health
//    timeout without being applied, else 200.
// Bodies and headers as kube-proxy's pkg/proxy/healthcheck writes them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/compiler.h"

namespace kdp::k8s {
struct Service;
struct Snapshot;
}

namespace kdp::proxy {

/// A health check port the node serves, and what it reports.
struct HealthCheckService {
  std::string namespace_;
  std::string name;
  std::uint16_t port = 0;      // spec.healthCheckNodePort
  int localEndpoints = 0;      // ready endpoints on this node (distinct addresses)

  bool operator==(const HealthCheckService&) const = default;
};

/// The health check port `svc` needs on this node, if any.
std::optional<HealthCheckService> healthCheckService(const k8s::Snapshot& snapshot,
                                                     const k8s::Service& svc,
                                                     const NodeInfo& node);

/// The Services needing a health check port on this node, by namespace/name.
std::vector<HealthCheckService> healthCheckServices(const k8s::Snapshot& snapshot,
                                                    const NodeInfo& node);

/// A complete HTTP/1.1 response (Connection: close).
struct HttpResponse {
  int status = 200;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;

  std::string serialize() const;
};

HttpResponse serviceHealthResponse(const HealthCheckService& service, bool proxyHealthy);

/// When the proxy last applied a sync and since when a change waits (kube-proxy's Updated and
/// QueuedUpdate). Times are wall-clock (they appear in the body).
struct ProxyHealthState {
  std::optional<std::chrono::system_clock::time_point> lastUpdated;
  std::optional<std::chrono::system_clock::time_point> oldestPending;
};

/// kube-proxy's default: twice its 30 s sync period.
inline constexpr std::chrono::seconds kHealthTimeout{60};

bool proxyHealthy(const ProxyHealthState& state, std::chrono::system_clock::time_point now,
                  std::chrono::nanoseconds timeout = kHealthTimeout);

/// /healthz and /livez: {"lastUpdated":"…","currentTime":"…","healthy":true}; while healthy,
/// lastUpdated is the current time, as kube-proxy reports it for compatibility.
HttpResponse proxyHealthResponse(const ProxyHealthState& state,
                                 std::chrono::system_clock::time_point now,
                                 std::chrono::nanoseconds timeout = kHealthTimeout);

/// RFC 3339 with nanoseconds, UTC, trailing zeros dropped, as Go's time.Time marshals to JSON.
std::string rfc3339Nano(std::chrono::system_clock::time_point t);

}  // namespace kdp::proxy
