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
// A Zone is immutable once built and shared by every worker through shared_ptr<const Zone>.

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
    auto it = nodes_.find(lowerWire);
    return it == nodes_.end() ? nullptr : &it->second;
  }
  bool namespaceExists(std::string_view ns) const { return namespaces_.count(ns) != 0; }
  /// A pod with this IP lives in `ns` (for --pods verified).
  bool podIpExists(std::string_view ns, const IpAddr& ip) const;
  /// The namespace of the pod with this IP (hostNetwork pods excluded); null when unknown or
  /// autopath is off.
  const std::string* podNamespace(const IpAddr& ip) const {
    auto it = podNamespaces_.find(ip);
    return it == podNamespaces_.end() ? nullptr : &it->second;
  }
  /// SOA record tail (type..rdata) for authority sections; its TTL is the negative TTL.
  const std::string& soaTail() const { return soaTail_; }
  std::size_t nodeCount() const { return nodes_.size(); }

 private:
  friend class ZoneBuilder;
  ZoneOptions options_;
  bool synced_ = false;
  std::uint64_t version_ = 0;
  std::uint32_t serial_ = 0;
  std::string apex_;
  std::string soaTail_;
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, Node, NameHash, std::equal_to<>> nodes_;
  std::set<std::string, std::less<>> namespaces_;
  std::set<std::pair<std::string, IpAddr>, std::less<>> podIps_;
  std::map<IpAddr, std::string> podNamespaces_;
};

/// Compiles a snapshot into a zone. Pure: no I/O, no clock. Any thread.
std::shared_ptr<const Zone> compileZone(const k8s::Snapshot& snapshot, const ZoneOptions& options);

/// The reverse-lookup name of an address: "4.3.2.1.in-addr.arpa." / nibbles ".ip6.arpa." (text).
std::string reverseName(const IpAddr& ip);
/// The dashed form used for endpoint and pod names: "10-244-1-11", "fd00--1".
std::string dashedIp(const IpAddr& ip);

}  // namespace kdp::dns
