#pragma once
// Where objects come from: a manifests directory or the Kubernetes API. Both feed a Store.

#include <cstdint>
#include <memory>
#include <string>

namespace kdp::k8s {

class Store;

struct SourceStats {
  std::uint64_t decodeErrors = 0;    // objects or files refused, since start
  std::uint64_t skippedObjects = 0;  // objects of kinds the data plane does not use
  std::uint64_t reloads = 0;         // batches written to the store after the first full state
  std::uint64_t files = 0;           // manifests source: files currently loaded
  std::uint64_t watchEvents = 0;     // API source: WATCH events received (bookmarks included)
  std::uint64_t relists = 0;         // API source: LISTs after the first (410 Gone, ...)
  std::uint64_t reconnects = 0;      // API source: failed requests retried after a backoff
};

class Source {
 public:
  virtual ~Source() = default;

  /// Writes the first full state to the store (blocking), marks the store synced, then keeps the
  /// store current on a thread of its own until stop(). Throws std::runtime_error with a one-line
  /// message when it cannot start at all (a missing directory, an unreadable kubeconfig).
  virtual void start(Store& store) = 0;
  /// Stops watching; the store keeps the last state. Idempotent; also called by the destructor.
  virtual void stop() = 0;
  /// Any thread.
  virtual SourceStats stats() const = 0;
};

}  // namespace kdp::k8s
