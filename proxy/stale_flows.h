#pragma once
// Which conntrack entries are stale after a sync (pure; kube-proxy's conntrack cleanup is the
// reference). A UDP flow keeps its DNAT for as long as packets flow: when its endpoint goes
// away, a client sending from the same port (DNS resolvers do) blackholes until the entry idles
// out. So after each sync we delete UDP entries whose
//  - original destination is one of our UDP destinations (ClusterIP, NodePort address, LB IP,
//    external IP with its port) and whose reply source is none of its current endpoints (also
//    entries made before the destination had endpoints: their reply source is the Service IP);
//  - original destination was one of our UDP destinations and is no longer (Service or port
//    removed): nothing would answer there any more.

#include <map>
#include <vector>

#include "nft/conntrack.h"
#include "proxy/ruleset.h"

namespace kdp::proxy {

/// The UDP destinations of a ruleset and the endpoint IPs behind each, sorted and unique (empty:
/// rejected or dropped, no endpoint).
using UdpDestinations = std::map<ServiceKey, std::vector<IpAddr>>;

UdpDestinations udpDestinations(const Ruleset& ruleset);

struct RulesetChange;

/// Brings `destinations` (udpDestinations() of the model before `change`) to `now` (the model
/// after it), looking only at the destinations `change` touched: proportional to the change.
void updateUdpDestinations(UdpDestinations& destinations, const RulesetChange& change,
                           const Ruleset& now);

/// The entries of `entries` to delete now that `now` replaced `before`.
std::vector<nft::ConntrackEntry> staleUdpEntries(const std::vector<nft::ConntrackEntry>& entries,
                                                 const UdpDestinations& before,
                                                 const UdpDestinations& now);

}  // namespace kdp::proxy
