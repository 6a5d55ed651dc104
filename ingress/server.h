#pragma once
// The ingress HTTP/1.1 proxy (plain and TLS) on Boost.Beast. Boost and OpenSSL stay out of this
// header.
//
// Threads: N workers ("kdp/ingress-N"), each one io_context run by one thread (so each
// connection stays on its loop: the loop is the connection's strand), each with SO_REUSEPORT
// listeners of its own and a keep-alive upstream pool of its own (no locks on the data path).
// The route table is an immutable snapshot swapped atomically by setTable(); a request keeps the
// table it started with.
//
// Per request: the Host header picks the route (RouteTable::match); plain HTTP to a TLS host gets
// a 308 to https; no route 404; no endpoints 503; the request is proxied to an endpoint (global
// round robin), bodies streamed both ways with backpressure; a connect failure is retried on the
// next endpoint, a request that failed before any of its body was sent is retried when idempotent,
// then 502; an upstream that does not answer in time 504.

#include <cstdint>
#include <memory>
#include <optional>

#include "common/host_port.h"
#include "ingress/options.h"

namespace kdp::tls {
class CertStore;
}

namespace kdp::ingress {

struct RouteTable;

class Server {
 public:
  /// `certs` must outlive the server; it supplies certificates to every TLS handshake.
  Server(const IngressOptions& options, tls::CertStore& certs);
  ~Server();  // stop()
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  /// Binds the listeners (port 0: the kernel picks one; see httpPort()/httpsPort()) and starts
  /// the worker threads. Throws std::runtime_error("--http ADDR: <reason>") when it cannot bind.
  /// Main thread; once.
  void start();

  /// Publishes a new route table for new requests. Any thread.
  void setTable(std::shared_ptr<const RouteTable> table);

  std::uint16_t httpPort() const;
  std::uint16_t httpsPort() const;

  /// Closes the listeners and every connection and joins the workers. Idempotent; main thread.
  void stop();

  struct Impl;  // opaque: defined in server.cpp

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace kdp::ingress
