#pragma once
// The dns component's metrics, with CoreDNS's meanings under kube_dataplane_dns_*:
//   requests_total{proto,type}       coredns_dns_requests_total
//   responses_total{rcode}           coredns_dns_responses_total
//   request_duration_seconds         coredns_dns_request_duration_seconds
//   response_size_bytes{proto}       coredns_dns_response_size_bytes
//   cache_hits_total / cache_misses_total / cache_entries   coredns_cache_*
//   upstream_requests_total / upstream_failures_total{reason}  coredns_forward_*
// Registered once in the default registry; updates are lock-free.

#include <chrono>
#include <cstdint>

#include "common/metrics.h"

namespace kdp::dns {

struct ServerMetrics {
  static constexpr std::size_t kTypes = 11;   // A NS CNAME SOA PTR TXT AAAA SRV ANY other + (unused)
  static constexpr std::size_t kRcodes = 8;   // NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED BADVERS other

  /// The process-wide instance (registered on first use). Any thread.
  static ServerMetrics& get();

  /// Counts one answered query.
  void record(bool tcp, std::uint16_t qtype, std::uint16_t rcode, std::size_t size,
              std::chrono::steady_clock::time_point start);

  metrics::Counter* requests[2][kTypes] = {};
  metrics::Counter* responses[kRcodes] = {};
  metrics::Histogram* duration = nullptr;
  metrics::Histogram* size[2] = {};
  metrics::Counter* dropped = nullptr;
  metrics::Counter* udpRecvErrors = nullptr;
  metrics::Counter* udpSendErrors = nullptr;
  metrics::Counter* tcpAcceptErrors = nullptr;
  metrics::Counter* tcpRefused = nullptr;
  metrics::Counter* tcpIdleClosed = nullptr;
  metrics::Counter* tcpConnections = nullptr;
  metrics::Counter* cacheHits = nullptr;
  metrics::Counter* cacheMisses = nullptr;
  metrics::Gauge* cacheEntries = nullptr;
  metrics::Counter* upstreamRequests = nullptr;
  metrics::Counter* upstreamTimeouts = nullptr;
  metrics::Counter* upstreamErrors = nullptr;
  metrics::Counter* upstreamTcpRetries = nullptr;
  metrics::Histogram* zoneBuildSeconds = nullptr;
  metrics::Counter* zoneUpdates = nullptr;
  metrics::Gauge* zoneNames = nullptr;
};

}  // namespace kdp::dns
