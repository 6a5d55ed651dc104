#include "proxy/detail/encode.h"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_conntrack_common.h>

#include <algorithm>
#include <cstring>
#include <set>

#include "nft/expr.h"

namespace kdp::proxy::detail {

namespace {

using nft::Element;
using nft::ExprHandle;
using Bytes = std::vector<std::uint8_t>;

// nft's datatype ids, so that `nft list` shows our sets with their types.
constexpr std::uint32_t kTypeIpv4 = 7, kTypeIpv6 = 8, kTypeProto = 12, kTypeService = 13,
                        kTypeMark = 19;
constexpr std::uint32_t kTypeBits = 6;

std::uint32_t concatType(std::initializer_list<std::uint32_t> types) {
  std::uint32_t t = 0;
  for (auto x : types) {
    t = (t << kTypeBits) | x;
  }
  return t;
}

struct Fam {
  IpFamily family;
  std::uint16_t proto;     // NFPROTO_*
  std::uint32_t addrLen;   // bytes
  std::uint32_t words;     // addrLen / 4
  std::uint32_t addrType;  // nft datatype id
  std::uint32_t saddrOff, daddrOff;
};

Fam famOf(IpFamily f) {
  if (f == IpFamily::V4) {
    return {f, NFPROTO_IPV4, 4, 1, kTypeIpv4, 12, 16};
  }
  return {f, NFPROTO_IPV6, 16, 4, kTypeIpv6, 8, 24};
}

void putAddr(Bytes& b, const IpAddr& ip) {
  b.insert(b.end(), ip.bytes().begin(), ip.bytes().begin() + static_cast<long>(ip.size()));
}
void putProto(Bytes& b, std::uint8_t proto) { b.insert(b.end(), {proto, 0, 0, 0}); }
void putPort(Bytes& b, std::uint16_t port) {
  b.insert(b.end(), {static_cast<std::uint8_t>(port >> 8), static_cast<std::uint8_t>(port), 0, 0});
}
void putHost32(Bytes& b, std::uint32_t v) {
  std::uint8_t x[4];
  std::memcpy(x, &v, 4);
  b.insert(b.end(), x, x + 4);
}
Bytes serviceKey(const ServiceKey& k) {
  Bytes b;
  putAddr(b, k.ip);
  putProto(b, k.proto);
  putPort(b, k.port);
  return b;
}
Element verdictElement(const ServiceKey& k, const Verdict& v) {
  Element e;
  e.key = serviceKey(k);
  e.hasVerdict = true;
  if (v.kind == Verdict::Kind::Drop) {
    e.verdict = NF_DROP;
  } else {
    e.verdict = NFT_GOTO;
    e.chain = v.chain;
  }
  return e;
}

Element toElement(const std::pair<const ServiceKey, Verdict>& kv) {
  return verdictElement(kv.first, kv.second);
}
Element toElement(const ServiceKey& k) { return Element{serviceKey(k), {}, {}, false, 0, {}}; }
Element toElement(const IpAddr& ip) {
  Element e;
  putAddr(e.key, ip);
  return e;
}
Element toElement(const FirewallAllow& f) {
  Element e;
  e.key = serviceKey(f.service);
  e.keyEnd = e.key;
  // The source range: first and last address of the prefix.
  auto first = f.source.addr().bytes();
  auto last = first;
  const std::size_t n = f.source.addr().size();
  for (std::size_t i = 0; i < n; ++i) {
    const int bitsHere = std::max(0, std::min(8, static_cast<int>(f.source.prefixLen()) - static_cast<int>(i) * 8));
    const auto hostMask = static_cast<std::uint8_t>(0xff >> bitsHere);
    last[i] = static_cast<std::uint8_t>(first[i] | hostMask);
  }
  e.key.insert(e.key.end(), first.begin(), first.begin() + static_cast<long>(n));
  e.keyEnd.insert(e.keyEnd.end(), last.begin(), last.begin() + static_cast<long>(n));
  return e;
}
Element toElement(const std::pair<const BackendKey, Backend>& kv) {
  Element e;
  e.key = serviceKey(kv.first.service);
  putHost32(e.key, kv.first.slot);
  putAddr(e.data, kv.second.ip);
  putPort(e.data, kv.second.port);
  return e;
}
/// hairpin holds (endpoint . endpoint).
Element hairpinElement(const IpAddr& ip) {
  Element e;
  putAddr(e.key, ip);
  putAddr(e.key, ip);
  return e;
}

// --- rules -------------------------------------------------------------------------------

struct RuleBuilder {
  const Fam& f;
  std::vector<ExprHandle> x;

  void add(ExprHandle e) { x.push_back(std::move(e)); }
  /// daddr . l4proto . th dport into words base.. ; returns the first register.
  std::uint32_t loadServiceKey(std::uint32_t base = 0) {
    add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.daddrOff, f.addrLen, nft::reg32(base)));
    add(nft::meta(NFT_META_L4PROTO, nft::reg32(base + f.words)));
    add(nft::payload(NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, nft::reg32(base + f.words + 1)));
    return nft::reg32(base);
  }
  std::uint32_t keyWords() const { return f.words + 2; }
  void lookupSet(std::uint32_t sreg, const char* set, bool invert = false) {
    add(nft::lookup(sreg, set, 0, -1, invert));
  }
  /// The address at `offset`, masked to the prefix of `cidr`, into NFT_REG_1.
  void loadMasked(std::uint32_t offset, const Cidr& cidr) {
    add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, offset, f.addrLen, NFT_REG_1));
    add(nft::bitwise(NFT_REG_1, NFT_REG_1, mask(cidr), Bytes(f.addrLen, 0)));
  }
  Bytes mask(const Cidr& cidr) const {
    Bytes m(f.addrLen, 0);
    for (std::size_t i = 0; i < f.addrLen; ++i) {
      const int bits = std::max(0, std::min(8, static_cast<int>(cidr.prefixLen()) - static_cast<int>(i) * 8));
      m[i] = static_cast<std::uint8_t>(0xff00 >> bits);
    }
    return m;
  }
  Bytes network(const Cidr& cidr) const {
    Bytes n = mask(cidr);
    for (std::size_t i = 0; i < f.addrLen; ++i) {
      n[i] = static_cast<std::uint8_t>(n[i] & cidr.addr().bytes()[i]);
    }
    return n;
  }
  void setMark() {
    add(nft::meta(NFT_META_MARK, NFT_REG_1));
    add(nft::bitwiseU32(NFT_REG_1, NFT_REG_1, ~kMasqueradeMark, kMasqueradeMark));
    add(nft::metaSet(NFT_META_MARK, NFT_REG_1));
  }
};

std::vector<ExprHandle> encodeRule(const StaticRule& rule, const Fam& f) {
  RuleBuilder b{f, {}};
  switch (rule.kind) {
    case RuleKind::Jump: b.add(nft::verdict(NFT_JUMP, rule.target)); break;
    case RuleKind::JumpIfNew:
      b.add(nft::ct(NFT_CT_STATE, NFT_REG_1));
      b.add(nft::bitwiseU32(NFT_REG_1, NFT_REG_1, NF_CT_STATE_BIT(IP_CT_NEW), 0));
      b.add(nft::cmpU32(NFT_REG_1, NFT_CMP_NEQ, 0));
      b.add(nft::verdict(NFT_JUMP, rule.target));
      break;
    case RuleKind::Goto: b.add(nft::verdict(NFT_GOTO, rule.target)); break;
    case RuleKind::Reject:
      b.add(nft::reject(NFT_REJECT_ICMP_UNREACH, f.family == IpFamily::V4 ? 3 : 4));
      break;
    case RuleKind::FirewallCheck: {
      b.lookupSet(b.loadServiceKey(), kFirewallIps);
      const auto reg = b.loadServiceKey();
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.saddrOff, f.addrLen,
                         nft::reg32(b.keyWords())));
      b.lookupSet(reg, kFirewallAllow, true);
      b.add(nft::verdict(NF_DROP));
      break;
    }
    case RuleKind::NoEndpointsVmap:
      b.add(nft::lookup(b.loadServiceKey(), kNoEndpointServices, 0, NFT_REG_VERDICT, false));
      break;
    case RuleKind::ClusterIpsReject:
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.daddrOff, f.addrLen, NFT_REG_1));
      b.lookupSet(NFT_REG_1, kClusterIps);
      b.add(nft::reject(NFT_REJECT_ICMP_UNREACH, f.family == IpFamily::V4 ? 3 : 4));
      break;
    case RuleKind::DropServiceCidr:
      b.loadMasked(f.daddrOff, rule.cidr);
      b.add(nft::cmp(NFT_REG_1, NFT_CMP_EQ, b.network(rule.cidr)));
      b.add(nft::verdict(NF_DROP));
      break;
    case RuleKind::MarkFromOutside: {
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.daddrOff, f.addrLen, NFT_REG_1));
      b.lookupSet(NFT_REG_1, kClusterIps);
      b.loadMasked(f.saddrOff, rule.cidr);
      b.add(nft::cmp(NFT_REG_1, NFT_CMP_NEQ, b.network(rule.cidr)));
      b.setMark();
      break;
    }
    case RuleKind::MarkServices:
      b.lookupSet(b.loadServiceKey(), kMasqueradeServices);
      b.setMark();
      break;
    case RuleKind::ServiceVmap:
      b.add(nft::lookup(b.loadServiceKey(), kServiceIps, 0, NFT_REG_VERDICT, false));
      break;
    case RuleKind::HairpinMark:
      b.add(nft::ct(NFT_CT_STATUS, NFT_REG_1));
      b.add(nft::bitwiseU32(NFT_REG_1, NFT_REG_1, IPS_DST_NAT, 0));
      b.add(nft::cmpU32(NFT_REG_1, NFT_CMP_NEQ, 0));
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.saddrOff, f.addrLen, nft::reg32(0)));
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.daddrOff, f.addrLen, nft::reg32(f.words)));
      b.lookupSet(nft::reg32(0), kHairpin);
      b.setMark();
      break;
    case RuleKind::ReturnUnmarked:
      b.add(nft::meta(NFT_META_MARK, NFT_REG_1));
      b.add(nft::bitwiseU32(NFT_REG_1, NFT_REG_1, kMasqueradeMark, 0));
      b.add(nft::cmpU32(NFT_REG_1, NFT_CMP_EQ, 0));
      b.add(nft::verdict(NFT_RETURN));
      break;
    case RuleKind::Masquerade:
      b.add(nft::meta(NFT_META_MARK, NFT_REG_1));
      b.add(nft::bitwiseU32(NFT_REG_1, NFT_REG_1, 0xffffffffu, kMasqueradeMark));
      b.add(nft::metaSet(NFT_META_MARK, NFT_REG_1));
      b.add(nft::masquerade(NF_NAT_RANGE_PROTO_RANDOM_FULLY));
      break;
    case RuleKind::DnatRandom:
    case RuleKind::AffinityDnat: {
      const auto key = b.loadServiceKey();
      const std::uint32_t slot = nft::reg32(b.keyWords());
      const bool affinity = rule.kind == RuleKind::AffinityDnat;
      if (affinity) {
        b.add(nft::ct(NFT_CT_MARK, slot));
      } else {
        b.add(nft::numgenRandom(slot, rule.n));
      }
      b.add(nft::lookup(key, affinity ? affinityBackendsMapName(rule.n) : backendsMapName(rule.n),
                        0, NFT_REG_1, false));
      b.add(nft::dnat(f.proto, NFT_REG_1, nft::reg32(f.words)));
      break;
    }
    case RuleKind::AffinityPick:
      b.add(nft::numgenRandom(NFT_REG_1, rule.n));
      b.add(nft::ctSet(NFT_CT_MARK, NFT_REG_1));
      break;
    case RuleKind::AffinityRecall:
    case RuleKind::AffinityRemember: {
      // jhash(src . dst . proto . port): the client, the destination key above it, the hash
      // and then ct mark in the words after them.
      b.add(nft::payload(NFT_PAYLOAD_NETWORK_HEADER, f.saddrOff, f.addrLen, nft::reg32(0)));
      b.loadServiceKey(f.words);
      const std::uint32_t words = f.words + b.keyWords();
      const std::uint32_t hash = nft::reg32(words);
      b.add(nft::jhash(nft::reg32(0), 4 * words, hash, 0xffffffffu, kAffinityHashSeed));
      if (rule.kind == RuleKind::AffinityRecall) {
        b.add(nft::lookup(hash, affinityMapName(rule.n), 0, NFT_REG_1, false));
        b.add(nft::ctSet(NFT_CT_MARK, NFT_REG_1));
      } else {
        const std::uint32_t mark = nft::reg32(words + 1);
        b.add(nft::ct(NFT_CT_MARK, mark));
        b.add(nft::dynsetUpdate(affinityMapName(rule.n), hash, mark,
                                std::uint64_t{rule.timeoutSeconds} * 1000));
      }
      break;
    }
  }
  return std::move(b.x);
}

std::uint32_t hookNum(Hook h) {
  switch (h) {
    case Hook::Prerouting: return NF_INET_PRE_ROUTING;
    case Hook::Input: return NF_INET_LOCAL_IN;
    case Hook::Forward: return NF_INET_FORWARD;
    case Hook::Output: return NF_INET_LOCAL_OUT;
    case Hook::Postrouting: return NF_INET_POST_ROUTING;
  }
  return NF_INET_PRE_ROUTING;
}

/// Adds every element of `c` to set `set`, converted a slice at a time: a full sync of 200k
/// elements never holds more than one slice of nft::Elements (each owns heap buffers).
template <class C, class F>
void addAll(nft::Batch& batch, std::uint16_t proto, const std::string& table,
            const std::string& set, const C& c, F toEl) {
  constexpr std::size_t kSlice = 8192;
  std::vector<Element> slice;
  slice.reserve(std::min(c.size(), kSlice));
  for (const auto& v : c) {
    slice.push_back(toEl(v));
    if (slice.size() == kSlice) {
      batch.addElements(proto, table, set, slice);
      slice.clear();
    }
  }
  if (!slice.empty()) {
    batch.addElements(proto, table, set, slice);
  }
}

/// Elements in `a` and not in `b` (both sorted containers of the same type).
template <class C, class F>
std::vector<Element> minus(const C& a, const C& b, F toEl) {
  std::vector<Element> out;
  auto i = a.begin();
  auto j = b.begin();
  while (i != a.end()) {
    if (j == b.end() || *i < *j) {
      out.push_back(toEl(*i));
      ++i;
    } else if (*j < *i) {
      ++j;
    } else {
      ++i;
      ++j;
    }
  }
  return out;
}

constexpr auto kAnyToElement = [](const auto& v) { return toElement(v); };

/// Calls fn(setName, container, toElement) for each set and map of the table.
template <class Fn>
void forEachSet(const Table& t, Fn&& fn) {
  fn(std::string(kServiceIps), t.serviceIps, kAnyToElement);
  fn(std::string(kNoEndpointServices), t.noEndpointServices, kAnyToElement);
  fn(std::string(kMasqueradeServices), t.masqueradeServices, kAnyToElement);
  fn(std::string(kClusterIps), t.clusterIps, kAnyToElement);
  fn(std::string(kFirewallIps), t.firewallIps, kAnyToElement);
  fn(std::string(kFirewallAllow), t.firewallAllow, kAnyToElement);
  fn(std::string(kHairpin), t.hairpin, [](const IpAddr& ip) { return hairpinElement(ip); });
}

using BackendsByCount = std::map<std::uint32_t, std::map<BackendKey, Backend>>;
const std::map<BackendKey, Backend>& backendsOf(const BackendsByCount& all, std::uint32_t n) {
  static const std::map<BackendKey, Backend> kEmpty;
  auto it = all.find(n);
  return it == all.end() ? kEmpty : it->second;
}

/// The size a set is declared with. The kernel sizes its hash from it once (a full sync of 220k
/// elements commits in half the time) but also refuses elements beyond it (ENFILE): leave room
/// to grow 4x; past that a sync fails and the full sync that follows declares a larger size.
std::uint32_t capacityFor(std::size_t elements) {
  return static_cast<std::uint32_t>(std::clamp<std::size_t>(4 * elements, 4096, 1u << 30));
}

void addBackendsMap(nft::Batch& batch, const Fam& f, const std::string& name,
                    std::size_t sizeHint) {
  nft::SetSpec s;
  s.name = name;
  s.keyType = concatType({f.addrType, kTypeProto, kTypeService, kTypeMark});
  s.keyLen = f.addrLen + 12;
  s.flags = NFT_SET_MAP;
  s.dataType = concatType({f.addrType, kTypeService});
  s.dataLen = f.addrLen + 4;
  s.sizeHint = capacityFor(sizeHint);
  batch.addSet(f.proto, kTableName, s);
}

/// affinity-N (filled by packets) and affinity-backends-N.
void addAffinityMaps(nft::Batch& batch, const Fam& f, std::uint32_t n, std::size_t sizeHint) {
  nft::SetSpec s;
  s.name = affinityMapName(n);
  s.keyType = kTypeMark;  // a 32-bit hash; nft -f's typeof says jhash (only the listing differs)
  s.keyLen = 4;
  s.flags = NFT_SET_MAP | NFT_SET_TIMEOUT | NFT_SET_EVAL;
  s.dataType = kTypeMark;
  s.dataLen = 4;
  s.sizeHint = kAffinityMapSize;
  batch.addSet(f.proto, kTableName, s);
  addBackendsMap(batch, f, affinityBackendsMapName(n), sizeHint);
}

void deleteAffinityMaps(nft::Batch& batch, const Fam& f, std::uint32_t n) {
  batch.deleteSet(f.proto, kTableName, affinityMapName(n));
  batch.deleteSet(f.proto, kTableName, affinityBackendsMapName(n));
}

/// Declares every chain, then fills them (a rule may jump to a chain declared after it).
void addChains(nft::Batch& batch, const Fam& f, const std::vector<const Chain*>& chains) {
  for (const Chain* c : chains) {
    nft::ChainSpec spec{c->name, std::nullopt};
    if (c->base) {
      spec.hook = nft::HookSpec{c->base->type == ChainType::Nat ? "nat" : "filter",
                                hookNum(c->base->hook), c->base->priority};
    }
    batch.addChain(f.proto, kTableName, spec);
  }
  for (const Chain* c : chains) {
    for (const auto& r : c->rules) {
      batch.addRule(f.proto, kTableName, c->name, encodeRule(r, f));
    }
  }
}
void addChains(nft::Batch& batch, const Fam& f, const std::vector<Chain>& chains) {
  std::vector<const Chain*> all;
  for (const auto& c : chains) {
    all.push_back(&c);
  }
  addChains(batch, f, all);
}

/// Chains made per endpoint count (endpoints-N, endpoints-affinity-N): the part of the static
/// layout that follows the Services.
bool isEndpointChain(const Chain& c) { return c.name.rfind("endpoints-", 0) == 0; }

void encodeElementDiffImpl(nft::Batch& batch, const Fam& f, const Table& from, const Table& to);

}  // namespace

std::uint16_t nfproto(IpFamily family) { return famOf(family).proto; }

void encodeDeleteTable(nft::Batch& batch, IpFamily family) {
  batch.addTable(nfproto(family), kTableName);
  batch.deleteTable(nfproto(family), kTableName);
}

void encodeFullTable(nft::Batch& batch, const Table& t) {
  const Fam f = famOf(t.family);
  const std::string table = kTableName;
  encodeDeleteTable(batch, t.family);
  batch.addTable(f.proto, table);

  const std::uint32_t svcType = concatType({f.addrType, kTypeProto, kTypeService});
  const std::uint32_t svcLen = f.addrLen + 8;
  auto set = [&](const char* name, std::uint32_t keyType, std::uint32_t keyLen) {
    nft::SetSpec s;
    s.name = name;
    s.keyType = keyType;
    s.keyLen = keyLen;
    return s;
  };
  auto vmap = [&](const char* name) {
    nft::SetSpec s = set(name, svcType, svcLen);
    s.flags = NFT_SET_MAP;
    s.dataType = NFT_DATA_VERDICT;
    return s;
  };
  {
    nft::SetSpec s = vmap(kServiceIps);
    s.sizeHint = capacityFor(t.serviceIps.size());
    batch.addSet(f.proto, table, s);
  }
  auto sized = [](nft::SetSpec spec, std::size_t n) {
    spec.sizeHint = capacityFor(n);
    return spec;
  };
  batch.addSet(f.proto, table, sized(vmap(kNoEndpointServices), t.noEndpointServices.size()));
  batch.addSet(f.proto, table,
               sized(set(kMasqueradeServices, svcType, svcLen), t.masqueradeServices.size()));
  batch.addSet(f.proto, table, sized(set(kClusterIps, f.addrType, f.addrLen), t.clusterIps.size()));
  batch.addSet(f.proto, table, set(kFirewallIps, svcType, svcLen));
  {
    nft::SetSpec s = set(kFirewallAllow, concatType({f.addrType, kTypeProto, kTypeService, f.addrType}),
                         svcLen + f.addrLen);
    s.flags = NFT_SET_INTERVAL | NFT_SET_CONCAT;
    s.concatFieldLengths = {static_cast<std::uint8_t>(f.addrLen), 1, 2,
                            static_cast<std::uint8_t>(f.addrLen)};
    batch.addSet(f.proto, table, s);
  }
  batch.addSet(f.proto, table,
               sized(set(kHairpin, concatType({f.addrType, f.addrType}), 2 * f.addrLen),
                     t.hairpin.size()));
  for (std::uint32_t n : t.endpointCounts) {
    addBackendsMap(batch, f, backendsMapName(n), backendsOf(t.backends, n).size());
  }
  for (std::uint32_t n : t.affinityCounts) {
    addAffinityMaps(batch, f, n, backendsOf(t.affinityBackends, n).size());
  }

  addChains(batch, f, t.chains);

  forEachSet(t, [&](const std::string& name, const auto& c, auto toEl) {
    if (!c.empty()) {
      addAll(batch, f.proto, table, name, c, toEl);
    }
  });
  for (const auto& [n, elements] : t.backends) {
    if (!elements.empty()) {
      addAll(batch, f.proto, table, backendsMapName(n), elements, kAnyToElement);
    }
  }
  for (const auto& [n, elements] : t.affinityBackends) {
    if (!elements.empty()) {
      addAll(batch, f.proto, table, affinityBackendsMapName(n), elements, kAnyToElement);
    }
  }
}

bool encodeTableDiff(nft::Batch& batch, const Table& from, const Table& to) {
  const Fam f = famOf(to.family);
  std::vector<const Chain*> fixedFrom, fixedTo, addedChains;
  std::vector<std::string> removedChains;
  std::set<std::string> fromNames, toNames;
  for (const auto& c : from.chains) {
    if (isEndpointChain(c)) {
      fromNames.insert(c.name);
    } else {
      fixedFrom.push_back(&c);
    }
  }
  for (const auto& c : to.chains) {
    if (isEndpointChain(c)) {
      toNames.insert(c.name);
      if (fromNames.count(c.name) == 0) {
        addedChains.push_back(&c);
      }
    } else {
      fixedTo.push_back(&c);
    }
  }
  if (fixedFrom.size() != fixedTo.size() ||
      !std::equal(fixedFrom.begin(), fixedFrom.end(), fixedTo.begin(),
                  [](const Chain* a, const Chain* b) { return *a == *b; })) {
    return false;
  }
  for (const auto& name : fromNames) {
    if (toNames.count(name) == 0) {
      removedChains.push_back(name);
    }
  }
  // New maps and chains before the elements that jump to them.
  for (std::uint32_t n : to.endpointCounts) {
    if (from.endpointCounts.count(n) == 0) {
      addBackendsMap(batch, f, backendsMapName(n), backendsOf(to.backends, n).size());
    }
  }
  for (std::uint32_t n : to.affinityCounts) {
    if (from.affinityCounts.count(n) == 0) {
      addAffinityMaps(batch, f, n, backendsOf(to.affinityBackends, n).size());
    }
  }
  addChains(batch, f, addedChains);
  encodeElementDiffImpl(batch, f, from, to);
  // Unused chains and maps last, once no element jumps to them.
  for (const auto& name : removedChains) {
    batch.deleteChain(f.proto, kTableName, name);
  }
  for (std::uint32_t n : from.endpointCounts) {
    if (to.endpointCounts.count(n) == 0) {
      batch.deleteSet(f.proto, kTableName, backendsMapName(n));
    }
  }
  for (std::uint32_t n : from.affinityCounts) {
    if (to.affinityCounts.count(n) == 0) {
      deleteAffinityMaps(batch, f, n);
    }
  }
  return true;
}

namespace {

void encodeElementDiffImpl(nft::Batch& batch, const Fam& f, const Table& from, const Table& to) {
  const std::string table = kTableName;
  // Deletes first: a map element whose value changed is deleted, then added anew.
  auto diffs = [&](bool deletes) {
    auto one = [&](const std::string& name, const auto& a, const auto& b, auto toEl) {
      auto els = deletes ? minus(a, b, toEl) : minus(b, a, toEl);
      if (els.empty()) {
        return;
      }
      if (deletes) {
        batch.deleteElements(f.proto, table, name, els);
      } else {
        batch.addElements(f.proto, table, name, els);
      }
    };
    one(kServiceIps, from.serviceIps, to.serviceIps, kAnyToElement);
    one(kNoEndpointServices, from.noEndpointServices, to.noEndpointServices, kAnyToElement);
    one(kMasqueradeServices, from.masqueradeServices, to.masqueradeServices, kAnyToElement);
    one(kClusterIps, from.clusterIps, to.clusterIps, kAnyToElement);
    one(kFirewallIps, from.firewallIps, to.firewallIps, kAnyToElement);
    one(kFirewallAllow, from.firewallAllow, to.firewallAllow, kAnyToElement);
    one(kHairpin, from.hairpin, to.hairpin, [](const IpAddr& ip) { return hairpinElement(ip); });
    for (std::uint32_t n : to.endpointCounts) {
      one(backendsMapName(n), backendsOf(from.backends, n), backendsOf(to.backends, n),
          kAnyToElement);
    }
    for (std::uint32_t n : to.affinityCounts) {
      one(affinityBackendsMapName(n), backendsOf(from.affinityBackends, n),
          backendsOf(to.affinityBackends, n), kAnyToElement);
    }
  };
  diffs(true);
  diffs(false);
}

}  // namespace

std::size_t ruleCount(const Table& table) {
  std::size_t n = 0;
  for (const auto& c : table.chains) {
    n += c.rules.size();
  }
  return n;
}

}  // namespace kdp::proxy::detail
