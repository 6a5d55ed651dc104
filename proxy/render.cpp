#include "proxy/render.h"

#include <vector>

namespace kdp::proxy {

namespace {

std::string protoName(std::uint8_t p) {
  switch (p) {
    case kProtoTcp: return "tcp";
    case kProtoUdp: return "udp";
    case kProtoSctp: return "sctp";
    default: return std::to_string(p);
  }
}

std::string hookName(Hook h) {
  switch (h) {
    case Hook::Prerouting: return "prerouting";
    case Hook::Input: return "input";
    case Hook::Forward: return "forward";
    case Hook::Output: return "output";
    case Hook::Postrouting: return "postrouting";
  }
  return "";
}

/// The affinity-N key: a hash of (client . destination), see RuleKind::AffinityRecall.
std::string affinityKey(IpFamily family) {
  const std::string fam = family == IpFamily::V4 ? "ip" : "ip6";
  return "jhash " + fam + " saddr . " + fam + " daddr . meta l4proto . th dport mod 4294967295 seed 0x" +
         std::to_string(kAffinityHashSeed);
}

std::string key(const ServiceKey& k) {
  return k.ip.str() + " . " + protoName(k.proto) + " . " + std::to_string(k.port);
}

std::string verdict(const Verdict& v) {
  return v.kind == Verdict::Kind::Drop ? "drop" : "goto " + v.chain;
}

/// Appends `name { type ...; [flags ...;] elements = { ... } }` with one element per line.
void renderSet(std::string& out, const std::string& kind, const std::string& name,
               const std::string& type, const std::string& flags,
               const std::vector<std::string>& elements) {
  out += "\t" + kind + " " + name + " {\n\t\t" + type + "\n";
  if (!flags.empty()) {
    out += "\t\tflags " + flags + "\n";
  }
  if (!elements.empty()) {
    out += "\t\telements = {\n";
    for (std::size_t i = 0; i < elements.size(); ++i) {
      out += "\t\t\t" + elements[i] + (i + 1 < elements.size() ? ",\n" : "\n");
    }
    out += "\t\t}\n";
  }
  out += "\t}\n";
}

void renderTable(std::string& out, const Table& t) {
  const bool v4 = t.family == IpFamily::V4;
  const std::string fam = v4 ? "ip" : "ip6";
  const std::string addr = v4 ? "ipv4_addr" : "ipv6_addr";
  const std::string svcType = addr + " . inet_proto . inet_service";
  const std::string head = fam + " " + kTableName;
  out += "add table " + head + "\ndelete table " + head + "\ntable " + head + " {\n";

  std::vector<std::string> el;
  auto keysOf = [&](const std::set<ServiceKey>& s) {
    el.clear();
    for (const auto& k : s) {
      el.push_back(key(k));
    }
  };
  auto vmapOf = [&](const std::map<ServiceKey, Verdict>& m) {
    el.clear();
    for (const auto& [k, v] : m) {
      el.push_back(key(k) + " : " + verdict(v));
    }
  };
  // The elements of backends-N (or affinity-backends-N): service . slot : ip . port.
  auto backendsOf = [&](const auto& byCount, std::uint32_t n) {
    el.clear();
    if (auto it = byCount.find(n); it != byCount.end()) {
      for (const auto& [k, b] : it->second) {
        el.push_back(key(k.service) + " . " + std::to_string(k.slot) + " : " + b.ip.str() +
                     " . " + std::to_string(b.port));
      }
    }
  };

  vmapOf(t.serviceIps);
  renderSet(out, "map", kServiceIps, "type " + svcType + " : verdict", "", el);
  vmapOf(t.noEndpointServices);
  renderSet(out, "map", kNoEndpointServices, "type " + svcType + " : verdict", "", el);
  keysOf(t.masqueradeServices);
  renderSet(out, "set", kMasqueradeServices, "type " + svcType, "", el);
  el.clear();
  for (const auto& ip : t.clusterIps) {
    el.push_back(ip.str());
  }
  renderSet(out, "set", kClusterIps, "type " + addr, "", el);
  keysOf(t.firewallIps);
  renderSet(out, "set", kFirewallIps, "type " + svcType, "", el);
  el.clear();
  for (const auto& f : t.firewallAllow) {
    el.push_back(key(f.service) + " . " + f.source.str());
  }
  renderSet(out, "set", kFirewallAllow, "type " + svcType + " . " + addr, "interval", el);
  el.clear();
  for (const auto& ip : t.hairpin) {
    el.push_back(ip.str() + " . " + ip.str());
  }
  renderSet(out, "set", kHairpin, "type " + addr + " . " + addr, "", el);
  for (std::uint32_t n : t.endpointCounts) {
    backendsOf(t.backends, n);
    renderSet(out, "map", backendsMapName(n),
              "typeof " + fam + " daddr . meta l4proto . th dport . numgen random mod 1 : " +
                  fam + " daddr . th dport",
              "", el);
  }
  for (std::uint32_t n : t.affinityCounts) {
    // The key is a 32-bit jhash, declared through numgen's type: nft 1.0.6 crashes listing a
    // map declared `typeof jhash ...`.
    renderSet(out, "map", affinityMapName(n),
              "typeof numgen random mod 1 : ct mark\n\t\tsize " + std::to_string(kAffinityMapSize),
              "dynamic,timeout", {});
    backendsOf(t.affinityBackends, n);
    renderSet(out, "map", affinityBackendsMapName(n),
              "type " + svcType + " . mark : " + addr + " . inet_service", "", el);
  }

  for (const auto& c : t.chains) {
    out += "\tchain " + c.name + " {\n";
    if (c.base) {
      out += "\t\ttype " + std::string(c.base->type == ChainType::Nat ? "nat" : "filter") +
             " hook " + hookName(c.base->hook) + " priority " +
             std::to_string(c.base->priority) + "; policy accept;\n";
    }
    for (const auto& r : c.rules) {
      out += "\t\t" + renderRule(r, t.family) + "\n";
    }
    out += "\t}\n";
  }
  out += "}\n";
}

}  // namespace

std::string renderRule(const StaticRule& rule, IpFamily family) {
  const std::string fam = family == IpFamily::V4 ? "ip" : "ip6";
  const std::string dst = fam + " daddr";
  const std::string src = fam + " saddr";
  const std::string svc = dst + " . meta l4proto . th dport";
  const std::string mark = "meta mark set meta mark | 0x4000";
  switch (rule.kind) {
    case RuleKind::Jump: return "jump " + rule.target;
    case RuleKind::JumpIfNew: return "ct state new jump " + rule.target;
    case RuleKind::Goto: return "goto " + rule.target;
    case RuleKind::Reject: return "reject";
    case RuleKind::FirewallCheck:
      return svc + " @" + kFirewallIps + " " + svc + " . " + src + " != @" + kFirewallAllow +
             " drop";
    case RuleKind::NoEndpointsVmap: return svc + " vmap @" + kNoEndpointServices;
    case RuleKind::ClusterIpsReject: return dst + " @" + kClusterIps + " reject";
    case RuleKind::DropServiceCidr: return dst + " " + rule.cidr.str() + " drop";
    case RuleKind::MarkFromOutside:
      return dst + " @" + kClusterIps + " " + src + " != " + rule.cidr.str() + " " + mark;
    case RuleKind::MarkServices: return svc + " @" + kMasqueradeServices + " " + mark;
    case RuleKind::ServiceVmap: return svc + " vmap @" + kServiceIps;
    case RuleKind::HairpinMark:
      return "ct status dnat " + src + " . " + dst + " @" + kHairpin + " " + mark;
    case RuleKind::ReturnUnmarked: return "meta mark & 0x4000 == 0 return";
    case RuleKind::Masquerade: return "meta mark set meta mark ^ 0x4000 masquerade fully-random";
    case RuleKind::DnatRandom:
      return "dnat " + fam + " to " + svc + " . numgen random mod " + std::to_string(rule.n) +
             " map @" + backendsMapName(rule.n);
    case RuleKind::AffinityPick: return "ct mark set numgen random mod " + std::to_string(rule.n);
    case RuleKind::AffinityRecall:
      return "ct mark set " + affinityKey(family) + " map @" + affinityMapName(rule.n);
    case RuleKind::AffinityRemember:
      return "update @" + affinityMapName(rule.n) + " { " + affinityKey(family) + " timeout " +
             std::to_string(rule.timeoutSeconds) + "s : ct mark }";
    case RuleKind::AffinityDnat:
      return "dnat " + fam + " to " + svc + " . ct mark map @" +
             affinityBackendsMapName(rule.n);
  }
  return "";
}

std::string renderNft(const Ruleset& ruleset) {
  std::string out;
  for (const auto& t : ruleset.tables) {
    renderTable(out, t);
  }
  return out;
}

}  // namespace kdp::proxy
