#include "proxy/incremental.h"

#include <algorithm>
#include <limits>
#include <set>
#include <utility>

#include "k8s/store.h"

namespace kdp::proxy {

namespace {

/// Chains made per endpoint count (endpoints-N, endpoints-affinity-N...): the part of the chain
/// list that follows the Services. The encoder draws the same line.
bool isEndpointChain(std::string_view name) { return name.starts_with("endpoints-"); }

/// Calls fn(elementsByCount, counts) for each family of backends maps a Table has.
template <class T, class Fn>
void forEachBackendMaps(T& table, Fn&& fn) {
  for (const auto& [maps, counts] : detail::backendMaps()) {
    fn(table.*maps, table.*counts);
  }
}

/// Moves the element under `key` (if any) from `from` to `into`.
template <class C, class K>
void moveKey(C& from, const K& key, C& into) {
  if (auto it = from.find(key); it != from.end()) {
    into.insert(from.extract(it));
  }
}

/// compile() of a snapshot holding only the Service under `key` (if it exists) and its slices.
Ruleset compileOne(const k8s::Snapshot& snapshot, std::string_view key, const NodeInfo& node) {
  k8s::Snapshot one;
  if (auto svc = snapshot.of<k8s::Service>().find(key)) {
    one.of<k8s::Service>().set(std::string(key), std::move(svc));
    std::string prefix(key);
    prefix += '/';
    snapshot.of<k8s::EndpointSlice>().forEachWithPrefix(prefix, [&](const auto& e) {
      one.of<k8s::EndpointSlice>().set(e.key, e.value);
    });
  }
  return compile(one, node);
}

/// Every destination a Service's own table mentions.
std::vector<ServiceKey> destinationsOf(const Table& t) {
  std::set<ServiceKey> keys;
  for (const auto& [k, v] : t.owners) keys.insert(k);
  for (const auto& [k, v] : t.serviceIps) keys.insert(k);
  for (const auto& [k, v] : t.noEndpointServices) keys.insert(k);
  for (const auto& k : t.masqueradeServices) keys.insert(k);
  for (const auto& k : t.firewallIps) keys.insert(k);
  for (const auto& f : t.firewallAllow) keys.insert(f.service);
  forEachBackendMaps(t, [&](const auto& byCount, const auto&) {
    for (const auto& [n, elements] : byCount) {
      for (const auto& [bk, b] : elements) keys.insert(bk.service);
    }
  });
  return {keys.begin(), keys.end()};
}

}  // namespace

/// Reference counts of what Services share in one family's table.
struct IncrementalCompiler::FamilyState {
  std::vector<Chain> fixedChains;          // the chains that do not follow endpoint counts
  std::map<std::string, Chain> chainDefs;  // endpoint chains seen, by name
  std::map<ServiceKey, std::uint32_t> claims;         // Services claiming each destination
  std::map<IpAddr, std::uint32_t> clusterIpRefs;      // Services holding each ClusterIP
  std::map<IpAddr, std::uint32_t> hairpinRefs;       // Services holding each hairpin address
  std::map<std::string, std::uint32_t> targetRefs;    // service-ips elements per target chain

  /// One Service more (+1) or less (-1) holding `ips` in `set` (ClusterIPs, hairpin addresses):
  /// the first holder adds an element, the last one's leaving removes it.
  static void countHolders(std::map<IpAddr, std::uint32_t>& refs, std::set<IpAddr>& set,
                           const std::vector<IpAddr>& ips, int delta, std::set<IpAddr>& before,
                           std::set<IpAddr>& after) {
    for (const auto& ip : ips) {
      if (delta > 0 && refs[ip]++ == 0) {
        set.insert(ip);
        after.insert(ip);
      } else if (auto it = refs.find(ip); delta < 0 && it != refs.end() && --it->second == 0) {
        refs.erase(it);
        set.erase(ip);
        before.insert(ip);
      }
    }
  }
  void countTarget(const Verdict& v, int delta) {
    if (v.kind != Verdict::Kind::Goto) {
      return;
    }
    if (delta > 0) {
      ++targetRefs[v.chain];
    } else if (auto it = targetRefs.find(v.chain); it != targetRefs.end() && --it->second == 0) {
      targetRefs.erase(it);
    }
  }

  /// The chain list: fixed chains, then the endpoint chains in use, by name.
  std::vector<Chain> chains(const Table& t) const {
    std::set<std::string> names;
    for (const auto& [name, refs] : targetRefs) {
      if (isEndpointChain(name)) {
        names.insert(name);
      }
    }
    for (std::uint32_t n : t.endpointCounts) {
      names.insert(endpointsChainName(n));
    }
    std::vector<Chain> out = fixedChains;
    for (const auto& name : names) {
      if (auto it = chainDefs.find(name); it != chainDefs.end()) {
        out.push_back(it->second);
      }
    }
    return out;
  }
};

IncrementalCompiler::IncrementalCompiler() = default;
IncrementalCompiler::~IncrementalCompiler() = default;
IncrementalCompiler::IncrementalCompiler(IncrementalCompiler&&) noexcept = default;
IncrementalCompiler& IncrementalCompiler::operator=(IncrementalCompiler&&) noexcept = default;

bool RulesetChange::touches(std::uint8_t proto) const {
  if (full) {
    return true;
  }
  for (const auto& t : tables) {
    for (const Table* side : {&t.before, &t.after}) {
      for (const auto& [k, v] : side->owners) {
        if (k.proto == proto) {
          return true;
        }
      }
    }
  }
  return false;
}

std::string serviceKeyOfSlice(const std::string& sliceKey) {
  const auto first = sliceKey.find('/');
  const auto second = first == std::string::npos ? first : sliceKey.find('/', first + 1);
  return second == std::string::npos ? sliceKey : sliceKey.substr(0, second);
}

std::set<std::string> servicesNamedBy(const k8s::Changes& changes) {
  std::set<std::string> services(changes.of(k8s::Kind::Service).begin(),
                                 changes.of(k8s::Kind::Service).end());
  for (const auto& key : changes.of(k8s::Kind::EndpointSlice)) {
    services.insert(serviceKeyOfSlice(key));
  }
  return services;
}

void IncrementalCompiler::reset(const k8s::Snapshot& snapshot, const NodeInfo& node) {
  node_ = node;
  initialized_ = true;
  model_ = compile(snapshot, node);
  rebuild(snapshot);
}

void IncrementalCompiler::rebuild(const k8s::Snapshot& snapshot) {
  state_.assign(model_.tables.size(), FamilyState{});
  footprints_.clear();
  for (std::size_t i = 0; i < model_.tables.size(); ++i) {
    Table& t = model_.tables[i];
    FamilyState& s = state_[i];
    for (auto& c : t.chains) {
      if (isEndpointChain(c.name)) {
        s.chainDefs.emplace(c.name, c);
      } else {
        s.fixedChains.push_back(c);
      }
    }
    for (const auto& [k, v] : t.serviceIps) {
      s.countTarget(v, +1);
    }
    t.chains = s.chains(t);
  }
  // What each Service claims on its own: the footprints, the destination claims, the ClusterIPs.
  for (const auto& entry : snapshot.of<k8s::Service>()) {
    const Ruleset own = compileOne(snapshot, entry.key, node_);
    auto& fp = footprints_[entry.key];
    fp.resize(own.tables.size());
    for (std::size_t i = 0; i < own.tables.size() && i < state_.size(); ++i) {
      fp[i].destinations = destinationsOf(own.tables[i]);
      fp[i].clusterIps.assign(own.tables[i].clusterIps.begin(), own.tables[i].clusterIps.end());
      fp[i].hairpin.assign(own.tables[i].hairpin.begin(), own.tables[i].hairpin.end());
      for (const auto& k : fp[i].destinations) {
        ++state_[i].claims[k];
      }
      for (const auto& ip : fp[i].clusterIps) {
        ++state_[i].clusterIpRefs[ip];
      }
      for (const auto& ip : fp[i].hairpin) {
        ++state_[i].hairpinRefs[ip];
      }
    }
  }
}

RulesetChange IncrementalCompiler::update(const k8s::Snapshot& snapshot,
                                          const k8s::Changes& changes, const NodeInfo& node) {
  RulesetChange change;
  if (!initialized_ || !(node == node_)) {
    reset(snapshot, node);
    change.full = true;
    change.servicesRecompiled = snapshot.count(k8s::Kind::Service);
    return change;
  }
  const std::set<std::string> services = servicesNamedBy(changes);
  if (services.empty()) {
    return change;
  }
  change.servicesRecompiled = services.size();

  // Each changed Service on its own, and whether any of its destinations, before or after, is
  // (or would be) claimed by another Service too.
  static const std::vector<Footprint> kNone;
  std::vector<std::pair<const std::string*, Ruleset>> compiled;
  compiled.reserve(services.size());
  bool clash = false;
  for (std::size_t i = 0; i < state_.size() && !clash; ++i) {
    std::map<ServiceKey, int> delta;
    for (const auto& key : services) {
      auto fp = footprints_.find(key);
      for (const auto& k : fp == footprints_.end() ? std::vector<ServiceKey>{}
                                                    : fp->second[i].destinations) {
        --delta[k];
      }
    }
    if (i == 0) {
      for (const auto& key : services) {
        compiled.emplace_back(&key, compileOne(snapshot, key, node_));
      }
    }
    for (const auto& [key, own] : compiled) {
      for (const auto& k : destinationsOf(own.tables[i])) {
        ++delta[k];
      }
    }
    for (const auto& [k, d] : delta) {
      auto it = state_[i].claims.find(k);
      const long before = it == state_[i].claims.end() ? 0 : it->second;
      if (before > 1 || before + d > 1) {
        clash = true;
        break;
      }
    }
  }
  if (clash) {
    // Two Services on one destination: the full compile decides which one wins.
    Ruleset old = std::move(model_);
    reset(snapshot, node);
    for (std::size_t i = 0; i < model_.tables.size(); ++i) {
      change.tables.push_back({std::move(old.tables[i]), model_.tables[i]});
    }
    return change;
  }

  for (std::size_t i = 0; i < state_.size(); ++i) {
    Table& t = model_.tables[i];
    FamilyState& s = state_[i];
    TableChange tc;
    tc.before.family = tc.after.family = t.family;
    tc.before.chains = t.chains;
    for (const auto& [maps, counts] : detail::backendMaps()) {
      tc.before.*counts = t.*counts;
    }
    Table& before = tc.before;
    Table& after = tc.after;

    // Out: every element of the changed Services' destinations (no other Service has them).
    for (const auto& key : services) {
      auto fp = footprints_.find(key);
      if (fp == footprints_.end()) {
        continue;
      }
      for (const auto& k : fp->second[i].destinations) {
        if (auto it = s.claims.find(k); it != s.claims.end() && --it->second == 0) {
          s.claims.erase(it);
        }
        if (auto it = t.serviceIps.find(k); it != t.serviceIps.end()) {
          s.countTarget(it->second, -1);
        }
        moveKey(t.serviceIps, k, before.serviceIps);
        moveKey(t.noEndpointServices, k, before.noEndpointServices);
        moveKey(t.masqueradeServices, k, before.masqueradeServices);
        moveKey(t.firewallIps, k, before.firewallIps);
        moveKey(t.owners, k, before.owners);
        for (auto it = t.firewallAllow.lower_bound(FirewallAllow{k, Cidr{}});
             it != t.firewallAllow.end() && it->service == k;) {
          before.firewallAllow.insert(*it);
          it = t.firewallAllow.erase(it);
        }
        auto moveBackends = [&](auto& byCount, auto& counts, auto& beforeByCount) {
          for (auto m = byCount.begin(); m != byCount.end();) {
            auto& elements = m->second;
            for (auto it = elements.lower_bound(BackendKey{k, 0});
                 it != elements.end() && it->first.service == k;) {
              beforeByCount[m->first].insert(*it);
              it = elements.erase(it);
            }
            if (elements.empty()) {
              counts.erase(m->first);
              m = byCount.erase(m);
            } else {
              ++m;
            }
          }
        };
        for (const auto& [maps, counts] : detail::backendMaps()) {
          moveBackends(t.*maps, t.*counts, before.*maps);
        }
      }
      FamilyState::countHolders(s.clusterIpRefs, t.clusterIps, fp->second[i].clusterIps, -1,
                                before.clusterIps, after.clusterIps);
      FamilyState::countHolders(s.hairpinRefs, t.hairpin, fp->second[i].hairpin, -1,
                                before.hairpin, after.hairpin);
    }

    // In: what each changed Service compiles to now.
    for (const auto& [key, own] : compiled) {
      const Table& o = own.tables[i];
      auto& fps = footprints_[*key];
      fps.resize(state_.size());
      Footprint& fp = fps[i];
      fp.destinations = destinationsOf(o);
      fp.clusterIps.assign(o.clusterIps.begin(), o.clusterIps.end());
      fp.hairpin.assign(o.hairpin.begin(), o.hairpin.end());
      for (const auto& k : fp.destinations) {
        ++s.claims[k];
      }
      FamilyState::countHolders(s.clusterIpRefs, t.clusterIps, fp.clusterIps, +1,
                                before.clusterIps, after.clusterIps);
      FamilyState::countHolders(s.hairpinRefs, t.hairpin, fp.hairpin, +1, before.hairpin,
                                after.hairpin);
      for (const auto& [k, v] : o.serviceIps) {
        s.countTarget(v, +1);
        t.serviceIps.insert_or_assign(k, v);
        after.serviceIps.insert_or_assign(k, v);
      }
      for (const auto& [k, v] : o.noEndpointServices) {
        t.noEndpointServices.insert_or_assign(k, v);
        after.noEndpointServices.insert_or_assign(k, v);
      }
      for (const auto& [k, v] : o.owners) {
        t.owners.insert_or_assign(k, v);
        after.owners.insert_or_assign(k, v);
      }
      t.masqueradeServices.insert(o.masqueradeServices.begin(), o.masqueradeServices.end());
      after.masqueradeServices.insert(o.masqueradeServices.begin(), o.masqueradeServices.end());
      t.firewallIps.insert(o.firewallIps.begin(), o.firewallIps.end());
      after.firewallIps.insert(o.firewallIps.begin(), o.firewallIps.end());
      t.firewallAllow.insert(o.firewallAllow.begin(), o.firewallAllow.end());
      after.firewallAllow.insert(o.firewallAllow.begin(), o.firewallAllow.end());
      auto addBackends = [&](const auto& ownByCount, auto& byCount, auto& counts,
                             auto& afterByCount) {
        for (const auto& [n, elements] : ownByCount) {
          if (elements.empty()) {
            continue;
          }
          counts.insert(n);
          auto& into = byCount[n];
          for (const auto& [bk, b] : elements) {
            into.insert_or_assign(bk, b);
            afterByCount[n].insert_or_assign(bk, b);
          }
        }
      };
      for (const auto& [maps, counts] : detail::backendMaps()) {
        addBackends(o.*maps, t.*maps, t.*counts, after.*maps);
      }
      for (const auto& c : o.chains) {
        if (isEndpointChain(c.name)) {
          s.chainDefs.try_emplace(c.name, c);
        }
      }
    }
    t.chains = s.chains(t);
    after.chains = t.chains;
    for (const auto& [maps, counts] : detail::backendMaps()) {
      after.*counts = t.*counts;
    }
    change.tables.push_back(std::move(tc));
  }
  for (const auto& key : services) {
    if (snapshot.of<k8s::Service>().get(key) == nullptr) {
      footprints_.erase(key);
    }
  }
  return change;
}

}  // namespace kdp::proxy
