#pragma once
// The proxy's desired nftables state as a plain value: what the compiler produces, what the
// renderer prints as `nft -f` text, and what the syncer diffs and encodes to netlink.
//
// One table per address family (`ip kube-dataplane`, `ip6 kube-dataplane`). Its shape:
//  - a static part: chains holding a few rules each (hooks, checks, masquerading, and one chain
//    per distinct endpoint count N doing `dnat to ... numgen random mod N map @backends-N`), and
//    the declarations of the sets and maps; it changes only when a new endpoint count appears
//    or the options change;
//  - a dynamic part: the elements of those sets and maps. A change to one Service is a handful
//    of element adds and deletes.
//
// Rules are not free text: each is a StaticRule kind with its parameters, so that the renderer
// and the netlink encoder (nft/) agree on one definition.

#include <compare>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ip.h"

namespace kdp::proxy {

inline constexpr const char* kTableName = "kube-dataplane";
/// The packet mark bit asking the masquerading chain to SNAT (kube-proxy's 0x4000).
inline constexpr std::uint32_t kMasqueradeMark = 0x4000;

// IP protocol numbers as they appear in `meta l4proto`.
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;
inline constexpr std::uint8_t kProtoSctp = 132;

/// A destination a Service answers on: (ClusterIP | node IP | LB IP | external IP, proto, port).
struct ServiceKey {
  IpAddr ip;
  std::uint8_t proto = kProtoTcp;
  std::uint16_t port = 0;

  auto operator<=>(const ServiceKey&) const = default;
};

/// A key of a backends-N map: the destination and the slot `numgen random mod N` picked.
struct BackendKey {
  ServiceKey service;
  std::uint32_t slot = 0;

  auto operator<=>(const BackendKey&) const = default;
};

/// The DNAT target of a slot.
struct Backend {
  IpAddr ip;
  std::uint16_t port = 0;

  auto operator<=>(const Backend&) const = default;
};

/// A verdict held by a verdict map element.
struct Verdict {
  enum class Kind : std::uint8_t { Goto, Drop };
  Kind kind = Kind::Goto;
  std::string chain;  // Goto only

  static Verdict gotoChain(std::string chain) { return {Kind::Goto, std::move(chain)}; }
  static Verdict drop() { return {Kind::Drop, {}}; }
  auto operator<=>(const Verdict&) const = default;
};

/// An element of firewall-allow: a destination and a source range allowed to reach it.
struct FirewallAllow {
  ServiceKey service;
  Cidr source;

  auto operator<=>(const FirewallAllow&) const = default;
};

/// The static rules the proxy uses. Parameters live in StaticRule.
enum class RuleKind : std::uint8_t {
  Jump,                 // jump <target>
  JumpIfNew,            // ct state new jump <target> (filter hooks: checks only a connection's first packet)
  Goto,                 // goto <target>
  Reject,               // reject
  FirewallCheck,        // <dst> . proto . port @firewall-ips <dst> . proto . port . <src> != @firewall-allow drop
  NoEndpointsVmap,      // <dst> . proto . port vmap @no-endpoint-services
  ClusterIpsReject,     // <dst> @cluster-ips reject
  DropServiceCidr,      // <dst> <cidr> drop (an unallocated ClusterIP)
  MarkFromOutside,      // <dst> @cluster-ips <src> != <cidr> meta mark set meta mark | 0x4000
  MarkServices,         // <dst> . proto . port @masquerade-services meta mark set meta mark | 0x4000
  ServiceVmap,          // <dst> . proto . port vmap @service-ips
  HairpinMark,          // ct status dnat <src> . <dst> @hairpin meta mark set meta mark | 0x4000
  ReturnUnmarked,       // meta mark & 0x4000 == 0 return
  Masquerade,           // meta mark set meta mark ^ 0x4000 masquerade fully-random
  DnatRandom,           // dnat to <dst> . proto . port . numgen random mod N map @backends-N
  // sessionAffinity ClientIP, in chain endpoints-affinity-N-T, in this order: a random slot
  // into ct mark (nft cannot nest map lookups); the (client, destination) -> slot entry added
  // with it when absent, else re-armed for T seconds; the entry's slot read back into ct mark;
  // DNAT by it. Reading after writing keeps one answer even when the kernel revives an expired
  // entry that its GC has not reaped yet (up to a second). The entry's key is a hash of
  // (client . destination): nft 1.0.6 cannot write a dynamic map entry with a key over 16 bytes
  // (IPv6), and one key shape for both families keeps one code path. <key> below is
  // `jhash <src> . <dst> . proto . port mod 4294967295 seed 0x1`.
  AffinityPick,         // ct mark set numgen random mod N
  AffinityRecall,       // ct mark set <key> map @affinity-N
  AffinityRemember,     // update @affinity-N { <key> timeout Ts : ct mark }
  AffinityDnat,         // dnat to <dst> . proto . port . ct mark map @affinity-backends-N
};

struct StaticRule {
  RuleKind kind = RuleKind::Jump;
  std::string target;  // Jump, Goto
  Cidr cidr;           // MarkFromOutside, DropServiceCidr
  std::uint32_t n = 0; // DnatRandom, Affinity*
  std::uint32_t timeoutSeconds = 0;  // AffinityRemember

  auto operator<=>(const StaticRule&) const = default;
};

enum class ChainType : std::uint8_t { Filter, Nat };
enum class Hook : std::uint8_t { Prerouting, Input, Forward, Output, Postrouting };

struct BaseChain {
  ChainType type = ChainType::Filter;
  Hook hook = Hook::Prerouting;
  std::int32_t priority = 0;

  auto operator<=>(const BaseChain&) const = default;
};

struct Chain {
  std::string name;
  std::optional<BaseChain> base;  // set: a base chain with policy accept
  std::vector<StaticRule> rules;

  auto operator<=>(const Chain&) const = default;
};

/// The sets and maps of a table, by name. backends-N maps exist for each N in `backends`.
inline constexpr const char* kServiceIps = "service-ips";               // ServiceKey : verdict
inline constexpr const char* kNoEndpointServices = "no-endpoint-services";  // ServiceKey : verdict
inline constexpr const char* kMasqueradeServices = "masquerade-services";   // ServiceKey
inline constexpr const char* kClusterIps = "cluster-ips";                   // addr
inline constexpr const char* kFirewallIps = "firewall-ips";                 // ServiceKey
inline constexpr const char* kFirewallAllow = "firewall-allow";  // ServiceKey . addr (interval)
inline constexpr const char* kHairpin = "hairpin";               // addr . addr (endpoint . itself)
std::string backendsMapName(std::uint32_t n);  // "backends-N"
std::string endpointsChainName(std::uint32_t n);  // "endpoints-N"
/// "endpoints-affinity-N-T": affinity Services with N endpoints and timeoutSeconds T.
std::string affinityChainName(std::uint32_t n, std::uint32_t timeoutSeconds);
/// "affinity-N": hash(client . destination) -> slot, elements added by packets, with timeouts.
std::string affinityMapName(std::uint32_t n);
/// "affinity-backends-N": as backends-N, for affinity Services (its slot is typed `mark`).
std::string affinityBackendsMapName(std::uint32_t n);
/// The most (client, destination) pairs an affinity-N map remembers at once; beyond, new
/// clients are balanced without being remembered.
inline constexpr std::uint32_t kAffinityMapSize = 262144;
/// The seed of the affinity key hash: the same in every rule (and in the dry-run text).
inline constexpr std::uint32_t kAffinityHashSeed = 1;

/// One family's table.
struct Table {
  IpFamily family = IpFamily::V4;
  /// The static part: chains in declaration order. Which backends-N maps exist follows from
  /// `endpointCounts`.
  std::vector<Chain> chains;
  std::set<std::uint32_t> endpointCounts;
  /// Endpoint counts of affinity Services: affinity-N and affinity-backends-N maps exist for these.
  std::set<std::uint32_t> affinityCounts;

  // The dynamic part.
  std::map<ServiceKey, Verdict> serviceIps;
  std::map<ServiceKey, Verdict> noEndpointServices;
  std::set<ServiceKey> masqueradeServices;
  std::set<IpAddr> clusterIps;
  std::set<ServiceKey> firewallIps;
  std::set<FirewallAllow> firewallAllow;
  std::set<IpAddr> hairpin;
  /// backends-N elements, by N.
  std::map<std::uint32_t, std::map<BackendKey, Backend>> backends;
  /// affinity-backends-N elements, by N.
  std::map<std::uint32_t, std::map<BackendKey, Backend>> affinityBackends;
  /// Which Service port answers on a destination ("ns/name:port-name"), for explain(); not sent
  /// to the kernel.
  std::map<ServiceKey, std::string> owners;

  /// True when the static parts (chains, rules, set declarations) are equal.
  bool sameStaticPart(const Table& other) const {
    return chains == other.chains && endpointCounts == other.endpointCounts &&
           affinityCounts == other.affinityCounts;
  }
  bool operator==(const Table&) const = default;
};

/// The whole desired state: one table per family (v6 only when something needs it or the node
/// has an IPv6 address).
struct Ruleset {
  std::vector<Table> tables;

  /// Element counts, for metrics and logs.
  std::size_t elementCount() const;
  bool operator==(const Ruleset&) const = default;
};

}  // namespace kdp::proxy
