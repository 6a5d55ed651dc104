#pragma once
// The query → response function: no sockets, no clocks (STYLE.md 2).
//
// Given a query's bytes and the current zone it decides one of:
//   Reply    — the response bytes (cluster names, reverse names the zone holds, errors);
//   Forward  — a well-formed query for a name outside the cluster zone (the forwarder's job);
//   Drop     — not a query at all (shorter than a header, or a response).
// Rules (Kubernetes DNS spec 1.1.0 and CoreDNS where it is silent): AA for the cluster zone;
// the question is echoed as sent (letter case kept; answers point at it); negative answers carry
// the SOA in the authority section, NXDOMAIN told from NODATA; FORMERR for malformed queries and
// for several questions; NOTIMP for opcodes other than QUERY; REFUSED for AXFR/IXFR and classes
// other than IN; BADVERS for EDNS versions above 0; SERVFAIL for cluster names while the zone is
// not synced; TC when the response does not fit the client's UDP size (512 without EDNS).
// --autopath (CoreDNS's autopath, keyed by the client's pod IP): a name under the client pod's
// first search domain (<ns>.svc.<zone>) that does not exist is retried as the rest of the search
// path would be; the first that exists is answered as a CNAME from the name asked plus its
// records, saving the client the remaining round trips.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/ip.h"

#include "dns/detail/wire.h"
#include "dns/zone.h"

namespace kdp::dns {

enum class Transport : std::uint8_t { Udp, Tcp };
enum class Disposition : std::uint8_t { Reply, Forward, Drop };

/// The UDP payload size this server advertises in its OPT records.
inline constexpr std::uint16_t kServerUdpSize = 1232;

struct Answer {
  Disposition disposition = Disposition::Drop;
  std::string wire;          // Reply: the response message
  std::uint16_t rcode = 0;   // Reply: the (extended) rcode
  std::uint16_t qtype = 0;   // the question's type (0 when there is none)
  bool truncated = false;
  bool authoritative = false;
  /// Reply ending in a CNAME to a name outside the cluster zone (lower-cased wire name): the
  /// server may resolve it upstream and append the records.
  std::string externalTarget;
  /// --autopath: names outside the zone to try in order (the rest of the pod's search path);
  /// `wire` is then the fallback (the NXDOMAIN of the name asked) for when all of them fail.
  std::vector<wire::WireName> autopath;
  /// The zone's TTL, for records synthesized later (autopath CNAMEs).
  std::uint32_t ttl = 0;
  /// The parsed query (Reply and Forward; header only for FORMERR).
  wire::Query query;
};

/// Who asks, for --autopath (ZoneOptions::autopath).
struct QueryContext {
  std::optional<IpAddr> client;
  /// The node's search domains (resolv.conf `search`), lower-cased wire names, tried after the
  /// cluster ones.
  const std::vector<wire::WireName>* hostSearch = nullptr;
};

/// Answers one query. `transport` decides the size limit (UDP: the client's EDNS size, else 512;
/// TCP: 65535). Pure; any thread; the zone is only read.
Answer answer(std::span<const std::uint8_t> msg, const Zone& zone, Transport transport,
              const QueryContext& context = {});

/// A reply to `query` with one CNAME from the question's name to `target` (wire), AA set: the
/// start of an autopath answer whose target is resolved upstream.
std::string cnameReply(const wire::Query& query, std::string_view target, std::uint32_t ttl);

/// A response to `query` with no records and `rcode`, echoing the question and EDNS: SERVFAIL
/// from the forwarder, for instance.
std::string emptyResponse(const wire::Query& query, std::uint16_t rcode, bool authoritative);

/// The largest response the client accepts over `transport`.
std::size_t responseLimit(const wire::Query& query, Transport transport);

}  // namespace kdp::dns
