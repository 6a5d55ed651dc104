#pragma once
// The metrics and health HTTP server shared by every component (--metrics ADDR:PORT):
//
//   GET /metrics  200 Prometheus text format 0.0.4 (Registry::renderPrometheus)
//   GET /healthz  200 "ok" while the process serves
//   GET /readyz   200 "ok" when the readiness predicate says so, else 503 "not ready"
//   other paths 404; methods other than GET and HEAD 405.
//
// HTTP/1.1 with keep-alive on Boost.Beast, on one thread of its own ("kdp/metrics"). Every
// connection has a 10 s deadline per request, an 8 KiB header limit and no request bodies
// beyond 4 KiB; at most 64 connections at once (a connection beyond that is closed at once).
// Boost stays out of this header.

#include <cstdint>
#include <functional>
#include <memory>

#include "common/host_port.h"

namespace kdp::metrics {
class Registry;
}

namespace kdp::app {

class MetricsServer {
 public:
  /// `registry` must outlive the server. `ready` is called on the server's thread for each
  /// /readyz request; it must be thread-safe and quick. A null `ready` means always ready.
  MetricsServer(metrics::Registry& registry, std::function<bool()> ready);
  ~MetricsServer();  // stop()
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  /// Binds `address` (port 0: the kernel picks one; see port()) and starts the server thread.
  /// Throws std::runtime_error("--metrics ADDR:PORT: <reason>") when it cannot bind. Call once.
  void start(const HostPort& address);

  /// The bound port (after start()).
  std::uint16_t port() const;

  /// Closes the listener and every connection, and joins the thread. Idempotent; any thread but
  /// the server's own.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kdp::app
