#include "dns/zone.h"

#include <algorithm>
#include <functional>
#include <map>
#include <unordered_map>

#include "common/ascii.h"
#include "dns/detail/wire.h"
#include "k8s/store.h"

namespace kdp::dns {

namespace {

using wire::nameFromText;

std::string_view protoLabel(k8s::Protocol p) {
  switch (p) {
    case k8s::Protocol::TCP: return "_tcp";
    case k8s::Protocol::UDP: return "_udp";
    case k8s::Protocol::SCTP: return "_sctp";
  }
  return "_tcp";
}

const std::string kReverseV4 = *nameFromText("in-addr.arpa");
const std::string kReverseV6 = *nameFromText("ip6.arpa");

}  // namespace

const std::string& Zone::reverseV4() { return kReverseV4; }
const std::string& Zone::reverseV6() { return kReverseV6; }

Zone::Zone(ZoneOptions options)
    : options_(std::move(options)),
      shards_(std::size_t{1} << kShardBits, std::make_shared<const Shard>()),
      namespaces_(std::make_shared<const std::set<std::string, std::less<>>>()),
      pods_(std::make_shared<const PodIndex>()) {
  apex_ = wire::lowerName(nameFromText(options_.clusterDomain).value_or(std::string(1, '\0')));
}

namespace {

template <class T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

/// `node`'s entry in a shard (see Zone::Shard).
void encodeEntry(std::string& out, std::string_view name, const Node& node) {
  put(out, static_cast<std::uint8_t>(name.size()));
  out += name;
  put(out, static_cast<std::uint8_t>(node.cnameTarget.size()));
  out += node.cnameTarget;
  std::size_t size = 0;
  for (const auto& set : node.rrsets) {
    size += 2 + 2 + 4 + set.tails.size() + 2 + 4 + set.additional.size();
  }
  put(out, static_cast<std::uint32_t>(size));
  for (const auto& set : node.rrsets) {
    put(out, set.type);
    put(out, set.count);
    put(out, static_cast<std::uint32_t>(set.tails.size()));
    out += set.tails;
    put(out, set.additionalCount);
    put(out, static_cast<std::uint32_t>(set.additional.size()));
    out += set.additional;
  }
}

}  // namespace

Node NodeView::materialize() const {
  Node node;
  node.cnameTarget = std::string(cnameTarget);
  forEachRRset([&](const RRsetView& set) {
    node.rrsets.push_back(RRset{set.type, set.count, std::string(set.tails), set.additionalCount,
                                std::string(set.additional)});
  });
  return node;
}

Zone::Shard::Entry Zone::Shard::entryAt(std::size_t offset) const {
  const std::string_view all(bytes);
  std::size_t at = offset;
  const auto nameSize = static_cast<std::uint8_t>(all[at]);
  const std::string_view name = all.substr(at + 1, nameSize);
  at += 1 + nameSize;
  const auto cnameSize = static_cast<std::uint8_t>(all[at]);
  const std::string_view cname = all.substr(at + 1, cnameSize);
  at += 1 + cnameSize;
  std::uint32_t setsSize = 0;
  std::memcpy(&setsSize, all.data() + at, sizeof setsSize);
  at += sizeof setsSize;
  return Entry{name, NodeView(cname, all.substr(at, setsSize)),
               all.substr(offset, at + setsSize - offset)};
}

void Zone::Shard::index() {
  std::size_t size = 4;
  while (size < 2 * std::size_t{count}) {
    size *= 2;
  }
  slots.assign(size, 0);
  const std::size_t mask = size - 1;
  for (std::size_t at = 0; at < bytes.size();) {
    const Entry e = entryAt(at);
    std::size_t i = slotOf(hashName(e.name)) & mask;
    while (slots[i] != 0) {
      i = (i + 1) & mask;
    }
    slots[i] = static_cast<std::uint32_t>(at + 1);
    at += e.raw.size();
  }
}

bool Zone::podIpExists(std::string_view ns, const IpAddr& ip) const {
  return pods_->ips.count(std::pair<std::string, IpAddr>(std::string(ns), ip)) != 0;
}

std::string reverseName(const IpAddr& ip) {
  std::string out;
  const auto& b = ip.bytes();
  if (ip.isV4()) {
    for (int i = 3; i >= 0; --i) {
      out += std::to_string(b[static_cast<std::size_t>(i)]);
      out += '.';
    }
    out += "in-addr.arpa.";
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    const std::uint8_t v = b[static_cast<std::size_t>(i)];
    out += kHex[v & 0xF];
    out += '.';
    out += kHex[v >> 4];
    out += '.';
  }
  out += "ip6.arpa.";
  return out;
}

std::string dashedIp(const IpAddr& ip) {
  std::string s = ip.str();
  std::replace(s.begin(), s.end(), ip.isV4() ? '.' : ':', '-');
  return s;
}

namespace {

/// One contributor's names (the apex's or one Service's), by lower-cased wire name.
using Contribution = std::unordered_map<std::string, Node>;

RRset& rrsetOf(Node& n, std::uint16_t type) {
  for (auto& s : n.rrsets) {
    if (s.type == type) {
      return s;
    }
  }
  n.rrsets.push_back(RRset{type, 0, {}, 0, {}});
  return n.rrsets.back();
}

std::size_t tailSize(std::string_view tails) {
  return 10u + wire::getU16(reinterpret_cast<const std::uint8_t*>(tails.data()) + 8);
}

/// Appends a record tail to `set` unless an identical one is there.
void addTail(RRset& set, std::string_view tail) {
  // Records are small and sets short; a linear duplicate check keeps the order stable.
  for (std::string_view t = set.tails; t.size() >= 10;) {
    const std::size_t len = tailSize(t);
    if (t.substr(0, len) == tail) {
      return;
    }
    t.remove_prefix(len);
  }
  set.tails += tail;
  ++set.count;
}

/// Appends a complete additional record unless the set has it already.
void addAdditional(RRset& set, std::string_view record) {
  if (set.additional.find(record) == std::string::npos) {
    set.additional += record;
    ++set.additionalCount;
  }
}

/// Appends `from` to `into`: rrsets by type in first-seen order, duplicates dropped. Merging the
/// contributions of a name in owner order gives the same node whatever else changed.
void mergeInto(Node& into, const Node& from) {
  if (into.rrsets.empty() && into.cnameTarget.empty()) {
    into = from;
    return;
  }
  if (into.cnameTarget.empty()) {
    into.cnameTarget = from.cnameTarget;
  }
  for (const auto& set : from.rrsets) {
    RRset& dst = rrsetOf(into, set.type);
    for (std::string_view t = set.tails; t.size() >= 10;) {
      const std::size_t len = tailSize(t);
      addTail(dst, t.substr(0, len));
      t.remove_prefix(len);
    }
    // Additional records: an uncompressed owner name, then a tail.
    for (std::string_view a = set.additional; !a.empty();) {
      std::size_t nameLen = 0;
      while (nameLen < a.size() && a[nameLen] != '\0') {
        nameLen += 1u + static_cast<std::uint8_t>(a[nameLen]);
      }
      const std::size_t len = nameLen + 1 + tailSize(a.substr(nameLen + 1));
      addAdditional(dst, a.substr(0, len));
      a.remove_prefix(len);
    }
  }
}

/// Builds one contribution.
class Contributor {
 public:
  Contributor(const ZoneOptions& options, const std::string& apex, Contribution& out)
      : options_(options), apex_(apex), out_(out) {}

  /// The node of `lowerWire`; with its empty non-terminal ancestors strictly below `floor`, so
  /// that they answer NODATA rather than NXDOMAIN.
  Node& node(const std::string& lowerWire, std::string_view floor) {
    auto [it, inserted] = out_.try_emplace(lowerWire);
    if (inserted) {
      std::string_view rest = lowerWire;
      while (rest.size() > floor.size() && rest[0] != '\0') {
        rest.remove_prefix(1u + static_cast<std::uint8_t>(rest[0]));
        if (rest.size() <= floor.size() || !wire::isSubdomain(rest, floor)) {
          break;
        }
        out_.try_emplace(std::string(rest));
      }
    }
    return it->second;
  }

  std::string tail(std::uint16_t type, const std::function<void(wire::Writer&)>& rdata) const {
    std::string out;
    wire::Writer w(out);
    w.u16(type);
    w.u16(wire::kClassIN);
    w.u32(options_.ttl);
    w.rdata([&] { rdata(w); });
    return out;
  }

  std::string addressTail(const IpAddr& ip) const {
    return tail(ip.isV4() ? wire::kTypeA : wire::kTypeAAAA, [&](wire::Writer& w) {
      w.bytes(std::string_view(reinterpret_cast<const char*>(ip.bytes().data()), ip.size()));
    });
  }

  void addAddress(const std::string& name, std::string_view floor, const IpAddr& ip) {
    Node& n = node(name, floor);
    addTail(rrsetOf(n, ip.isV4() ? wire::kTypeA : wire::kTypeAAAA), addressTail(ip));
  }

  void addPtr(const IpAddr& ip, const std::string& target) {
    auto name = nameFromText(reverseName(ip));
    if (!name) {
      return;
    }
    Node& n = node(*name, *name);
    addTail(rrsetOf(n, wire::kTypePTR),
            tail(wire::kTypePTR, [&](wire::Writer& w) { w.name(target); }));
  }

  struct SrvTarget {
    std::uint16_t port;
    std::string target;             // wire
    std::vector<IpAddr> addresses;  // for the additional section
  };

  void addSrv(const std::string& name, std::string_view floor, std::vector<SrvTarget> targets) {
    if (targets.empty()) {
      return;
    }
    RRset& set = rrsetOf(node(name, floor), wire::kTypeSRV);
    const auto weight = static_cast<std::uint16_t>(std::max<std::size_t>(1, 100 / targets.size()));
    for (const auto& t : targets) {
      addTail(set, tail(wire::kTypeSRV, [&](wire::Writer& w) {
                w.u16(0);  // priority
                w.u16(weight);
                w.u16(t.port);
                w.name(t.target);
              }));
      for (const auto& ip : t.addresses) {
        addAdditional(set, t.target + addressTail(ip));
      }
    }
  }

  /// The apex's names: SOA and NS (the name server's own name answers with the kube-dns
  /// Service's IPs), dns-version, and the svc/pod subtrees.
  std::string compileApex(const k8s::Snapshot& snap, std::uint32_t serial) {
    const std::string& domain = options_.clusterDomain;
    const std::string nsName = *nameFromText("ns.dns." + domain);
    const std::string mbox = *nameFromText("hostmaster." + domain);
    std::string soaTail = tail(wire::kTypeSOA, [&](wire::Writer& w) {
      w.name(nsName);
      w.name(mbox);
      w.u32(serial);
      w.u32(7200);
      w.u32(1800);
      w.u32(86400);
      w.u32(options_.ttl);
    });
    Node& apex = node(apex_, apex_);
    addTail(rrsetOf(apex, wire::kTypeSOA), soaTail);
    RRset& ns = rrsetOf(apex, wire::kTypeNS);
    addTail(ns, tail(wire::kTypeNS, [&](wire::Writer& w) { w.name(nsName); }));
    if (const auto* kubeDns = snap.service("kube-system", "kube-dns");
        kubeDns != nullptr && !kubeDns->headless) {
      for (const auto& ip : kubeDns->clusterIPs) {
        addAddress(nsName, apex_, ip);
        addAdditional(ns, nsName + addressTail(ip));
      }
    }
    Node& version = node(*nameFromText("dns-version." + domain), apex_);
    addTail(rrsetOf(version, wire::kTypeTXT), tail(wire::kTypeTXT, [](wire::Writer& w) {
              w.u8(5);
              w.bytes("1.1.0");
            }));
    node(*nameFromText("svc." + domain), apex_);
    if (options_.pods != PodsMode::Disabled) {
      node(*nameFromText("pod." + domain), apex_);
    }
    return soaTail;
  }

  /// One Service's names (with its EndpointSlices). `<ns>.svc.<zone>` is not one of them: the
  /// responder answers it from the namespace set, so that no name is shared by a namespace's
  /// Services but the PTRs of shared IPs.
  void compileService(const k8s::Snapshot& snap, const k8s::Service& svc) {
    const std::string nsDomain = svc.meta.namespace_ + ".svc." + options_.clusterDomain;
    const std::string base = svc.meta.name + "." + nsDomain;
    auto baseWire = nameFromText(asciiLower(base));
    auto floorWire = nameFromText(asciiLower(nsDomain));
    if (!baseWire || !floorWire) {
      return;
    }
    const std::string& floor = *floorWire;
    if (svc.type == k8s::ServiceType::ExternalName) {
      auto target = nameFromText(svc.externalName);
      if (!target || svc.externalName.empty()) {
        return;
      }
      Node& n = node(*baseWire, floor);
      n.cnameTarget = wire::lowerName(*target);
      addTail(rrsetOf(n, wire::kTypeCNAME),
              tail(wire::kTypeCNAME, [&](wire::Writer& w) { w.name(*target); }));
      return;
    }
    if (!svc.headless) {
      if (svc.clusterIPs.empty()) {
        return;
      }
      for (const auto& ip : svc.clusterIPs) {
        addAddress(*baseWire, floor, ip);
        addPtr(ip, *baseWire);
      }
      for (const auto& port : svc.ports) {
        if (port.name.empty()) {
          continue;
        }
        auto srvName = nameFromText(asciiLower("_" + port.name + "." +
                                               std::string(protoLabel(port.protocol)) + "." +
                                               base));
        if (srvName) {
          addSrv(*srvName, floor,
                 {SrvTarget{static_cast<std::uint16_t>(port.port), *baseWire, svc.clusterIPs}});
        }
      }
      return;
    }

    // Headless: the endpoints DNS publishes, by hostname (or dashed IP), in key order.
    struct Ep {
      std::string host;  // wire, lower-cased
      std::vector<IpAddr> addresses;
    };
    std::map<std::string, Ep> endpoints;  // by host label
    // Named ports by SRV name, with the targets in endpoint order.
    std::map<std::string, std::vector<SrvTarget>> srv;
    snap.forEachSliceOf(svc.meta.namespace_, svc.meta.name, [&](const k8s::EndpointSlice& slice) {
      if (slice.addressType == k8s::AddressType::FQDN) {
        return;
      }
      for (const auto& ep : slice.endpoints) {
        if (!(ep.conditions.ready || svc.publishNotReadyAddresses) || ep.addresses.empty()) {
          continue;
        }
        for (const auto& ip : ep.addresses) {
          const std::string label = ep.hostname.empty() ? dashedIp(ip) : asciiLower(ep.hostname);
          auto hostWire = nameFromText(label + "." + asciiLower(base));
          if (!hostWire || label.find('.') != std::string::npos) {
            continue;
          }
          Ep& e = endpoints[label];
          e.host = *hostWire;
          if (std::find(e.addresses.begin(), e.addresses.end(), ip) == e.addresses.end()) {
            e.addresses.push_back(ip);
          }
          for (const auto& port : slice.ports) {
            if (port.name.empty() || !port.port) {
              continue;
            }
            auto srvName = nameFromText(asciiLower("_" + port.name + "." +
                                                   std::string(protoLabel(port.protocol)) + "." +
                                                   base));
            if (!srvName) {
              continue;
            }
            auto& targets = srv[*srvName];
            auto it = std::find_if(targets.begin(), targets.end(), [&](const SrvTarget& t) {
              return t.target == *hostWire && t.port == static_cast<std::uint16_t>(*port.port);
            });
            if (it == targets.end()) {
              targets.push_back(SrvTarget{static_cast<std::uint16_t>(*port.port), *hostWire, {ip}});
            } else if (std::find(it->addresses.begin(), it->addresses.end(), ip) ==
                       it->addresses.end()) {
              it->addresses.push_back(ip);
            }
          }
        }
      }
    });
    // No published endpoint: the name does not exist (NXDOMAIN), as CoreDNS answers.
    for (const auto& [label, ep] : endpoints) {
      for (const auto& ip : ep.addresses) {
        addAddress(*baseWire, floor, ip);
        addAddress(ep.host, floor, ip);
        addPtr(ip, ep.host);
      }
    }
    for (auto& [name, targets] : srv) {
      addSrv(name, floor, std::move(targets));
    }
  }

 private:
  const ZoneOptions& options_;
  const std::string& apex_;
  Contribution& out_;
};

std::uint32_t serialOf(const k8s::Snapshot& snap) {
  return snap.lastChangeTime > 0 ? static_cast<std::uint32_t>(snap.lastChangeTime)
                                 : static_cast<std::uint32_t>(snap.version);
}

/// The Service key an EndpointSlice key belongs to ("ns/svc/slice" → "ns/svc").
std::string_view serviceKeyOfSlice(std::string_view sliceKey) {
  const auto first = sliceKey.find('/');
  const auto second = first == std::string_view::npos ? first : sliceKey.find('/', first + 1);
  return second == std::string_view::npos ? sliceKey : sliceKey.substr(0, second);
}

}  // namespace

namespace {

/// Owners of each name, by name hash: a flat open-addressing multimap from the hash's upper 32
/// bits to owner ids (8 bytes a slot, one allocation). A collision only costs a merge that finds
/// nothing, so 32 bits are enough.
class OwnerIndex {
 public:
  void add(std::size_t hash, std::uint32_t id) {
    if (2 * (used_ + 1) > slots_.size()) {
      grow();
    }
    insert(Slot{key(hash), id});
    ++used_;
  }
  /// Removes one (hash, id) pair, if present.
  void remove(std::size_t hash, std::uint32_t id) {
    const std::uint32_t k = key(hash);
    for (std::size_t i = start(k);; i = next(i)) {
      Slot& s = slots_[i];
      if (s.id == kEmpty) {
        return;
      }
      if (s.key == k && s.id == id) {
        s.id = kRemoved;
        --used_;
        return;
      }
    }
  }
  template <class Fn>
  void forEach(std::size_t hash, Fn&& fn) const {
    if (slots_.empty()) {
      return;
    }
    const std::uint32_t k = key(hash);
    for (std::size_t i = start(k); slots_[i].id != kEmpty; i = next(i)) {
      if (slots_[i].key == k && slots_[i].id != kRemoved) {
        fn(slots_[i].id);
      }
    }
  }

 private:
  struct Slot {
    std::uint32_t key = 0;
    std::uint32_t id = kEmpty;
  };
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFF;
  static constexpr std::uint32_t kRemoved = 0xFFFFFFFE;

  static std::uint32_t key(std::size_t hash) { return static_cast<std::uint32_t>(hash >> 32); }
  std::size_t start(std::uint32_t k) const {
    return (k * std::size_t{0x9E3779B97F4A7C15} >> 20) & (slots_.size() - 1);
  }
  std::size_t next(std::size_t i) const { return (i + 1) & (slots_.size() - 1); }
  void insert(Slot slot) {
    std::size_t i = start(slot.key);
    while (slots_[i].id != kEmpty && slots_[i].id != kRemoved) {
      i = next(i);
    }
    slots_[i] = slot;
  }
  /// Rehashes (dropping removed slots) into twice the live entries' room, at least.
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    std::size_t size = 1024;
    while (size < 4 * (used_ + 1)) {
      size *= 2;
    }
    slots_.assign(size, Slot{});
    for (const Slot& s : old) {
      if (s.id != kEmpty && s.id != kRemoved) {
        insert(s);
      }
    }
  }

  std::vector<Slot> slots_;
  std::size_t used_ = 0;
};

}  // namespace

struct ZoneCompiler::State {
  std::shared_ptr<const k8s::Snapshot> snapshot;  // the one `zone` was compiled from
  std::shared_ptr<const Zone> zone;
  // Owners of each name, by name hash (a collision only costs a merge that finds nothing).
  OwnerIndex owners;
  // Contributor ids: 0 is the apex (key ""), the others Service keys.
  std::vector<std::string> keys;
  std::unordered_map<std::string, std::uint32_t> ids;
  std::vector<std::uint32_t> freeIds;

  std::uint32_t idFor(const std::string& key) {
    if (auto it = ids.find(key); it != ids.end()) {
      return it->second;
    }
    std::uint32_t id = 0;
    if (!freeIds.empty()) {
      id = freeIds.back();
      freeIds.pop_back();
      keys[id] = key;
    } else {
      id = static_cast<std::uint32_t>(keys.size());
      keys.push_back(key);
    }
    ids.emplace(key, id);
    return id;
  }
  void release(const std::string& key) {
    if (auto it = ids.find(key); it != ids.end()) {
      keys[it->second].clear();
      freeIds.push_back(it->second);
      ids.erase(it);
    }
  }
};

ZoneCompiler::ZoneCompiler(ZoneOptions options)
    : options_(std::move(options)), state_(std::make_unique<State>()) {}
ZoneCompiler::~ZoneCompiler() = default;

namespace {

/// The contribution of `key` ("": the apex) in `snap`; the apex's also yields the SOA tail.
Contribution contributionOf(const k8s::Snapshot& snap, const std::string& key,
                            const ZoneOptions& options, const std::string& apex,
                            std::string* soaTail = nullptr) {
  Contribution c;
  Contributor builder(options, apex, c);
  if (key.empty()) {
    std::string soa = builder.compileApex(snap, serialOf(snap));
    if (soaTail != nullptr) {
      *soaTail = std::move(soa);
    }
  } else if (const auto* svc = snap.of<k8s::Service>().get(key)) {
    builder.compileService(snap, *svc);
  }
  return c;
}

}  // namespace

std::shared_ptr<const Zone::PodIndex> ZoneCompiler::buildPods(const k8s::Snapshot& snap) const {
  auto pods = std::make_shared<Zone::PodIndex>();
  if (options_.autopath) {
    for (const auto& entry : snap.of<k8s::Pod>()) {
      if (entry.value->hostNetwork) {
        continue;  // the node's address: not one pod's search path
      }
      for (const auto& ip : entry.value->podIPs) {
        pods->namespaces.emplace(ip, entry.value->meta.namespace_);
      }
    }
  }
  if (options_.pods == PodsMode::Verified) {
    for (const auto& entry : snap.of<k8s::Pod>()) {
      for (const auto& ip : entry.value->podIPs) {
        pods->ips.emplace(entry.value->meta.namespace_, ip);
      }
    }
  }
  return pods;
}

std::shared_ptr<const Zone> ZoneCompiler::compile(std::shared_ptr<const k8s::Snapshot> snapshot) {
  const k8s::Snapshot& snap = *snapshot;
  state_ = std::make_unique<State>();
  State& st = *state_;
  auto zone = std::make_shared<Zone>(options_);
  zone->synced_ = snap.synced;
  zone->version_ = snap.version;
  zone->serial_ = serialOf(snap);
  zone->namespaces_ = snap.namespaces;
  // Built as hash maps of Nodes (contributions merge into them) and encoded into one scratch
  // buffer; the long-lived parts (shards, owner index, ids) are allocated only once the scratch
  // is freed, so that they sit together and the scratch's pages can go back to the system
  // (interleaved with it, a few live bytes would keep every page of the ~20 MB resident).
  std::vector<std::pair<std::size_t, std::uint32_t>> owners;
  std::string encoded;
  std::vector<std::size_t> ends(zone->shards_.size());
  std::vector<std::uint32_t> counts(zone->shards_.size());
  {
    std::vector<std::unordered_map<std::string, Node>> work(zone->shards_.size());
    auto add = [&](const std::string& key, Contribution c) {
      if (c.empty()) {
        return;
      }
      const std::uint32_t id = st.idFor(key);
      for (auto& [name, node] : c) {
        const std::size_t h = Zone::hashName(name);
        owners.emplace_back(h, id);
        auto [it, inserted] = work[Zone::shardOf(h)].try_emplace(name);
        if (inserted) {
          it->second = std::move(node);
          ++zone->nodeCount_;
        } else {
          mergeInto(it->second, node);
        }
      }
    };
    add("", contributionOf(snap, "", options_, zone->apex_, &zone->soaTail_));
    for (const auto& entry : snap.of<k8s::Service>()) {
      Contribution c;
      Contributor(options_, zone->apex_, c).compileService(snap, *entry.value);
      add(entry.key, std::move(c));
    }
    for (std::size_t i = 0; i < work.size(); ++i) {
      for (const auto& [name, node] : work[i]) {
        encodeEntry(encoded, name, node);
        ++counts[i];
      }
      ends[i] = encoded.size();
    }
  }
  for (const auto& [h, id] : owners) {
    st.owners.add(h, id);
  }
  std::vector<std::pair<std::size_t, std::uint32_t>>().swap(owners);
  st.ids = decltype(st.ids)(st.ids.begin(), st.ids.end());
  st.keys = std::vector<std::string>(st.keys.begin(), st.keys.end());
  zone->pods_ = buildPods(snap);
  for (std::size_t i = 0, begin = 0; i < ends.size(); begin = ends[i], ++i) {
    auto shard = std::make_shared<Zone::Shard>();
    shard->bytes.assign(encoded, begin, ends[i] - begin);
    shard->count = counts[i];
    shard->index();
    zone->shards_[i] = std::move(shard);
  }
  stats_ = Stats{true, snap.of<k8s::Service>().size(), zone->nodeCount_, zone->shards_.size()};
  st.snapshot = std::move(snapshot);
  st.zone = zone;
  return zone;
}

std::shared_ptr<const Zone> ZoneCompiler::update(const k8s::Update& update) {
  State& st = *state_;
  if (!st.zone) {
    return compile(update.snapshot);
  }
  const k8s::Snapshot& snap = *update.snapshot;
  const k8s::Snapshot& old = *st.snapshot;
  const auto& changes = update.changes;

  std::vector<std::string> services(changes.of(k8s::Kind::Service));
  for (const auto& key : changes.of(k8s::Kind::EndpointSlice)) {
    services.emplace_back(serviceKeyOfSlice(key));
  }
  std::sort(services.begin(), services.end());
  services.erase(std::unique(services.begin(), services.end()), services.end());
  const bool podsMatter = options_.pods == PodsMode::Verified || options_.autopath;
  const bool podsChanged = podsMatter && !changes.of(k8s::Kind::Pod).empty();
  const bool namespacesChanged = snap.namespaces != old.namespaces;
  const bool syncChanged = snap.synced != st.zone->synced();
  st.snapshot = update.snapshot;
  stats_ = Stats{};
  if (services.empty() && !podsChanged && !namespacesChanged && !syncChanged) {
    return st.zone;
  }

  auto zone = std::make_shared<Zone>(*st.zone);  // shares every shard
  zone->synced_ = snap.synced;
  zone->version_ = snap.version;
  zone->serial_ = serialOf(snap);
  zone->namespaces_ = snap.namespaces;
  if (podsChanged) {
    zone->pods_ = buildPods(snap);
  }

  // The apex (its SOA serial moves with every change) and the changed Services: their names
  // before and after.
  std::unordered_map<std::uint32_t, Contribution> current;
  std::vector<std::string> dirty;
  auto recontribute = [&](const std::string& key, std::string* soaTail) {
    Contribution before = contributionOf(old, key, options_, zone->apex_);
    Contribution after = contributionOf(snap, key, options_, zone->apex_, soaTail);
    if (auto it = st.ids.find(key); it != st.ids.end()) {
      for (const auto& [name, node] : before) {
        st.owners.remove(Zone::hashName(name), it->second);
        dirty.push_back(name);
      }
    }
    if (after.empty()) {
      st.release(key);
      return;
    }
    const std::uint32_t id = st.idFor(key);
    for (const auto& [name, node] : after) {
      st.owners.add(Zone::hashName(name), id);
      dirty.push_back(name);
    }
    current[id] = std::move(after);
  };
  recontribute("", &zone->soaTail_);
  for (const auto& key : services) {
    if (!key.empty()) {
      recontribute(key, nullptr);
    }
  }
  std::sort(dirty.begin(), dirty.end());
  dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());

  // Each such name re-merged from all its owners, in key order; its shard rewritten when the
  // entry differs (the new entry, or nullopt to remove it).
  std::unordered_map<std::size_t, std::map<std::string_view, std::optional<std::string>>> edits;
  std::vector<std::uint32_t> ownerIds;
  std::string encoded;
  for (const auto& name : dirty) {
    const std::size_t h = Zone::hashName(name);
    ownerIds.clear();
    st.owners.forEach(h, [&](std::uint32_t id) { ownerIds.push_back(id); });
    std::sort(ownerIds.begin(), ownerIds.end(),
              [&](std::uint32_t a, std::uint32_t b) { return st.keys[a] < st.keys[b]; });
    ownerIds.erase(std::unique(ownerIds.begin(), ownerIds.end()), ownerIds.end());
    Node merged;
    bool exists = false;
    for (const std::uint32_t id : ownerIds) {
      auto c = current.find(id);
      if (c == current.end()) {
        // Another owner of a shared name (a PTR of an IP two Services have).
        c = current.emplace(id, contributionOf(snap, st.keys[id], options_, zone->apex_)).first;
      }
      if (auto n = c->second.find(name); n != c->second.end()) {
        mergeInto(merged, n->second);
        exists = true;
      }
    }
    const std::size_t shardIndex = Zone::shardOf(h);
    const Zone::Shard& before = *zone->shards_[shardIndex];
    const std::uint32_t at = before.locate(name, h);
    encoded.clear();
    if (exists) {
      encodeEntry(encoded, name, merged);
    }
    if (exists ? at != 0 && before.entryAt(at - 1).raw == encoded : at == 0) {
      continue;  // unchanged (most of the apex's names): the shard stays shared
    }
    edits[shardIndex].insert_or_assign(
        std::string_view(name), exists ? std::optional<std::string>(encoded) : std::nullopt);
  }
  // Each edited shard: its other entries copied as they are, then the new ones.
  for (const auto& [index, changes] : edits) {
    const Zone::Shard& before = *zone->shards_[index];
    auto shard = std::make_shared<Zone::Shard>();
    shard->bytes.reserve(before.bytes.size() + 256);
    for (std::size_t at = 0; at < before.bytes.size();) {
      const auto e = before.entryAt(at);
      at += e.raw.size();
      if (changes.count(e.name) != 0) {
        --zone->nodeCount_;
        continue;
      }
      shard->bytes += e.raw;
      ++shard->count;
    }
    for (const auto& [name, entry] : changes) {
      if (entry) {
        shard->bytes += *entry;
        ++shard->count;
        ++zone->nodeCount_;
      }
    }
    shard->index();
    zone->shards_[index] = std::move(shard);
  }
  stats_ = Stats{false, services.size(), dirty.size(), edits.size()};
  st.zone = zone;
  return zone;
}

std::shared_ptr<const Zone> compileZone(const k8s::Snapshot& snapshot, const ZoneOptions& options) {
  // Not kept past this call: a non-owning pointer.
  return ZoneCompiler(options).compile(
      std::shared_ptr<const k8s::Snapshot>(std::shared_ptr<const void>(), &snapshot));
}

}  // namespace kdp::dns
