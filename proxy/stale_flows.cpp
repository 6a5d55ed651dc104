#include "proxy/stale_flows.h"

#include <algorithm>

namespace kdp::proxy {

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
    std::sort(ips.begin(), ips.end());
    ips.erase(std::unique(ips.begin(), ips.end()), ips.end());
  }
  return out;
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
