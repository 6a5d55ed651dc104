#pragma once
// The Kubernetes API source: list+watch of the kinds the components need, as client-go's
// reflector does, into the same Store as the manifests source.
//
// - Per kind: LIST in pages (limit 500, `continue`), then WATCH from the list's resourceVersion
//   with allowWatchBookmarks=true. The WATCH body is framed and decoded as it arrives: every
//   event is applied as soon as it is complete (events that arrive together are one batch).
// - Resume from the last resourceVersion seen (events and bookmarks advance it); on 410
//   Gone/Expired relist and write only the difference (k8s/detail/kind_state.h); on any other
//   failure reconnect after a capped exponential backoff with jitter (0.5 s .. 30 s). The store
//   keeps serving the last state meanwhile.
// - The first LIST of every kind goes to the store as ONE batch, then the store is marked synced
//   (/readyz): components never see a half-listed cluster.
// - EndpointSlices as discovery.k8s.io/v1, else v1beta1 (discovered from GET
//   /apis/discovery.k8s.io; v1.20 servers have only v1beta1). Secrets only of type
//   kubernetes.io/tls (fieldSelector).
// - Configuration errors found while starting (a certificate that does not verify, 401, 403,
//   404) end start() with the server's reason; unreachable servers are retried.
//
// One thread, "kdp/api", runs every reflector as a coroutine on one io_context.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "k8s/api_config.h"
#include "k8s/objects.h"
#include "k8s/source.h"

namespace kdp::k8s {

class ApiSource : public Source {
 public:
  enum class SyncState { Pending, Synced, Failed };

  /// Starts the reflectors and returns at once. Throws std::runtime_error for an unusable
  /// configuration (a bad PEM).
  virtual void startAsync(Store& store) = 0;
  /// Waits up to `timeout` for the first full state. Failed: a configuration error; see error().
  virtual SyncState waitSynced(std::chrono::milliseconds timeout) = 0;
  /// The one-line reason of SyncState::Failed.
  virtual std::string error() const = 0;

  /// Source::start: startAsync, then waits for the first full state; throws on Failed.
  void start(Store& store) override;
};

/// Kinds in the order they are listed; duplicates are ignored.
std::unique_ptr<ApiSource> makeApiSource(ApiConfig config, std::vector<Kind> kinds);

}  // namespace kdp::k8s
