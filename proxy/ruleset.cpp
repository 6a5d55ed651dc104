#include "proxy/ruleset.h"

namespace kdp::proxy {

std::string backendsMapName(std::uint32_t n) { return "backends-" + std::to_string(n); }
std::string endpointsChainName(std::uint32_t n) { return "endpoints-" + std::to_string(n); }
std::string affinityChainName(std::uint32_t n, std::uint32_t timeoutSeconds) {
  return "endpoints-affinity-" + std::to_string(n) + "-" + std::to_string(timeoutSeconds);
}
std::string affinityMapName(std::uint32_t n) { return "affinity-" + std::to_string(n); }
std::string affinityBackendsMapName(std::uint32_t n) {
  return "affinity-backends-" + std::to_string(n);
}

std::size_t Ruleset::elementCount() const {
  std::size_t n = 0;
  for (const auto& t : tables) {
    n += t.serviceIps.size() + t.noEndpointServices.size() + t.masqueradeServices.size() +
         t.clusterIps.size() + t.firewallIps.size() + t.firewallAllow.size() + t.hairpin.size();
    for (const auto& [count, elements] : t.backends) {
      n += elements.size();
    }
    for (const auto& [count, elements] : t.affinityBackends) {
      n += elements.size();
    }
  }
  return n;
}

}  // namespace kdp::proxy
