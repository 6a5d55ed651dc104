#pragma once
// The ingress proxy's startup options (command line flags).
// Parsed and validated by app/cli.cpp; plain values.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/host_port.h"
#include "common/ip.h"
#include "k8s/objects.h"

namespace kdp::ingress {

struct AccessLog {
  enum class Kind : std::uint8_t { Stdout, Off, File };
  Kind kind = Kind::Stdout;
  std::string path;  // Kind::File
  bool json = false;  // --access-log-format json: one JSON object per line
  bool operator==(const AccessLog&) const = default;
};

/// How a request picks among a backend's endpoints: a global round robin (every endpoint gets
/// its turn, across all workers), or the endpoint with the fewest requests in flight (ties in
/// round-robin order). --load-balance sets the default; an Ingress's annotation overrides it.
enum class Balance : std::uint8_t { RoundRobin, LeastRequest };

struct IngressOptions {
  std::optional<HostPort> http;            // --http ADDR:PORT (required by `ingress`)
  std::optional<HostPort> https;           // --https ADDR:PORT (required by `ingress`)
  std::string ingressClass = "kube-dataplane";  // --ingress-class
  unsigned threads = 0;                    // --threads, 0 = one per CPU
  // --publish-address IP|HOSTNAME (repeatable, comma lists): written to Ingress status.
  std::vector<k8s::LoadBalancerIngress> publishAddresses;
  std::string publishServiceNamespace;     // --publish-service NS/NAME
  std::string publishServiceName;
  AccessLog accessLog;                     // --access-log stdout|off|FILE
  std::string defaultCert;                 // --default-cert FILE (with --default-key)
  std::string defaultKey;                  // --default-key FILE (with --default-cert)
  std::uint64_t maxBodySize = 1 << 20;     // --max-body-size BYTES[k|m|g], 0 = no limit
  std::size_t maxConnections = 50000;      // --max-connections N: client connections open at once
  Balance loadBalance = Balance::RoundRobin;  // --load-balance round-robin|least-request
  // Timeouts (whole seconds on the command line). Per-Ingress annotations override the upstream
  // ones.
  std::chrono::seconds upstreamConnectTimeout{5};   // --upstream-connect-timeout
  std::chrono::seconds upstreamReadTimeout{60};     // --upstream-read-timeout: response header
  std::chrono::seconds clientHeaderTimeout{20};     // --client-header-timeout: a request's header
  std::chrono::seconds clientIdleTimeout{60};       // --client-idle-timeout: between requests
};

}  // namespace kdp::ingress
