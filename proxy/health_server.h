#pragma once
// Serves the health checks of proxy/health.h: one listener per (node address, healthCheckNodePort)
// of the Services that need one, opened and closed as Services come and go, and the proxy's
// /healthz and /livez on --healthz ADDR:PORT. Plain sockets and poll(2) on a thread of its own
// ("kdp/proxy-health"): each request is tiny, answered at once, and the connection closed.
// Requests: at most 4 KiB of head, 2 s to send it, at most 64 connections at once.

#include <chrono>
#include <memory>
#include <optional>
#include <vector>

#include "common/host_port.h"
#include "proxy/health.h"

namespace kdp::proxy {

class HealthServer {
 public:
  /// Binds `healthz` when given (throws std::runtime_error("--healthz ADDR:PORT: <reason>")) and
  /// starts the thread. Service health checks listen on `addresses` (the node IPs).
  HealthServer(std::vector<IpAddr> addresses, std::optional<HostPort> healthz);
  ~HealthServer();  // stops and joins
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  /// The Services to serve now (listeners for new ports open, for gone ones close). Any thread.
  void setServices(std::vector<HealthCheckService> services);
  /// A store change waits to be applied (kube-proxy's QueuedUpdate). Any thread.
  void queued();
  /// A sync was applied (kube-proxy's Updated). Any thread.
  void updated();

  /// The port bound for --healthz (after construction; 0 when none).
  std::uint16_t healthzPort() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kdp::proxy
