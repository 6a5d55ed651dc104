#include "k8s/store.h"

#include <algorithm>
#include <chrono>
#include <type_traits>

namespace kdp::k8s {

namespace {

double nowSeconds() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

// Calls fn(ObjectMap<T>&) for the map of `kind`.
template <class Fn>
decltype(auto) withMap(Snapshot& s, Kind kind, Fn&& fn) {
  switch (kind) {
    case Kind::Namespace: return fn(s.of<Namespace>());
    case Kind::Service: return fn(s.of<Service>());
    case Kind::EndpointSlice: return fn(s.of<EndpointSlice>());
    case Kind::Ingress: return fn(s.of<Ingress>());
    case Kind::IngressClass: return fn(s.of<IngressClass>());
    case Kind::Secret: return fn(s.of<Secret>());
    case Kind::Pod: return fn(s.of<Pod>());
    case Kind::Node: return fn(s.of<Node>());
  }
  return fn(s.of<Namespace>());
}

void sortUnique(std::vector<std::string>& keys) {
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
}

}  // namespace

std::string storeKey(Kind kind, std::string_view ns, std::string_view name) {
  if (!isNamespaced(kind)) {
    return std::string(name);
  }
  std::string key;
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return key;
}

std::string sliceKeyPrefix(std::string_view ns, std::string_view service) {
  std::string key;
  key.reserve(ns.size() + service.size() + 2);
  key.append(ns).append("/").append(service).append("/");
  return key;
}

namespace {
std::string storeKeyOf(Kind kind, const ObjectMeta& meta, const EndpointSlice* slice) {
  if (slice != nullptr) {
    return sliceKeyPrefix(meta.namespace_, slice->serviceName) + meta.name;
  }
  return storeKey(kind, meta.namespace_, meta.name);
}
}  // namespace

std::string storeKey(const Object& object) {
  return storeKeyOf(kindOf(object), metaOf(object), std::get_if<EndpointSlice>(&object));
}

std::string storeKey(const SharedObject& object) {
  const auto* slice = std::get_if<std::shared_ptr<const EndpointSlice>>(&object);
  return storeKeyOf(kindOf(object), metaOf(object), slice ? slice->get() : nullptr);
}

// --- Store: EndpointSlice keys ----------------------------------------------------------------

std::optional<std::string> Store::sliceKeyOf(std::string_view ns, std::string_view name) const {
  if (auto it = sliceServices_.find(storeKey(Kind::EndpointSlice, ns, name));
      it != sliceServices_.end()) {
    return sliceKeyPrefix(ns, it->second).append(name);
  }
  // Named "<service>-<suffix>": the Service is the name up to one of its dashes. Only one of
  // these keys can exist, since the store holds one slice per namespace and name.
  const auto& slices = working_.of<EndpointSlice>();
  for (auto dash = name.find('-'); dash != std::string_view::npos; dash = name.find('-', dash + 1)) {
    std::string key = sliceKeyPrefix(ns, name.substr(0, dash)).append(name);
    if (slices.get(key) != nullptr) {
      return key;
    }
  }
  return std::nullopt;
}

// --- Snapshot --------------------------------------------------------------------------------

std::size_t Snapshot::count(Kind kind) const {
  return withMap(const_cast<Snapshot&>(*this), kind, [](const auto& m) { return m.size(); });
}

const Service* Snapshot::service(std::string_view ns, std::string_view name) const {
  return of<Service>().get(storeKey(Kind::Service, ns, name));
}

// --- Changes ---------------------------------------------------------------------------------

bool Changes::empty() const {
  return std::all_of(keys.begin(), keys.end(), [](const auto& k) { return k.empty(); });
}

std::size_t Changes::size() const {
  std::size_t n = 0;
  for (const auto& k : keys) {
    n += k.size();
  }
  return n;
}

void Changes::merge(const Changes& other) {
  for (std::size_t i = 0; i < kKindCount; ++i) {
    if (other.keys[i].empty()) {
      continue;
    }
    auto& mine = keys[i];
    std::vector<std::string> merged;
    merged.reserve(mine.size() + other.keys[i].size());
    std::set_union(mine.begin(), mine.end(), other.keys[i].begin(), other.keys[i].end(),
                   std::back_inserter(merged));
    mine = std::move(merged);
  }
}

// --- Subscription ----------------------------------------------------------------------------

std::optional<Update> Subscription::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || pending_ != nullptr; });
  if (closed_ || !pending_) {
    return std::nullopt;
  }
  Update u{std::move(pending_), seen_, std::move(changes_), pendingVersions_};
  seen_ = u.snapshot;
  pending_ = nullptr;
  changes_ = Changes{};
  pendingVersions_ = 0;
  if (!u.previous) {
    u.previous = std::make_shared<const Snapshot>();
  }
  return u;
}

std::optional<Update> Subscription::take() {
  return next(std::chrono::milliseconds(0));
}

void Subscription::setWaker(std::function<void()> waker) {
  bool wakeNow = false;
  {
    std::lock_guard lock(mu_);
    waker_ = std::move(waker);
    wakeNow = pending_ != nullptr;
  }
  if (wakeNow && waker_) {
    waker_();
  }
}

void Subscription::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

std::function<void()> Subscription::deliver(const std::shared_ptr<const Snapshot>& snapshot,
                                            const Changes& changes) {
  std::function<void()> waker;
  {
    std::lock_guard lock(mu_);
    if (closed_) {
      return waker;
    }
    if (pending_ == nullptr) {
      waker = waker_;
    }
    pending_ = snapshot;
    changes_.merge(changes);
    ++pendingVersions_;
  }
  cv_.notify_all();
  return waker;
}

// --- Store -----------------------------------------------------------------------------------

Store::Store() : current_(std::make_shared<const Snapshot>()) {}

std::shared_ptr<const Snapshot> Store::snapshot() const {
  std::lock_guard lock(mu_);
  return current_;
}

StoreStats Store::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::size_t Store::apply(Batch&& batch) {
  std::vector<std::function<void()>> wakers;
  Changes changes;
  {
    std::lock_guard lock(mu_);
    bool namespacesChanged = false;
    auto refNamespace = [&](const ObjectMeta& meta, Kind kind, int delta) {
      const std::string& ns = kind == Kind::Namespace ? meta.name : meta.namespace_;
      if (ns.empty()) {
        return;
      }
      auto it = namespaceRefs_.find(ns);
      if (delta > 0) {
        if (it == namespaceRefs_.end()) {
          namespaceRefs_.emplace(ns, 1);
          namespacesChanged = true;
        } else {
          ++it->second;
        }
      } else if (it != namespaceRefs_.end() && --it->second == 0) {
        namespaceRefs_.erase(it);
        namespacesChanged = true;
      }
    };

    auto changed = [&](Kind kind, std::string key) {
      changes.keys[static_cast<std::size_t>(kind)].push_back(std::move(key));
    };
    auto eraseKey = [&](Kind kind, const std::string& key) {
      withMap(working_, kind, [&](auto& map) {
        if (auto old = map.erase(key)) {
          refNamespace(old->meta, kind, -1);
          changed(kind, key);
        }
      });
    };

    for (auto& op : batch.ops_) {
      if (!op.isUpsert) {
        std::string key = storeKey(op.kind, op.ns, op.name);
        if (op.kind == Kind::EndpointSlice) {
          auto sliceKey = sliceKeyOf(op.ns, op.name);
          if (!sliceKey) {
            continue;
          }
          sliceServices_.erase(key);
          key = std::move(*sliceKey);
        }
        eraseKey(op.kind, key);
        continue;
      }
      const Kind kind = op.kind;
      std::string key = storeKey(op.object);
      if (kind == Kind::EndpointSlice) {
        const auto& slice = *std::get<std::shared_ptr<const EndpointSlice>>(op.object);
        const ObjectMeta& meta = slice.meta;
        if (auto old = sliceKeyOf(meta.namespace_, meta.name); old && *old != key) {
          eraseKey(kind, *old);  // its service-name label changed: the slice moves
        }
        std::string id = storeKey(kind, meta.namespace_, meta.name);
        const std::string_view name = meta.name;
        const std::string_view service = slice.serviceName;
        if (!service.empty() && name.size() > service.size() && name.starts_with(service) &&
            name[service.size()] == '-') {
          sliceServices_.erase(id);
        } else {
          sliceServices_.insert_or_assign(std::move(id), slice.serviceName);
        }
      }
      std::visit(
          [&](auto& object) {
            using T = std::remove_const_t<typename std::decay_t<decltype(object)>::element_type>;
            auto& map = working_.of<T>();
            if (const T* old = map.get(key); old && *old == *object) {
              ++stats_.noopUpserts;
              return;
            }
            refNamespace(object->meta, kind, +1);
            changed(kind, key);
            // Shares the batch's object: no copy.
            if (auto old = map.set(std::move(key), std::move(object))) {
              refNamespace(old->meta, kind, -1);
            }
          },
          op.object);
    }
    if (changes.empty()) {
      return 0;
    }
    for (auto& keys : changes.keys) {
      sortUnique(keys);
    }
    if (namespacesChanged) {
      auto names = std::make_shared<std::set<std::string, std::less<>>>();
      for (const auto& [ns, refs] : namespaceRefs_) {
        names->insert(ns);
      }
      working_.namespaces = std::move(names);
    }
    ++stats_.batches;
    working_.lastChangeTime = nowSeconds();
    wakers = publishLocked(changes);
  }
  for (auto& waker : wakers) {
    waker();
  }
  return changes.size();
}

void Store::markSynced() {
  std::vector<std::function<void()>> wakers;
  {
    std::lock_guard lock(mu_);
    if (working_.synced) {
      return;
    }
    working_.synced = true;
    wakers = publishLocked(Changes{});
  }
  for (auto& waker : wakers) {
    waker();
  }
}

std::shared_ptr<Subscription> Store::subscribe() {
  auto sub = std::make_shared<Subscription>();
  std::lock_guard lock(mu_);
  // The first update presents every object as changed.
  Changes all;
  for (std::size_t k = 0; k < kKindCount; ++k) {
    withMap(working_, static_cast<Kind>(k), [&](const auto& map) {
      all.keys[k].reserve(map.size());
      for (const auto& e : map) {
        all.keys[k].push_back(e.key);
      }
    });
  }
  (void)sub->deliver(current_, all);  // no waker can be set yet
  subscribers_.push_back(sub);
  return sub;
}

std::vector<std::function<void()>> Store::publishLocked(const Changes& changes) {
  ++working_.version;
  // Copying the snapshot shares every chunk of every map; the next write copies what it touches.
  current_ = std::make_shared<const Snapshot>(working_);
  // Delivered under the store's lock so that every mailbox sees versions in order; the wakers
  // run after it is released.
  std::vector<std::function<void()>> wakers;
  std::erase_if(subscribers_, [&](const std::weak_ptr<Subscription>& weak) {
    auto sub = weak.lock();
    if (!sub) {
      return true;
    }
    if (auto waker = sub->deliver(current_, changes)) {
      wakers.push_back(std::move(waker));
    }
    return false;
  });
  return wakers;
}

}  // namespace kdp::k8s
