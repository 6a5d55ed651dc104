#include "proxy/explain.h"

namespace kdp::proxy {

namespace {

std::string protoName(std::uint8_t p) {
  return p == kProtoTcp ? "tcp" : p == kProtoUdp ? "udp" : p == kProtoSctp ? "sctp" : std::to_string(p);
}

std::string dest(const ServiceKey& k) {
  const std::string ip = k.ip.isV6() ? "[" + k.ip.str() + "]" : k.ip.str();
  return ip + ":" + std::to_string(k.port) + "/" + protoName(k.proto);
}

}  // namespace

std::string explain(const Ruleset& ruleset, const Probe& probe) {
  const Table* table = nullptr;
  for (const auto& t : ruleset.tables) {
    if (t.family == probe.dst.family()) {
      table = &t;
    }
  }
  const ServiceKey key{probe.dst, probe.proto, probe.port};
  std::string out = "connection " + probe.src.str() + " -> " + dest(key) + "\n";
  if (table == nullptr || probe.src.family() != probe.dst.family()) {
    return out + "  not ours: no kube-dataplane table for this address family\n";
  }
  auto owner = [&]() -> std::string {
    auto it = table->owners.find(key);
    return it == table->owners.end() ? std::string("?") : it->second;
  };
  // filter-prerouting: LB source ranges.
  if (table->firewallIps.count(key) != 0) {
    bool allowed = false;
    for (const auto& f : table->firewallAllow) {
      allowed = allowed || (f.service == key && f.source.contains(probe.src));
    }
    out += "  filter-prerouting -> firewall-check: " + dest(key) + " has loadBalancerSourceRanges";
    if (!allowed) {
      return out + "; " + probe.src.str() + " is in none of them\n  => DROPPED (Service " +
             owner() + ")\n";
    }
    out += "; " + probe.src.str() + " is allowed\n";
  }
  // nat-prerouting/nat-output -> services.
  if (auto it = table->serviceIps.find(key); it != table->serviceIps.end()) {
    out += "  nat -> services: " + std::string(kServiceIps) + "[" + dest(key) + "] = goto " +
           it->second.chain + "  (Service " + owner() + ")\n";
    bool masq = table->masqueradeServices.count(key) != 0;
    std::string why = masq ? "external traffic under policy Cluster, or --masquerade-all" : "";
    for (const auto& c : table->chains) {
      for (const auto& r : c.rules) {
        if (r.kind == RuleKind::MarkFromOutside && table->clusterIps.count(probe.dst) != 0 &&
            !r.cidr.contains(probe.src)) {
          masq = true;
          why = "to a ClusterIP from outside the cluster CIDR " + r.cidr.str();
        }
      }
    }
    const bool affinity = it->second.chain.rfind("endpoints-affinity-", 0) == 0;
    std::vector<Backend> eps;
    std::uint32_t n = 0;
    for (const auto& [count, elements] : affinity ? table->affinityBackends : table->backends) {
      for (const auto& [k, b] : elements) {
        if (k.service == key) {
          eps.push_back(b);
          n = count;
        }
      }
    }
    if (affinity) {
      std::string timeout = "?";
      for (const auto& c : table->chains) {
        if (c.name == it->second.chain) {
          for (const auto& r : c.rules) {
            if (r.kind == RuleKind::AffinityRemember) {
              timeout = std::to_string(r.timeoutSeconds);
            }
          }
        }
      }
      out += "  " + it->second.chain + ": sessionAffinity ClientIP (timeout " + timeout +
             "s): the slot this client got within the timeout from " + affinityMapName(n) +
             ", else numgen random mod " + std::to_string(n) + "; dnat over " +
             affinityBackendsMapName(n) + ":\n";
    } else {
      out += "  " + it->second.chain + ": dnat to numgen random mod " + std::to_string(n) +
             " over " + backendsMapName(n) + ":\n";
    }
    for (std::size_t slot = 0; slot < eps.size(); ++slot) {
      const bool self = eps[slot].ip == probe.src && table->hairpin.count(probe.src) != 0;
      out += "    slot " + std::to_string(slot) + ": " +
             (eps[slot].ip.isV6() ? "[" + eps[slot].ip.str() + "]" : eps[slot].ip.str()) + ":" +
             std::to_string(eps[slot].port) + (self ? "  (hairpin: masqueraded)" : "") + "\n";
    }
    out += masq ? "  => DNAT, masqueraded (" + why + ")\n" : "  => DNAT, source kept\n";
    return out;
  }
  if (auto it = table->noEndpointServices.find(key); it != table->noEndpointServices.end()) {
    const bool drop = it->second.kind == Verdict::Kind::Drop;
    return out + "  filter -> no-endpoints-check: " + std::string(kNoEndpointServices) + "[" +
           dest(key) + "] = " + (drop ? "drop" : "goto reject-chain") + "  (Service " + owner() +
           ")\n  => " +
           (drop ? "DROPPED (policy Local: no endpoint on this node)\n"
                 : "REJECTED (no endpoints: ICMP port unreachable, connection refused)\n");
  }
  if (table->clusterIps.count(probe.dst) != 0) {
    return out + "  filter -> cluster-ips-check: " + probe.dst.str() +
           " is a ClusterIP without this port\n  => REJECTED (connection refused)\n";
  }
  for (const auto& c : table->chains) {
    for (const auto& r : c.rules) {
      if (r.kind == RuleKind::DropServiceCidr && r.cidr.contains(probe.dst)) {
        return out + "  filter -> cluster-ips-check: " + probe.dst.str() +
               " is in the service CIDR " + r.cidr.str() + " but not allocated\n  => DROPPED\n";
      }
    }
  }
  return out + "  not a Service destination: kube-dataplane leaves it alone\n";
}

}  // namespace kdp::proxy
