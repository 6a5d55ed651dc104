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
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
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
struct RRset {
  std::uint16_t type = 0;
  std::uint16_t count = 0;
  std::string tails;
  /// Additional-section records (complete, owner names uncompressed), e.g. SRV targets' A/AAAA.
  std::uint16_t additionalCount = 0;
  std::string additional;

  bool operator==(const RRset&) const = default;
};

/// Everything under one name. A node without rrsets is an empty non-terminal (NODATA).
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

  /// The node of a lower-cased wire name, or null.
  const Node* find(std::string_view lowerWire) const {
    const std::size_t h = hashName(lowerWire);
    const Shard& shard = *shards_[shardOf(h)];
    auto it = shard.find(lowerWire);
    return it == shard.end() ? nullptr : &it->second;
  }
  /// Calls fn(lowerWire, node) for every name, in no particular order.
  template <class Fn>
  void forEachNode(Fn&& fn) const {
    for (const auto& shard : shards_) {
      for (const auto& [name, node] : *shard) {
        fn(name, node);
      }
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
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return hashName(s); }
  };
  using Shard = std::unordered_map<std::string, Node, NameHash, std::equal_to<>>;
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
/// have from their owners (an index from name hash to owners; PTR names may have several), so
/// the work follows the Services changed, not the cluster, and the new zone shares every
/// untouched shard with the old one.
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
