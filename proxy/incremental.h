#pragma once
// The proxy's model kept current change by change: a store update recompiles only the Services
// it names (Services, and the Services of changed EndpointSlices) and yields the element
// differences, so that one EndpointSlice change costs work proportional to that Service, not to
// the cluster (DESIGN.md).
//
// How: compile() of a snapshot holding one Service and its slices gives exactly what that
// Service contributes to the full compile, as long as no other Service claims one of its
// destinations (ip, proto, port). So the model keeps
//  - the full Table per family (equal to compile() of the same snapshot, chains aside: see
//    ruleset()),
//  - which Services claim each destination, to notice the rare clash (two Services on one
//    externalIP:port), where it falls back to a full compile and a whole-table diff,
//  - reference counts for what Services share: ClusterIPs, hairpin addresses (the Services
//    holding each), endpoint counts (a backends-N map while any element uses it) and the chains
//    service-ips elements jump to.
// Not thread-safe: one owner (the proxy's sync thread).

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "proxy/compiler.h"
#include "proxy/ruleset.h"

namespace kdp::k8s {
struct Snapshot;
struct Changes;
}  // namespace kdp::k8s

namespace kdp::proxy {

/// The difference one update makes to one family's table, as two partial tables: `before` holds
/// the old values of every element the update touched, `after` the new ones (an element absent
/// from one side is added or deleted). Chains and endpoint counts are complete on both sides, so
/// that maps and chains that come and go are visible. Encoded by detail::encodeTableDiff.
struct TableChange {
  Table before;
  Table after;
};

struct RulesetChange {
  /// Whole tables must be rewritten (first compile, node changed): sync ruleset() in full.
  bool full = false;
  std::vector<TableChange> tables;
  /// Services recompiled (0 when nothing proxy-related changed).
  std::size_t servicesRecompiled = 0;

  /// True when a destination or backend of protocol `proto` (kProtoUdp...) may have changed.
  bool touches(std::uint8_t proto) const;
};

class IncrementalCompiler {
 public:
  /// Compiles everything; the next sync must be a full one.
  void reset(const k8s::Snapshot& snapshot, const NodeInfo& node);

  /// Brings the model to `snapshot`, given the keys changed since the snapshot of the last
  /// reset() or update(). A different `node` (zone label, addresses) means a reset.
  RulesetChange update(const k8s::Snapshot& snapshot, const k8s::Changes& changes,
                       const NodeInfo& node);

  /// The model: compile() of the last snapshot, except that the chains made per endpoint count
  /// follow the fixed chains in name order (the kernel does not care about chain order).
  const Ruleset& ruleset() const { return model_; }
  bool empty() const { return !initialized_; }

 private:
  struct FamilyState;
  /// What one Service put into one family's table at its last compile.
  struct Footprint {
    std::vector<ServiceKey> destinations;
    std::vector<IpAddr> clusterIps;
    std::vector<IpAddr> hairpin;
  };

  void rebuild(const k8s::Snapshot& snapshot);

  bool initialized_ = false;
  NodeInfo node_;
  Ruleset model_;
  std::vector<FamilyState> state_;  // parallel to model_.tables
  /// By Service store key ("ns/name"), one Footprint per family (parallel to model_.tables).
  std::map<std::string, std::vector<Footprint>, std::less<>> footprints_;

 public:
  IncrementalCompiler();
  ~IncrementalCompiler();
  IncrementalCompiler(IncrementalCompiler&&) noexcept;
  IncrementalCompiler& operator=(IncrementalCompiler&&) noexcept;
};

namespace detail {
/// The backends maps of a Table as (elements by count, counts) member pointer pairs: backends-N,
/// and affinity-backends-N when the Table has them (they arrive in a concurrent change).
template <class T = Table>
constexpr auto backendMaps() {
  if constexpr (requires(T t) {
                  t.affinityBackends;
                  t.affinityCounts;
                }) {
    return std::array{std::pair{&T::backends, &T::endpointCounts},
                      std::pair{&T::affinityBackends, &T::affinityCounts}};
  } else {
    return std::array{std::pair{&T::backends, &T::endpointCounts}};
  }
}
}  // namespace detail

/// The Service store key ("ns/name") a changed EndpointSlice key ("ns/service/name") belongs to.
std::string serviceKeyOfSlice(const std::string& sliceKey);

/// The Service store keys `changes` concern: changed Services and the Services of changed
/// EndpointSlices.
std::set<std::string> servicesNamedBy(const k8s::Changes& changes);

}  // namespace kdp::proxy
