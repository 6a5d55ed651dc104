#include "dns/detail/server_metrics.h"

#include "dns/detail/wire.h"

namespace kdp::dns {

namespace {

constexpr const char* kTypeNames[ServerMetrics::kTypes] = {
    "A", "NS", "CNAME", "SOA", "PTR", "TXT", "AAAA", "SRV", "ANY", "other", "other"};

std::size_t typeIndex(std::uint16_t qtype) {
  switch (qtype) {
    case wire::kTypeA: return 0;
    case wire::kTypeNS: return 1;
    case wire::kTypeCNAME: return 2;
    case wire::kTypeSOA: return 3;
    case wire::kTypePTR: return 4;
    case wire::kTypeTXT: return 5;
    case wire::kTypeAAAA: return 6;
    case wire::kTypeSRV: return 7;
    case wire::kTypeANY: return 8;
    default: return 9;
  }
}

constexpr const char* kRcodeNames[ServerMetrics::kRcodes] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "BADVERS", "other"};

std::size_t rcodeIndex(std::uint16_t rcode) {
  if (rcode <= 5) {
    return rcode;
  }
  return rcode == wire::kRcodeBadVers ? 6 : 7;
}

}  // namespace

ServerMetrics& ServerMetrics::get() {
  static ServerMetrics* instance = [] {
    auto* m = new ServerMetrics();  // lives for the process, as the registry does
    auto& r = metrics::defaultRegistry();
    for (int proto = 0; proto < 2; ++proto) {
      for (std::size_t t = 0; t < kTypes; ++t) {
        m->requests[proto][t] = &r.counter(
            "kube_dataplane_dns_requests_total", "DNS requests by transport and query type.",
            {{"proto", proto == 0 ? "udp" : "tcp"}, {"type", kTypeNames[t]}});
      }
      m->size[proto] = &r.histogram("kube_dataplane_dns_response_size_bytes",
                                    "Size of DNS responses in bytes.",
                                    {0, 100, 200, 300, 400, 511, 1023, 2047, 4095, 8291, 16000,
                                     32000, 48000, 64000},
                                    {{"proto", proto == 0 ? "udp" : "tcp"}});
    }
    for (std::size_t i = 0; i < kRcodes; ++i) {
      m->responses[i] = &r.counter("kube_dataplane_dns_responses_total",
                                   "DNS responses by rcode.", {{"rcode", kRcodeNames[i]}});
    }
    m->duration = &r.histogram("kube_dataplane_dns_request_duration_seconds",
                               "Time from receiving a query to sending its response.",
                               {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5});
    m->dropped = &r.counter("kube_dataplane_dns_dropped_total",
                            "Datagrams dropped: not a query, or larger than a query can be.");
    m->udpRecvErrors = &r.counter("kube_dataplane_dns_socket_errors_total", "Socket call failures.",
                                  {{"op", "udp_recv"}});
    m->udpSendErrors = &r.counter("kube_dataplane_dns_socket_errors_total", "Socket call failures.",
                                  {{"op", "udp_send"}});
    m->tcpAcceptErrors = &r.counter("kube_dataplane_dns_socket_errors_total",
                                    "Socket call failures.", {{"op", "tcp_accept"}});
    m->tcpRefused = &r.counter("kube_dataplane_dns_tcp_refused_total",
                               "TCP connections closed at once: the worker's limit was reached.");
    m->tcpIdleClosed = &r.counter("kube_dataplane_dns_tcp_idle_closed_total",
                                  "TCP connections closed after the idle timeout.");
    m->tcpConnections = &r.counter("kube_dataplane_dns_tcp_connections_total",
                                   "TCP connections accepted.");
    m->cacheHits = &r.counter("kube_dataplane_dns_cache_hits_total", "Forwarded names answered from the cache.");
    m->cacheMisses = &r.counter("kube_dataplane_dns_cache_misses_total", "Forwarded names not in the cache.");
    m->cacheEntries = &r.gauge("kube_dataplane_dns_cache_entries", "Entries in the cache.");
    m->upstreamRequests = &r.counter("kube_dataplane_dns_upstream_requests_total",
                                     "Queries sent to upstream resolvers.");
    m->upstreamTimeouts = &r.counter("kube_dataplane_dns_upstream_failures_total",
                                     "Upstream queries that failed.", {{"reason", "timeout"}});
    m->upstreamErrors = &r.counter("kube_dataplane_dns_upstream_failures_total",
                                   "Upstream queries that failed.", {{"reason", "error"}});
    m->upstreamTcpRetries = &r.counter("kube_dataplane_dns_upstream_tcp_retries_total",
                                       "Truncated upstream answers retried over TCP.");
    m->zoneBuildSeconds = &r.histogram("kube_dataplane_dns_zone_build_seconds",
                                       "Time to compile the zone from a store snapshot.",
                                       metrics::latencyBuckets());
    m->zoneUpdates = &r.counter("kube_dataplane_dns_zone_updates_total", "Zones published.");
    m->zoneNames = &r.gauge("kube_dataplane_dns_zone_names", "Names in the current zone.");
    return m;
  }();
  return *instance;
}

void ServerMetrics::record(bool tcp, std::uint16_t qtype, std::uint16_t rcode, std::size_t bytes,
                           std::chrono::steady_clock::time_point start) {
  requests[tcp ? 1 : 0][typeIndex(qtype)]->inc();
  responses[rcodeIndex(rcode)]->inc();
  size[tcp ? 1 : 0]->observe(static_cast<double>(bytes));
  duration->observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace kdp::dns
