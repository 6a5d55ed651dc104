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

/// Sizes and counts as NodeView::readVarint reads them: one byte below 128.
void putVarint(std::string& out, std::size_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

std::size_t varintSize(std::size_t v) {
  std::size_t n = 1;
  for (; v >= 0x80; v >>= 7) {
    ++n;
  }
  return n;
}

/// `node`'s entry in a shard (see Zone::Shard).
void encodeEntry(std::string& out, std::string_view name, const Node& node) {
  put(out, static_cast<std::uint8_t>(name.size()));
  out += name;
  put(out, static_cast<std::uint8_t>(node.cnameTarget.size()));
  out += node.cnameTarget;
  std::size_t size = 0;
  for (const auto& set : node.rrsets) {
    size += 2 + varintSize(set.count) + varintSize(set.tails.size()) + set.tails.size() +
            varintSize(set.additionalCount) + varintSize(set.additional.size()) +
            set.additional.size();
  }
  putVarint(out, size);
  for (const auto& set : node.rrsets) {
    put(out, set.type);
    putVarint(out, set.count);
    putVarint(out, set.tails.size());
    out += set.tails;
    putVarint(out, set.additionalCount);
    putVarint(out, set.additional.size());
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
  std::string_view rest = all.substr(at);
  const std::uint32_t setsSize = NodeView::readVarint(rest);
  at = static_cast<std::size_t>(rest.data() - all.data());
  return Entry{name, NodeView(cname, all.substr(at, setsSize)),
               all.substr(offset, at + setsSize - offset)};
}

std::size_t Zone::Shard::slotsFor(std::uint32_t count) {
  if (count == 0) {
    return 0;
  }
  std::size_t size = 4;
  while (size < 2 * std::size_t{count}) {
    size *= 2;
  }
  return size;
}

void Zone::Shard::index(std::uint32_t* table) {
  slots = table;
  slotCount = static_cast<std::uint32_t>(slotsFor(count));
  const std::size_t mask = slotCount - 1;
  for (std::size_t at = 0; at < bytes.size();) {
    const Entry e = entryAt(at);
    std::size_t i = slotOf(hashName(e.name)) & mask;
    while (table[i] != 0) {
      i = (i + 1) & mask;
    }
    table[i] = static_cast<std::uint32_t>(at + 1);
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

/// Calls fn(tail) for each record tail (type..rdata) of `tails`.
template <class Fn>
void forEachTail(std::string_view tails, Fn&& fn) {
  while (tails.size() >= 10) {
    const std::size_t len = tailSize(tails);
    fn(tails.substr(0, len));
    tails.remove_prefix(len);
  }
}

/// Appends a record tail to `set` unless an identical one is there.
void addTail(RRset& set, std::string_view tail) {
  // Records are small and sets short; a linear duplicate check keeps the order stable.
  bool present = false;
  forEachTail(set.tails, [&](std::string_view t) { present = present || t == tail; });
  if (!present) {
    set.tails += tail;
    ++set.count;
  }
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
    forEachTail(set.tails, [&](std::string_view t) { addTail(dst, t); });
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

/// A Service's name or namespace as the API server admits them: one lower-case DNS label.
/// Others (only a caller that skips validation can make them) would break serviceKeyOfName
/// ("a.b" in "ns" would own b's endpoint name "a"; "Web" would file its names under "web").
bool isObjectLabel(std::string_view s) {
  return !s.empty() && s.size() <= 63 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
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
    if (!isObjectLabel(svc.meta.name) || !isObjectLabel(svc.meta.namespace_)) {
      return;
    }
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

/// The key ("ns/name") of the Service a name under `<ns>.svc.<zone>` belongs to: its two labels
/// above `svcDomain` (`svc.<zone>`, wire). Every name a Service contributes, and every PTR target,
/// is `[labels.]<name>.<ns>.svc.<zone>`, and only Services whose name and namespace are single
/// lower-case labels are compiled (see isObjectLabel), so the key is the owner's own; no other
/// contributor has names there. nullopt: not such a name.
std::optional<std::string> serviceKeyOfName(std::string_view name, std::string_view svcDomain) {
  constexpr auto npos = std::string_view::npos;
  std::size_t svc = npos, ns = npos;  // starts of the last two labels before the suffix
  for (std::size_t i = 0; i < name.size();) {
    if (name.size() - i == svcDomain.size()) {
      if (svc == npos || name.substr(i) != svcDomain) {
        return std::nullopt;
      }
      auto label = [&](std::size_t at) {
        return name.substr(at + 1, static_cast<std::uint8_t>(name[at]));
      };
      std::string key(label(ns));
      key += '/';
      key += label(svc);
      return key;
    }
    const auto len = static_cast<std::uint8_t>(name[i]);
    if (len == 0) {
      break;
    }
    svc = ns;
    ns = i;
    i += 1u + len;
  }
  return std::nullopt;
}

}  // namespace

struct Zone::ShardStorage {
  ShardStorage(std::size_t shards, std::string encoded, std::size_t slotCount)
      : shards(shards), bytes(std::move(encoded)), slots(slotCount, 0) {}
  std::vector<Zone::Shard> shards;  // a block: every shard of a zone
  Zone::Shard single;               // or the one shard an update rewrote (no vector to allocate)
  std::string bytes;
  std::vector<std::uint32_t> slots;

  /// Copies every shard of a zone into one new block, bytes and slot tables as they are (offsets
  /// are per shard), and points the zone at it.
  static std::shared_ptr<ShardStorage> repack(std::vector<std::shared_ptr<const Shard>>& shards) {
    std::size_t byteTotal = 0;
    std::size_t slotTotal = 0;
    for (const auto& shard : shards) {
      byteTotal += shard->bytes.size();
      slotTotal += shard->slotCount;
    }
    std::string bytes;
    bytes.reserve(byteTotal);
    for (const auto& shard : shards) {
      bytes += shard->bytes;
    }
    auto storage = std::make_shared<Zone::ShardStorage>(shards.size(), std::move(bytes), slotTotal);
    for (std::size_t i = 0, at = 0, slot = 0; i < shards.size(); ++i) {
      const Zone::Shard& from = *shards[i];
      Zone::Shard& to = storage->shards[i];
      to.bytes = std::string_view(storage->bytes).substr(at, from.bytes.size());
      to.count = from.count;
      to.slotCount = from.slotCount;
      to.slots = storage->slots.data() + slot;
      std::copy_n(from.slots, from.slotCount, storage->slots.data() + slot);
      at += from.bytes.size();
      slot += from.slotCount;
      shards[i] = std::shared_ptr<const Zone::Shard>(storage, &to);
    }
    return storage;
  }
};

// No index of owners: every name but a PTR has one owner, derived from the name (see
// serviceKeyOfName), and a PTR's owners are those of its targets; an update reads them from the
// previous zone's entry.
struct ZoneCompiler::State {
  std::shared_ptr<const k8s::Snapshot> snapshot;  // the one `zone` was compiled from
  std::shared_ptr<const Zone> zone;
  // The block most of `zone`'s shards view (a full compile's, or the last repack's): its Shard
  // array, and how many of its bytes `zone` still uses. Shards an update rewrites leave dead
  // bytes in it, kept as long as one of its shards is in use; repacked at half.
  const Zone::Shard* blockShards = nullptr;
  std::size_t blockShardCount = 0;
  std::size_t blockBytes = 0;
  std::size_t liveBytes = 0;

  bool inBlock(const Zone::Shard* shard) const {
    const std::less<const Zone::Shard*> before;
    return !before(shard, blockShards) && before(shard, blockShards + blockShardCount);
  }
  void setBlock(const Zone::ShardStorage& storage);
};

void ZoneCompiler::State::setBlock(const Zone::ShardStorage& storage) {
  blockShards = storage.shards.data();
  blockShardCount = storage.shards.size();
  blockBytes = liveBytes = storage.bytes.size();
}

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
  auto zone = std::make_shared<Zone>(options_);
  zone->synced_ = snap.synced;
  zone->version_ = snap.version;
  zone->serial_ = serialOf(snap);
  zone->namespaces_ = snap.namespaces;
  // Built as hash maps of Nodes (contributions merge into them) and encoded into one scratch
  // buffer; the shards are allocated only once the maps are freed, so that they sit together
  // and the maps' pages can go back to the system (interleaved with them, a few live bytes would
  // keep every page of the ~20 MB resident).
  std::string encoded;
  std::vector<std::size_t> ends(zone->shards_.size());
  std::vector<std::uint32_t> counts(zone->shards_.size());
  {
    std::vector<std::unordered_map<std::string, Node>> work(zone->shards_.size());
    auto add = [&](Contribution c) {
      for (auto& [name, node] : c) {
        auto [it, inserted] = work[Zone::shardOf(Zone::hashName(name))].try_emplace(name);
        if (inserted) {
          it->second = std::move(node);
          ++zone->nodeCount_;
        } else {
          mergeInto(it->second, node);
        }
      }
    };
    // In key order, the apex ("") first, as an update merges a name's owners.
    add(contributionOf(snap, "", options_, zone->apex_, &zone->soaTail_));
    for (const auto& entry : snap.of<k8s::Service>()) {
      Contribution c;
      Contributor(options_, zone->apex_, c).compileService(snap, *entry.value);
      add(std::move(c));
    }
    for (std::size_t i = 0; i < work.size(); ++i) {
      for (const auto& [name, node] : work[i]) {
        encodeEntry(encoded, name, node);
        ++counts[i];
      }
      ends[i] = encoded.size();
    }
  }
  // Every shard in one block: its Shard structs, bytes and slot tables in three allocations
  // made together, not 3,072 spread over the holes the maps left.
  std::size_t slotTotal = 0;
  for (const std::uint32_t count : counts) {
    slotTotal += Zone::Shard::slotsFor(count);
  }
  auto storage =
      std::make_shared<Zone::ShardStorage>(ends.size(), std::string(encoded), slotTotal);
  std::string().swap(encoded);
  for (std::size_t i = 0, begin = 0, slot = 0; i < ends.size(); begin = ends[i], ++i) {
    Zone::Shard& shard = storage->shards[i];
    shard.bytes = std::string_view(storage->bytes).substr(begin, ends[i] - begin);
    shard.count = counts[i];
    shard.index(storage->slots.data() + slot);
    slot += Zone::Shard::slotsFor(counts[i]);
    zone->shards_[i] = std::shared_ptr<const Zone::Shard>(storage, &shard);
  }
  state_->setBlock(*storage);
  zone->pods_ = buildPods(snap);
  stats_ = Stats{true, snap.of<k8s::Service>().size(), zone->nodeCount_, zone->shards_.size()};
  state_->snapshot = std::move(snapshot);
  state_->zone = zone;
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
  // before and after; each name with the keys that own it now among these.
  std::unordered_map<std::string, Contribution> current;
  std::map<std::string, std::vector<std::string_view>> dirty;
  auto recontribute = [&](const std::string& key, std::string* soaTail) {
    for (const auto& [name, node] : contributionOf(old, key, options_, zone->apex_)) {
      dirty.try_emplace(name);
    }
    auto& [owner, after] = *current.try_emplace(key).first;  // a node: `owner` stays put
    after = contributionOf(snap, key, options_, zone->apex_, soaTail);
    for (const auto& [name, node] : after) {
      dirty[name].push_back(owner);
    }
  };
  recontribute("", &zone->soaTail_);
  for (const auto& key : services) {
    if (!key.empty()) {
      recontribute(key, nullptr);
    }
  }

  // Each such name re-merged from all its owners, in key order; its shard rewritten when the
  // entry differs (the new entry, or nullopt to remove it). The owners: the apex, those above,
  // the Service the name is under, and for a PTR the Services of its targets in the old entry
  // (an IP two Services have: the unchanged one still owns its record).
  const std::string svcDomain = std::string("\3svc") + zone->apex_;
  std::unordered_map<std::size_t, std::map<std::string_view, std::optional<std::string>>> edits;
  std::vector<std::string> owners;
  std::string encoded;
  for (const auto& [name, changedOwners] : dirty) {
    const std::size_t h = Zone::hashName(name);
    const std::size_t shardIndex = Zone::shardOf(h);
    const Zone::Shard& before = *zone->shards_[shardIndex];
    const std::uint32_t at = before.locate(name, h);
    owners.assign(changedOwners.begin(), changedOwners.end());
    if (auto key = serviceKeyOfName(name, svcDomain)) {
      owners.push_back(std::move(*key));
    }
    if (at != 0) {
      if (auto ptr = before.entryAt(at - 1).node.find(wire::kTypePTR)) {
        forEachTail(ptr->tails, [&](std::string_view tail) {
          if (auto key = serviceKeyOfName(tail.substr(10), svcDomain)) {
            owners.push_back(std::move(*key));
          }
        });
      }
    }
    std::sort(owners.begin(), owners.end());
    owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
    Node merged;
    bool exists = false;
    for (const std::string& key : owners) {
      auto c = current.find(key);
      if (c == current.end()) {
        // An unchanged owner of a shared name (a PTR of an IP two Services have).
        c = current.emplace(key, contributionOf(snap, key, options_, zone->apex_)).first;
      }
      if (auto n = c->second.find(name); n != c->second.end()) {
        mergeInto(merged, n->second);
        exists = true;
      }
    }
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
  // Each edited shard, in a block of its own: its other entries copied as they are, then the
  // new ones.
  for (const auto& [index, changes] : edits) {
    const Zone::Shard& before = *zone->shards_[index];
    if (st.inBlock(&before)) {
      st.liveBytes -= before.bytes.size();
    }
    std::string bytes;
    bytes.reserve(before.bytes.size() + 256);
    std::uint32_t count = 0;
    for (std::size_t at = 0; at < before.bytes.size();) {
      const auto e = before.entryAt(at);
      at += e.raw.size();
      if (changes.count(e.name) != 0) {
        --zone->nodeCount_;
        continue;
      }
      bytes += e.raw;
      ++count;
    }
    for (const auto& [name, entry] : changes) {
      if (entry) {
        bytes += *entry;
        ++count;
        ++zone->nodeCount_;
      }
    }
    bytes.shrink_to_fit();  // the shard lives on: no growth slack
    auto storage =
        std::make_shared<Zone::ShardStorage>(0, std::move(bytes), Zone::Shard::slotsFor(count));
    Zone::Shard& shard = storage->single;
    shard.bytes = storage->bytes;
    shard.count = count;
    shard.index(storage->slots.data());
    zone->shards_[index] = std::shared_ptr<const Zone::Shard>(storage, &shard);
  }
  stats_ = Stats{false, services.size(), dirty.size(), edits.size()};
  if (2 * st.liveBytes < st.blockBytes) {
    // Most of the block is dead: one copy of the zone's bytes (≈ 1 ms at 50k names, once per
    // half a zone rewritten) keeps the zone in one block rather than in two.
    st.setBlock(*Zone::ShardStorage::repack(zone->shards_));
    stats_.repacked = true;
  }
  st.zone = zone;
  return zone;
}

std::shared_ptr<const Zone> compileZone(const k8s::Snapshot& snapshot, const ZoneOptions& options) {
  // Not kept past this call: a non-owning pointer.
  return ZoneCompiler(options).compile(
      std::shared_ptr<const k8s::Snapshot>(std::shared_ptr<const void>(), &snapshot));
}

}  // namespace kdp::dns
