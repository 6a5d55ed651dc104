#pragma once
// What one kind's reflector knows between LISTs and WATCH events: the keys of the objects it
// gave the store and the resourceVersion to resume from. Turns a complete LIST and each WATCH
// event into store writes. Pure: no I/O; unit-tested without a server.
//
// A relist (after 410 Gone) upserts every listed object — the store drops upserts equal to what
// it holds, so unchanged objects cost nothing downstream — and removes only the known objects the
// list no longer has. An object the decoder refused keeps the store's last good version (it is
// neither upserted nor removed), as the manifests source does for a bad file.

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "k8s/decode.h"
#include "k8s/store.h"

namespace kdp::k8s::detail {

class KindState {
 public:
  explicit KindState(Kind kind) : kind_(kind) {}

  /// A complete LIST (every page): writes to `batch`, sets the resourceVersion.
  void applyList(std::vector<Object>&& objects, const std::vector<DecodeError>& errors,
                 std::string resourceVersion, Batch& batch);

  /// An Added, Modified, Deleted or Bookmark event: writes to `batch` and advances the
  /// resourceVersion. (Error events are the caller's: they change nothing here.)
  void applyEvent(WatchEvent&& event, Batch& batch);

  Kind kind() const { return kind_; }
  const std::string& resourceVersion() const { return resourceVersion_; }
  std::size_t size() const { return known_.size(); }

 private:
  std::string keyOf(std::string_view ns, std::string_view name) const;

  Kind kind_;
  std::set<std::string, std::less<>> known_;  // "namespace/name" (or "name")
  std::string resourceVersion_;
};

}  // namespace kdp::k8s::detail
