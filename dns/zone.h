#pragma once
// The cluster zone: a pure compiler from a store snapshot to an immutable lookup table.
//
// Follows the Kubernetes DNS-Based Service Discovery specification (kubernetes/dns,
// docs/specification.md, schema 1.1.0) and, where it is silent, CoreDNS's kubernetes plugin:
//   <svc>.<ns>.svc.<zone>                A/AAAA  ClusterIPs; headless: ready endpoints
//                                                (all endpoints with publishNotReadyAddresses;
//                                                no name at all when there are none: NXDOMAIN)
//   <host>.<svc>.<ns>.svc.<zone>         A/AAAA  headless endpoints (hostname, else the dashed IP)
//   _<port>._<proto>.<svc>.<ns>.svc.<zone> SRV   named ports, targets' addresses as additional
//   <reversed ip>.in-addr.arpa / ip6.arpa PTR    ClusterIPs and headless endpoint IPs
//   <svc>.<ns>.svc.<zone>                CNAME   ExternalName
//   dns-version.<zone>                   TXT     "1.1.0"
//   <zone>                               SOA, NS
// Pod names (a-b-c-d.<ns>.pod.<zone>) are answered by dns/answer.h from the zone's namespace
// set (insecure) or pod IP set (verified).
//
// A Zone is immutable once built and shared by every worker through shared_ptr<const Zone>;
// zones built one from another share their unchanged shards.

#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ip.h"
#include "dns/options.h"

namespace kdp::k8s {
struct Snapshot;
struct Update;
}

namespace kdp::dns {

/// The reloadable part of the options that shapes the zone.
struct ZoneOptions {
  std::string clusterDomain = "cluster.local";
  std::uint32_t ttl = 30;
  PodsMode pods = PodsMode::Insecure;
  /// Keep pod IP → namespace for --autopath.
  bool autopath = false;
};

/// Records of one name and type, ready to copy: each record as type, class, ttl, rdlength and
/// rdata (the owner is written by the responder: a pointer to the question, or a full name).
/// A view into a zone's bytes (or into an RRset): valid while the zone (or the RRset) lives.
struct RRsetView {
  std::uint16_t type = 0;
  std::uint16_t count = 0;
  std::string_view tails;
  /// Additional-section records (complete, owner names uncompressed), e.g. SRV targets' A/AAAA.
  std::uint16_t additionalCount = 0;
  std::string_view additional;
};

/// An RRset that owns its bytes: built by the compiler, or by the responder for synthesized
/// records (pod names, autopath CNAMEs).
struct RRset {
  std::uint16_t type = 0;
  std::uint16_t count = 0;
  std::string tails;
  std::uint16_t additionalCount = 0;
  std::string additional;

  RRsetView view() const { return RRsetView{type, count, tails, additionalCount, additional}; }
  bool operator==(const RRset&) const = default;
};

/// Everything under one name, as the compiler builds it. A node without rrsets is an empty
/// non-terminal (NODATA). The zone stores nodes encoded (see NodeView), not as Nodes.
struct Node {
  std::vector<RRset> rrsets;
  /// ExternalName: the lower-cased wire name the CNAME points to (also present in rrsets).
  std::string cnameTarget;

  const RRset* find(std::uint16_t type) const {
    for (const auto& s : rrsets) {
      if (s.type == type) {
        return &s;
      }
    }
    return nullptr;
  }
  bool operator==(const Node&) const = default;
};

/// A node as the zone stores it: its encoded rrsets, read in place (no allocation).
/// Encoding of each rrset: u16 type (host order: the bytes never leave the process), then as
/// varints (7 bits a byte, low first: one byte below 128) the count, the tails size, the tails,
/// the additional count, the additional size, the additional records.
class NodeView {
 public:
  NodeView(std::string_view cnameTarget, std::string_view sets)
      : cnameTarget(cnameTarget), sets_(sets) {}

  /// ExternalName: the lower-cased wire name the CNAME points to ("" otherwise).
  std::string_view cnameTarget;

  /// No rrsets: an empty non-terminal.
  bool empty() const { return sets_.empty(); }
  std::optional<RRsetView> find(std::uint16_t type) const {
    std::optional<RRsetView> found;
    forEachRRset([&](const RRsetView& set) {
      if (!found && set.type == type) {
        found = set;
      }
    });
    return found;
  }
  /// Calls fn(const RRsetView&) for every rrset, in the order the compiler merged them.
  template <class Fn>
  void forEachRRset(Fn&& fn) const {
    for (std::string_view rest = sets_; !rest.empty();) {
      RRsetView set;
      set.type = read<std::uint16_t>(rest);
      set.count = static_cast<std::uint16_t>(readVarint(rest));
      set.tails = bytes(rest, readVarint(rest));
      set.additionalCount = static_cast<std::uint16_t>(readVarint(rest));
      set.additional = bytes(rest, readVarint(rest));
      fn(set);
    }
  }
  /// An owned copy (tests, comparisons).
  Node materialize() const;

  static std::uint32_t readVarint(std::string_view& in) {
    std::uint32_t v = 0;
    for (unsigned shift = 0;; shift += 7) {
      const auto b = static_cast<std::uint8_t>(in[0]);
      in.remove_prefix(1);
      v |= std::uint32_t{b & 0x7Fu} << shift;
      if ((b & 0x80) == 0) {
        return v;
      }
    }
  }

 private:
  template <class T>
  static T read(std::string_view& in) {
    T v;
    std::memcpy(&v, in.data(), sizeof v);
    in.remove_prefix(sizeof v);
    return v;
  }
  static std::string_view bytes(std::string_view& in, std::size_t n) {
    std::string_view out = in.substr(0, n);
    in.remove_prefix(n);
    return out;
  }

  std::string_view sets_;
};

class Zone {
 public:
  /// An empty zone for `options`: not synced (cluster names get SERVFAIL).
  explicit Zone(ZoneOptions options);

  const ZoneOptions& options() const { return options_; }
  /// The store had delivered its first full state when this zone was compiled.
  bool synced() const { return synced_; }
  std::uint64_t version() const { return version_; }
  std::uint32_t serial() const { return serial_; }

  /// Lower-cased wire names of the apex and of the reverse zones.
  const std::string& apex() const { return apex_; }
  static const std::string& reverseV4();
  static const std::string& reverseV6();

  /// The node of a lower-cased wire name, or nullopt.
  std::optional<NodeView> find(std::string_view lowerWire) const {
    const std::size_t h = hashName(lowerWire);
    return shards_[shardOf(h)]->find(lowerWire, h);
  }
  /// Calls fn(lowerWire, node) for every name, in no particular order; owned copies (tests).
  template <class Fn>
  void forEachNode(Fn&& fn) const {
    for (const auto& shard : shards_) {
      shard->forEach([&](std::string_view name, const NodeView& node) {
        fn(std::string(name), node.materialize());
      });
    }
  }
  /// `<ns>.svc.<zone>` has no node of its own: it exists (NODATA) while the namespace does.
  bool namespaceExists(std::string_view ns) const { return namespaces_->count(ns) != 0; }
  /// A pod with this IP lives in `ns` (for --pods verified).
  bool podIpExists(std::string_view ns, const IpAddr& ip) const;
  /// The namespace of the pod with this IP (hostNetwork pods excluded); null when unknown or
  /// autopath is off.
  const std::string* podNamespace(const IpAddr& ip) const {
    auto it = pods_->namespaces.find(ip);
    return it == pods_->namespaces.end() ? nullptr : &it->second;
  }
  /// SOA record tail (type..rdata) for authority sections; its TTL is the negative TTL.
  const std::string& soaTail() const { return soaTail_; }
  std::size_t nodeCount() const { return nodeCount_; }

  /// Names are spread over this many shards by hash; a zone update copies the shards it changes
  /// and shares the others with the previous zone.
  static constexpr unsigned kShardBits = 10;
  static std::size_t hashName(std::string_view lowerWire) noexcept {
    return std::hash<std::string_view>{}(lowerWire);
  }
  static std::size_t shardOf(std::size_t hash) noexcept {
    return (hash >> 7) & ((std::size_t{1} << kShardBits) - 1);
  }

 private:
  friend class ZoneCompiler;
  /// One shard's names, compact: every entry encoded back to back (u8 name size, name, u8 CNAME
  /// target size, target, varint rrsets size, rrsets as NodeView reads them), and an
  /// open-addressing table of entry offsets by name hash. No per-name allocation: at 50k names
  /// this is a few MB, where a hash map of strings and vectors took several times more. Both
  /// are views into storage the shard's shared_ptr owns: one block for all the shards of a full
  /// compile (packed together rather than spread over the holes its scratch left), one per shard
  /// an update rewrites.
  struct Shard {
    std::string_view bytes;
    const std::uint32_t* slots = nullptr;  // entry offset + 1; 0: free
    std::uint32_t slotCount = 0;           // a power of two, or 0 (no entries)
    std::uint32_t count = 0;

    /// Offset + 1 of the entry of `name` (hash `h`), 0 when absent.
    std::uint32_t locate(std::string_view name, std::size_t h) const {
      if (slotCount == 0) {
        return 0;
      }
      const std::size_t mask = slotCount - 1;
      for (std::size_t i = slotOf(h) & mask;; i = (i + 1) & mask) {
        const std::uint32_t at = slots[i];
        if (at == 0) {
          return 0;
        }
        const auto size = static_cast<std::uint8_t>(bytes[at - 1]);
        if (size == name.size() && std::memcmp(bytes.data() + at, name.data(), size) == 0) {
          return at;
        }
      }
    }
    std::optional<NodeView> find(std::string_view name, std::size_t h) const {
      const std::uint32_t at = locate(name, h);
      if (at == 0) {
        return std::nullopt;
      }
      return entryAt(at - 1).node;
    }
    struct Entry {
      std::string_view name;
      NodeView node;
      std::string_view raw;  // the whole encoded entry
    };
    Entry entryAt(std::size_t offset) const;
    template <class Fn>
    void forEach(Fn&& fn) const {
      for (std::size_t at = 0; at < bytes.size();) {
        const Entry e = entryAt(at);
        fn(e.name, e.node);
        at += e.raw.size();
      }
    }
    /// The slot table size for `count` entries (load ≤ 1/2).
    static std::size_t slotsFor(std::uint32_t count);
    /// Fills `table` (slotsFor(count) zeroed slots) for the entries in `bytes` and points
    /// `slots` at it.
    void index(std::uint32_t* table);
    static std::size_t slotOf(std::size_t h) noexcept { return h >> (7 + kShardBits); }
  };
  /// The bytes and slot tables shards view, and the Shards themselves (zone.cpp).
  struct ShardStorage;
  struct PodIndex {
    std::set<std::pair<std::string, IpAddr>, std::less<>> ips;  // --pods verified
    std::map<IpAddr, std::string> namespaces;                   // --autopath
  };

  ZoneOptions options_;
  bool synced_ = false;
  std::uint64_t version_ = 0;
  std::uint32_t serial_ = 0;
  std::string apex_;
  std::string soaTail_;
  std::size_t nodeCount_ = 0;
  std::vector<std::shared_ptr<const Shard>> shards_;
  std::shared_ptr<const std::set<std::string, std::less<>>> namespaces_;
  std::shared_ptr<const PodIndex> pods_;
};

/// Compiles store snapshots into zones, from scratch or incrementally. The watcher owns one; the
/// zones it returns are immutable and may be shared with any thread. Pure: no I/O, no clock.
///
/// Every name is made of contributions: the apex's (SOA, NS, dns-version, svc/pod, the kube-dns
/// addresses) and each Service's (with its EndpointSlices), merged in key order (apex first). An
/// update recompiles only the Services its changes name, then re-merges the names they had or
/// have from their owners, so the work follows the Services changed, not the cluster, and the
/// new zone shares every untouched shard with the old one. No index of owners is kept: a name
/// under `<ns>.svc.<zone>` has one owner, the Service its labels name, the apex's names only
/// the apex, and a PTR name (two Services may share an IP) the Services of its records' targets.
class ZoneCompiler {
 public:
  explicit ZoneCompiler(ZoneOptions options);
  ~ZoneCompiler();

  /// The zone of `snapshot`, compiled from scratch.
  std::shared_ptr<const Zone> compile(std::shared_ptr<const k8s::Snapshot> snapshot);
  /// The zone of `update.snapshot`: only what `update.changes` can touch is recompiled (from
  /// scratch on the first call). Returns the previous zone itself when nothing in it changes.
  std::shared_ptr<const Zone> update(const k8s::Update& update);

  struct Stats {
    bool full = false;
    std::size_t services = 0;  // Services recompiled
    std::size_t names = 0;     // names re-merged
    std::size_t shards = 0;    // shards copied
    bool repacked = false;     // every shard copied into one new block
  };
  const Stats& lastStats() const { return stats_; }

 private:
  struct State;
  std::shared_ptr<const Zone::PodIndex> buildPods(const k8s::Snapshot& snap) const;

  ZoneOptions options_;
  std::unique_ptr<State> state_;
  Stats stats_;
};

/// Compiles a snapshot into a zone from scratch. Pure: no I/O, no clock. Any thread.
std::shared_ptr<const Zone> compileZone(const k8s::Snapshot& snapshot, const ZoneOptions& options);

/// The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa." / nibbles ".ip6.arpa." (text).
std::string reverseName(const IpAddr& ip);
/// The dashed form used for endpoint and pod names: "10-244-1-11", "fd00--1".
std::string dashedIp(const IpAddr& ip);

}  // namespace kdp::dns
