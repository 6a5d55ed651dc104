#pragma once
// The store: the current objects by kind and key, published as immutable snapshots.
//
// Sources (manifests directory, Kubernetes API) write batches; each non-empty batch becomes one
// new snapshot version and one wake-up per subscriber. A subscriber that is busy while several
// batches land gets them coalesced: the newest snapshot and the union of the changed keys.
//
// Keys: "namespace/name" for namespaced kinds, "name" for cluster-scoped ones; EndpointSlices are
// keyed "namespace/service-name/name" so that the slices of one Service are one key range.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "k8s/object_map.h"
#include "k8s/objects.h"

namespace kdp::k8s {

/// The store key of an object (see above).
std::string storeKey(const Object& object);
std::string storeKey(const SharedObject& object);
std::string storeKey(Kind kind, std::string_view ns, std::string_view name);
/// Key prefix of the EndpointSlices of Service ns/name ("ns/name/").
std::string sliceKeyPrefix(std::string_view ns, std::string_view service);

/// One consistent view of every object. Immutable once published; share it freely.
struct Snapshot {
  std::uint64_t version = 0;
  /// Every source has delivered its first full state (readiness).
  bool synced = false;
  /// Wall-clock time of the last change, seconds since the epoch (0 before any).
  double lastChangeTime = 0;

  std::tuple<ObjectMap<Namespace>, ObjectMap<Service>, ObjectMap<EndpointSlice>,
             ObjectMap<Ingress>, ObjectMap<IngressClass>, ObjectMap<Secret>, ObjectMap<Pod>,
             ObjectMap<Node>>
      objects;

  /// Names of the namespaces that exist: named by a Namespace object or holding any object.
  std::shared_ptr<const std::set<std::string, std::less<>>> namespaces =
      std::make_shared<const std::set<std::string, std::less<>>>();

  template <class T>
  const ObjectMap<T>& of() const {
    return std::get<ObjectMap<T>>(objects);
  }
  template <class T>
  ObjectMap<T>& of() {
    return std::get<ObjectMap<T>>(objects);
  }
  std::size_t count(Kind kind) const;

  bool namespaceExists(std::string_view ns) const { return namespaces->count(ns) != 0; }
  const Service* service(std::string_view ns, std::string_view name) const;
  /// Calls fn(const EndpointSlice&) for every slice labelled with Service ns/name.
  template <class Fn>
  void forEachSliceOf(std::string_view ns, std::string_view service, Fn&& fn) const {
    of<EndpointSlice>().forEachWithPrefix(sliceKeyPrefix(ns, service),
                                          [&](const auto& e) { fn(*e.value); });
  }
};

/// Keys changed since the subscriber's last update, by kind; sorted, unique.
struct Changes {
  std::array<std::vector<std::string>, kKindCount> keys;

  const std::vector<std::string>& of(Kind kind) const {
    return keys[static_cast<std::size_t>(kind)];
  }
  bool empty() const;
  std::size_t size() const;
  void merge(const Changes& other);
};

struct Update {
  std::shared_ptr<const Snapshot> snapshot;
  /// The snapshot this subscriber saw last (an empty one on the first update): old values of
  /// changed keys are found there.
  std::shared_ptr<const Snapshot> previous;
  Changes changes;
  /// How many store versions this update stands for (>1 when coalesced).
  std::uint64_t coalesced = 0;
};

/// Writes for one atomic store version: upserts and removals, applied in order.
class Batch {
 public:
  void upsert(Object object) { upsert(share(std::move(object))); }
  /// Upserts an object the caller shares: the store keeps a reference to it, no copy.
  void upsert(SharedObject object) {
    const Kind kind = kindOf(object);
    ops_.push_back(Op{std::move(object), kind, true, {}, {}});
  }
  /// Removes kind namespace/name (namespace ignored for cluster-scoped kinds).
  void remove(Kind kind, std::string ns, std::string name) {
    ops_.push_back(Op{SharedObject{}, kind, false, std::move(ns), std::move(name)});
  }
  /// Appends `other`'s writes after these (one store version for several sources of writes).
  void append(Batch&& other) {
    ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()),
                std::make_move_iterator(other.ops_.end()));
    other.ops_.clear();
  }
  bool empty() const { return ops_.empty(); }
  std::size_t size() const { return ops_.size(); }

 private:
  friend class Store;
  struct Op {
    SharedObject object;  // upsert: the object
    Kind kind;
    bool isUpsert;
    std::string ns;       // removal: namespace and name
    std::string name;
  };
  std::vector<Op> ops_;
};

class Store;

/// A subscriber's mailbox. Thread-safe: the store fills it, the subscriber takes from it.
class Subscription {
 public:
  /// Blocks until there is an update, the timeout passes (nullopt) or close() is called (nullopt).
  std::optional<Update> next(std::chrono::milliseconds timeout);
  /// The pending update without blocking, or nullopt.
  std::optional<Update> take();
  /// Called (on the writer's thread, without locks held) whenever an update becomes pending
  /// after the mailbox was empty: an event loop posts itself a take() from here.
  void setWaker(std::function<void()> waker);
  /// Wakes next() and stops delivery.
  void close();

 private:
  friend class Store;
  /// Returns the waker to call once the store's lock is released (empty: none).
  std::function<void()> deliver(const std::shared_ptr<const Snapshot>& snapshot,
                                const Changes& changes);

  std::mutex mu_;
  std::condition_variable cv_;
  std::shared_ptr<const Snapshot> seen_;     // last snapshot handed out
  std::shared_ptr<const Snapshot> pending_;  // newest snapshot not yet handed out
  Changes changes_;
  std::uint64_t pendingVersions_ = 0;
  bool closed_ = false;
  std::function<void()> waker_;
};

struct StoreStats {
  std::uint64_t batches = 0;        // non-empty batches applied
  std::uint64_t noopUpserts = 0;    // upserts of an object equal to the stored one
};

class Store {
 public:
  Store();

  /// The newest snapshot. Any thread.
  std::shared_ptr<const Snapshot> snapshot() const;

  /// Applies a batch as one version. An upsert equal to the stored object and a removal of an
  /// absent object change nothing; an EndpointSlice whose service-name label changed moves to its
  /// new key (both keys are reported changed); a batch that changes nothing publishes nothing. Any thread.
  /// Returns the number of keys that changed.
  std::size_t apply(Batch&& batch);

  /// Marks the store synced (every source delivered its first full state); publishes a new
  /// version if it was not synced yet.
  void markSynced();

  /// A new subscriber; its first update (the current snapshot, every key as changed) is pending
  /// at once.
  std::shared_ptr<Subscription> subscribe();

  StoreStats stats() const;

 private:
  std::vector<std::function<void()>> publishLocked(const Changes& changes);

  mutable std::mutex mu_;
  Snapshot working_;
  std::shared_ptr<const Snapshot> current_;
  std::map<std::string, std::size_t, std::less<>> namespaceRefs_;
  /// The store key of EndpointSlice ns/name (it holds the Service name), if the store has it.
  std::optional<std::string> sliceKeyOf(std::string_view ns, std::string_view name) const;

  // "namespace/name" → Service name, for the EndpointSlices not named "<service>-<suffix>" as
  // the EndpointSlice controller names them; the others' keys are found from their names.
  std::map<std::string, std::string, std::less<>> sliceServices_;
  std::vector<std::weak_ptr<Subscription>> subscribers_;
  StoreStats stats_;
};

}  // namespace kdp::k8s
