#include "k8s/detail/kind_state.h"

namespace kdp::k8s::detail {

std::string KindState::keyOf(std::string_view ns, std::string_view name) const {
  if (!isNamespaced(kind_)) {
    return std::string(name);
  }
  std::string key(ns.empty() ? std::string_view("default") : ns);
  key += '/';
  key += name;
  return key;
}

void KindState::applyList(std::vector<Object>&& objects, const std::vector<DecodeError>& errors,
                          std::string resourceVersion, Batch& batch) {
  std::set<std::string, std::less<>> listed;
  for (const DecodeError& e : errors) {
    if (!e.name.empty()) {
      if (auto it = known_.find(keyOf(e.namespace_, e.name)); it != known_.end()) {
        listed.insert(*it);  // refused now: keep its last good version
      }
    }
  }
  for (Object& object : objects) {
    if (kindOf(object) != kind_) {
      continue;
    }
    const ObjectMeta& meta = metaOf(object);
    listed.insert(keyOf(meta.namespace_, meta.name));
    batch.upsert(std::move(object));
  }
  for (const std::string& key : known_) {
    if (!listed.contains(key)) {
      const auto slash = isNamespaced(kind_) ? key.find('/') : std::string::npos;
      if (slash == std::string::npos) {
        batch.remove(kind_, {}, key);
      } else {
        batch.remove(kind_, key.substr(0, slash), key.substr(slash + 1));
      }
    }
  }
  known_ = std::move(listed);
  resourceVersion_ = std::move(resourceVersion);
}

void KindState::applyEvent(WatchEvent&& event, Batch& batch) {
  if (!event.resourceVersion.empty()) {
    resourceVersion_ = event.resourceVersion;
  }
  switch (event.type) {
    case WatchEventType::Bookmark:
    case WatchEventType::Error:
      return;
    case WatchEventType::Deleted:
      if (!event.name.empty() && known_.erase(keyOf(event.namespace_, event.name)) > 0) {
        batch.remove(kind_, event.namespace_, event.name);
      }
      return;
    case WatchEventType::Added:
    case WatchEventType::Modified:
      for (Object& object : event.result.objects) {
        if (kindOf(object) != kind_) {
          continue;
        }
        const ObjectMeta& meta = metaOf(object);
        known_.insert(keyOf(meta.namespace_, meta.name));
        batch.upsert(std::move(object));
      }
      return;
  }
}

}  // namespace kdp::k8s::detail
