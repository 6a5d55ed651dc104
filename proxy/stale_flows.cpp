#include "proxy/stale_flows.h"

#include <algorithm>

#include "proxy/incremental.h"

namespace kdp::proxy {

namespace {

void sortUnique(std::vector<IpAddr>& ips) {
  std::sort(ips.begin(), ips.end());
  ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
}

/// The endpoint IPs behind one destination of `t`, sorted and unique.
std::vector<IpAddr> endpointsOf(const Table& t, const ServiceKey& key) {
  std::vector<IpAddr> ips;
  for (const auto* byCount : {&t.backends, &t.affinityBackends}) {
    for (const auto& [n, elements] : *byCount) {
      for (auto it = elements.lower_bound(BackendKey{key, 0});
           it != elements.end() && it->first.service == key; ++it) {
        ips.push_back(it->second.ip);
      }
    }
  }
  sortUnique(ips);
  return ips;
}

}  // namespace

UdpDestinations udpDestinations(const Ruleset& ruleset) {
  UdpDestinations out;
  for (const auto& t : ruleset.tables) {
    for (const auto& [key, verdict] : t.noEndpointServices) {
      if (key.proto == kProtoUdp) {
        out[key];
      }
    }
    for (const auto* byCount : {&t.backends, &t.affinityBackends}) {
      for (const auto& [n, elements] : *byCount) {
        for (const auto& [key, backend] : elements) {
          if (key.service.proto == kProtoUdp) {
            out[key.service].push_back(backend.ip);
          }
        }
      }
    }
  }
  for (auto& [key, ips] : out) {
    sortUnique(ips);
  }
  return out;
}

void updateUdpDestinations(UdpDestinations& destinations, const RulesetChange& change,
                           const Ruleset& now) {
  if (change.full) {
    destinations = udpDestinations(now);
    return;
  }
  for (const auto& tc : change.tables) {
    const Table* table = nullptr;
    for (const auto& t : now.tables) {
      if (t.family == tc.after.family) {
        table = &t;
      }
    }
    // Every destination a change adds, removes or rewrites is in `owners` of one side.
    for (const Table* side : {&tc.before, &tc.after}) {
      for (const auto& [key, owner] : side->owners) {
        if (key.proto != kProtoUdp) {
          continue;
        }
        destinations.erase(key);
        if (table == nullptr) {
          continue;
        }
        // As udpDestinations(): a destination without endpoints is kept, empty (one that two
        // Services claim may be in both maps).
        auto ips = endpointsOf(*table, key);
        if (!ips.empty() || table->noEndpointServices.count(key) != 0) {
          destinations[key] = std::move(ips);
        }
      }
    }
  }
}

std::vector<nft::ConntrackEntry> staleUdpEntries(const std::vector<nft::ConntrackEntry>& entries,
                                                 const UdpDestinations& before,
                                                 const UdpDestinations& now) {
  std::vector<nft::ConntrackEntry> stale;
  for (const auto& e : entries) {
    if (e.proto != kProtoUdp) {
      continue;
    }
    const ServiceKey key{e.original.dst, kProtoUdp, e.original.dstPort};
    if (auto it = now.find(key); it != now.end()) {
      if (!std::binary_search(it->second.begin(), it->second.end(), e.reply.src)) {
        stale.push_back(e);
      }
    } else if (before.count(key) != 0) {
      stale.push_back(e);
    }
  }
  return stale;
}

}  // namespace kdp::proxy
