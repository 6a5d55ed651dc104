#include "proxy/compiler.h"

#include <algorithm>
#include <set>

#include "k8s/objects.h"
#include "k8s/store.h"

namespace kdp::proxy {

namespace {

using k8s::Service;
using k8s::TrafficPolicy;

constexpr const char* kRejectChain = "reject-chain";

std::uint8_t protoNumber(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::TCP: return kProtoTcp;
    case k8s::Protocol::UDP: return kProtoUdp;
    case k8s::Protocol::SCTP: return kProtoSctp;
  }
  return kProtoTcp;
}

k8s::AddressType addressTypeOf(IpFamily f) {
  return f == IpFamily::V4 ? k8s::AddressType::IPv4 : k8s::AddressType::IPv6;
}

/// One candidate endpoint of one Service port.
struct Candidate {
  Backend backend;
  bool ready = false;
  bool servingTerminating = false;
  bool local = false;
  const k8s::Endpoint* endpoint = nullptr;
};

/// The endpoints of one Service port, as kube-proxy's CategorizeEndpoints sorts them.
struct PortEndpoints {
  std::vector<Backend> cluster;  // policy Cluster (hints applied)
  std::vector<Backend> local;    // policy Local
  // Addresses of the endpoints in use that are on this node (or on an unknown one): hairpin (a
  // pod reaching itself through a Service) is DNATed on the pod's own node, so only these can
  // be their own client here.
  std::vector<IpAddr> hairpin;
  bool any = false;              // some usable endpoint exists anywhere
};

PortEndpoints categorize(std::vector<Candidate>& all, const NodeInfo& node) {
  std::sort(all.begin(), all.end(),
            [](const Candidate& a, const Candidate& b) { return a.backend < b.backend; });
  all.erase(std::unique(all.begin(), all.end(),
                        [](const Candidate& a, const Candidate& b) {
                          return a.backend == b.backend;
                        }),
            all.end());

  PortEndpoints out;
  const bool anyReady =
      std::any_of(all.begin(), all.end(), [](const Candidate& c) { return c.ready; });
  const bool anyLocalReady = std::any_of(all.begin(), all.end(),
                                         [](const Candidate& c) { return c.ready && c.local; });
  // Terminating fallback: only when no endpoint of the set is Ready.
  auto usable = [&](const Candidate& c, bool readyExists) {
    return readyExists ? c.ready : c.servingTerminating;
  };

  // Topology hints: used when every usable endpoint carries zone hints and one names our zone.
  bool useHints = !node.zone.empty();
  bool hintForZone = false;
  for (const auto& c : all) {
    if (!usable(c, anyReady)) {
      continue;
    }
    const auto& hints = c.endpoint->details().hintsForZones;
    if (hints.empty()) {
      useHints = false;
    }
    if (std::find(hints.begin(), hints.end(), node.zone) != hints.end()) {
      hintForZone = true;
    }
  }
  useHints = useHints && hintForZone;

  for (const auto& c : all) {
    bool used = false;
    if (usable(c, anyReady)) {
      out.any = true;
      const auto& hints = c.endpoint->details().hintsForZones;
      if (!useHints || std::find(hints.begin(), hints.end(), node.zone) != hints.end()) {
        out.cluster.push_back(c.backend);
        used = true;
      }
    }
    if (c.local && usable(c, anyLocalReady)) {
      out.local.push_back(c.backend);
      used = true;
    }
    if (used && (node.name.empty() || c.local || c.endpoint->nodeName.empty())) {
      out.hairpin.push_back(c.backend.ip);
    }
  }
  return out;
}

std::vector<Candidate> candidates(const k8s::Snapshot& snap, const Service& svc,
                                  const k8s::ServicePort& sp, IpFamily family,
                                  const NodeInfo& node) {
  std::vector<Candidate> out;
  snap.forEachSliceOf(svc.meta.namespace_, svc.meta.name, [&](const k8s::EndpointSlice& slice) {
    if (slice.addressType != addressTypeOf(family)) {
      return;
    }
    const auto port = k8s::targetPortIn(slice, sp.name, sp.protocol);
    if (!port) {
      return;
    }
    for (const auto& ep : slice.endpoints) {
      if (ep.addresses.empty() || ep.addresses.front().family() != family) {
        continue;
      }
      Candidate c;
      c.backend = {ep.addresses.front(), *port};
      c.ready = ep.conditions.ready;
      c.servingTerminating = ep.conditions.serving && ep.conditions.terminating;
      c.local = !node.name.empty() && ep.nodeName == node.name;
      c.endpoint = &ep;
      out.push_back(c);
    }
  });
  return out;
}

/// Static chains and rules of one family's table; endpoint chains are added by addEndpointChains.
std::vector<Chain> staticChains(IpFamily family, const NodeInfo& node) {
  auto rule = [](RuleKind k, std::string target = {}) {
    StaticRule r;
    r.kind = k;
    r.target = std::move(target);
    return r;
  };
  std::vector<Chain> chains;
  chains.push_back({kRejectChain, std::nullopt, {rule(RuleKind::Reject)}});
  // Filter hooks: LB source ranges before DNAT; destinations without endpoints on every path a
  // new connection takes (input: NodePorts; forward: routed; output: from the node); wrong ports
  // of ClusterIPs after DNAT (a DNATed packet no longer has a ClusterIP destination). Only a
  // connection's first packet is checked (as kube-proxy does): the rest of it skips the lookups.
  chains.push_back({"filter-prerouting", BaseChain{ChainType::Filter, Hook::Prerouting, -110},
                    {rule(RuleKind::JumpIfNew, "firewall-check")}});
  chains.push_back({"filter-input", BaseChain{ChainType::Filter, Hook::Input, -110},
                    {rule(RuleKind::JumpIfNew, "no-endpoints-check")}});
  chains.push_back({"filter-forward", BaseChain{ChainType::Filter, Hook::Forward, -110},
                    {rule(RuleKind::JumpIfNew, "no-endpoints-check"),
                     rule(RuleKind::JumpIfNew, "cluster-ips-check")}});
  chains.push_back({"filter-output", BaseChain{ChainType::Filter, Hook::Output, -110},
                    {rule(RuleKind::JumpIfNew, "no-endpoints-check")}});
  chains.push_back({"filter-output-post-dnat", BaseChain{ChainType::Filter, Hook::Output, -90},
                    {rule(RuleKind::JumpIfNew, "cluster-ips-check")}});
  chains.push_back({"firewall-check", std::nullopt, {rule(RuleKind::FirewallCheck)}});
  chains.push_back({"no-endpoints-check", std::nullopt, {rule(RuleKind::NoEndpointsVmap)}});
  Chain clusterIpsCheck{"cluster-ips-check", std::nullopt, {rule(RuleKind::ClusterIpsReject)}};
  for (const auto& cidr : node.serviceCidrs) {
    if (cidr.family() == family) {
      StaticRule r = rule(RuleKind::DropServiceCidr);
      r.cidr = cidr;
      clusterIpsCheck.rules.push_back(r);
    }
  }
  chains.push_back(std::move(clusterIpsCheck));
  // NAT hooks.
  chains.push_back({"nat-prerouting", BaseChain{ChainType::Nat, Hook::Prerouting, -100},
                    {rule(RuleKind::Jump, "services")}});
  chains.push_back({"nat-output", BaseChain{ChainType::Nat, Hook::Output, -100},
                    {rule(RuleKind::Jump, "services")}});
  chains.push_back({"nat-postrouting", BaseChain{ChainType::Nat, Hook::Postrouting, 100},
                    {rule(RuleKind::Jump, "masquerading")}});
  Chain services{"services", std::nullopt, {}};
  for (const auto& cidr : node.clusterCidrs) {
    if (cidr.family() == family) {
      StaticRule r = rule(RuleKind::MarkFromOutside);
      r.cidr = cidr;
      services.rules.push_back(r);
    }
  }
  services.rules.push_back(rule(RuleKind::MarkServices));
  services.rules.push_back(rule(RuleKind::ServiceVmap));
  chains.push_back(std::move(services));
  chains.push_back({"masquerading", std::nullopt,
                    {rule(RuleKind::HairpinMark), rule(RuleKind::ReturnUnmarked),
                     rule(RuleKind::Masquerade)}});
  return chains;
}

class TableBuilder {
 public:
  TableBuilder(Table& table, const NodeInfo& node) : t_(table), node_(node) {}

  void addService(const k8s::Snapshot& snap, const Service& svc) {
    if (svc.type == k8s::ServiceType::ExternalName || svc.headless) {
      return;
    }
    const IpFamily family = t_.family;
    const IpAddr* clusterIp = nullptr;
    for (const auto& ip : svc.clusterIPs) {
      if (ip.family() == family) {
        clusterIp = &ip;
        break;
      }
    }
    if (clusterIp == nullptr) {
      return;
    }
    t_.clusterIps.insert(*clusterIp);
    // ClientIP affinity: its timeout in seconds (the API allows 1..86400); 0 = no affinity.
    const std::uint32_t affinity =
        svc.sessionAffinity == k8s::SessionAffinity::ClientIP
            ? static_cast<std::uint32_t>(std::clamp(svc.sessionAffinityTimeoutSeconds, 1, 86400))
            : 0;
    const bool externalLocal = svc.externalTrafficPolicy == TrafficPolicy::Local;
    const bool internalLocal = svc.internalTrafficPolicy == TrafficPolicy::Local;
    const bool hasNodePorts =
        svc.type == k8s::ServiceType::NodePort || svc.type == k8s::ServiceType::LoadBalancer;

    for (const auto& sp : svc.ports) {
      if (sp.port <= 0 || sp.port > 65535) {
        continue;
      }
      auto all = candidates(snap, svc, sp, family, node_);
      const PortEndpoints eps = categorize(all, node_);
      t_.hairpin.insert(eps.hairpin.begin(), eps.hairpin.end());
      const std::uint8_t proto = protoNumber(sp.protocol);
      owner_ = svc.meta.namespace_ + "/" + svc.meta.name + ":" +
               (sp.name.empty() ? std::to_string(sp.port) : sp.name);
      const auto port = static_cast<std::uint16_t>(sp.port);

      addDestination({*clusterIp, proto, port}, internalLocal ? eps.local : eps.cluster,
                     internalLocal && eps.any, affinity, node_.masqueradeAll);

      const auto& external = externalLocal ? eps.local : eps.cluster;
      const bool dropExternal = externalLocal && eps.any;
      const bool masqExternal = !externalLocal || node_.masqueradeAll;
      if (hasNodePorts && sp.nodePort > 0 && sp.nodePort <= 65535) {
        for (const auto& ip : node_.nodePortIps) {
          if (ip.family() == family) {
            addDestination({ip, proto, static_cast<std::uint16_t>(sp.nodePort)}, external,
                           dropExternal, affinity, masqExternal);
          }
        }
      }
      for (const auto& ip : svc.externalIPs) {
        if (ip.family() == family) {
          addDestination({ip, proto, port}, external, dropExternal, affinity, masqExternal);
        }
      }
      if (svc.type == k8s::ServiceType::LoadBalancer) {
        for (const auto& ing : svc.loadBalancerIngress) {
          if (!ing.ip || ing.ip->family() != family ||
              ing.ipMode == k8s::LoadBalancerIpMode::Proxy) {
            continue;
          }
          const ServiceKey key{*ing.ip, proto, port};
          addDestination(key, external, dropExternal, affinity, masqExternal);
          bool ranges = false;
          for (const auto& cidr : svc.loadBalancerSourceRanges) {
            if (cidr.family() == family) {
              t_.firewallAllow.insert({key, cidr});
              ranges = true;
            }
          }
          if (ranges) {
            t_.firewallIps.insert(key);
          }
        }
      }
    }
  }

  void finish() {
    for (std::uint32_t n : t_.endpointCounts) {
      StaticRule r;
      r.kind = RuleKind::DnatRandom;
      r.n = n;
      t_.chains.push_back({endpointsChainName(n), std::nullopt, {r}});
    }
    for (const auto& [n, timeout] : affinityChains_) {
      auto rule = [n = n](RuleKind kind, std::uint32_t t = 0) {
        StaticRule r;
        r.kind = kind;
        r.n = n;
        r.timeoutSeconds = t;
        return r;
      };
      t_.chains.push_back({affinityChainName(n, timeout), std::nullopt,
                           {rule(RuleKind::AffinityPick), rule(RuleKind::AffinityRemember, timeout),
                            rule(RuleKind::AffinityRecall), rule(RuleKind::AffinityDnat)}});
    }
  }

 private:
  void addDestination(const ServiceKey& key, const std::vector<Backend>& eps, bool dropWhenEmpty,
                      std::uint32_t affinity, bool masquerade) {
    t_.owners.emplace(key, owner_);
    if (eps.empty()) {
      t_.noEndpointServices[key] =
          dropWhenEmpty ? Verdict::drop() : Verdict::gotoChain(kRejectChain);
      return;
    }
    // Several Services may claim one destination (e.g. the same externalIP); the first in
    // namespace/name order wins, as a deterministic tie-break.
    if (t_.serviceIps.count(key) != 0) {
      return;
    }
    const auto n = static_cast<std::uint32_t>(eps.size());
    if (affinity != 0) {
      t_.affinityCounts.insert(n);
      affinityChains_.insert({n, affinity});
      t_.serviceIps[key] = Verdict::gotoChain(affinityChainName(n, affinity));
    } else {
      t_.endpointCounts.insert(n);
      t_.serviceIps[key] = Verdict::gotoChain(endpointsChainName(n));
    }
    auto& backends = affinity != 0 ? t_.affinityBackends[n] : t_.backends[n];
    for (std::uint32_t slot = 0; slot < n; ++slot) {
      backends[{key, slot}] = eps[slot];
    }
    if (masquerade) {
      t_.masqueradeServices.insert(key);
    }
  }

  Table& t_;
  const NodeInfo& node_;
  std::set<std::pair<std::uint32_t, std::uint32_t>> affinityChains_;  // (N, timeout)
  std::string owner_;  // of the Service port being added
};

}  // namespace

NodeInfo makeNodeInfo(const k8s::Snapshot& snapshot, const ProxyOptions& options,
                      const std::vector<IpAddr>& localAddresses) {
  NodeInfo node;
  node.name = options.nodeName;
  node.nodeIps = options.nodeIPs;
  node.clusterCidrs = options.clusterCIDRs;
  node.serviceCidrs = options.serviceCIDRs;
  node.masqueradeAll = options.masqueradeAll;
  if (const auto* n = snapshot.of<k8s::Node>().get(options.nodeName)) {
    if (auto it = n->meta.labels.find(k8s::kZoneLabel); it != n->meta.labels.end()) {
      node.zone = it->second;
    }
  }
  std::set<IpAddr> ips;
  auto consider = [&](const IpAddr& ip) {
    if (ip.isLoopback() || ip.isUnspecified()) {
      return;
    }
    if (options.nodePortAddresses.empty()) {
      ips.insert(ip);
      return;
    }
    for (const auto& cidr : options.nodePortAddresses) {
      if (cidr.contains(ip)) {
        ips.insert(ip);
        return;
      }
    }
  };
  for (const auto& ip : options.nodeIPs) {
    consider(ip);
  }
  if (!options.nodePortAddresses.empty()) {
    for (const auto& ip : localAddresses) {
      consider(ip);
    }
  }
  node.nodePortIps.assign(ips.begin(), ips.end());
  return node;
}

Ruleset compile(const k8s::Snapshot& snapshot, const NodeInfo& node) {
  Ruleset rs;
  std::set<IpFamily> families;
  for (const auto& ip : node.nodeIps) {
    families.insert(ip.family());
  }
  for (IpFamily family : families) {
    Table table;
    table.family = family;
    table.chains = staticChains(family, node);
    TableBuilder builder(table, node);
    for (const auto& entry : snapshot.of<k8s::Service>()) {
      builder.addService(snapshot, *entry.value);
    }
    builder.finish();
    rs.tables.push_back(std::move(table));
  }
  return rs;
}

}  // namespace kdp::proxy
