#pragma once
// The proxy's one-shot modes, run by main instead of the long-running component:
//   --dry-run  load the source, print the ruleset as `nft -f` text, touch nothing;
//   --once     load the source, apply one full sync to the kernel, exit 0 when it was accepted;
//   --cleanup  delete kube-dataplane's tables (ip and ip6) and exit (no source needed);
//   explain    load the source, print what a new connection from --src to --dst would meet.

#include <memory>

#include "k8s/source.h"
#include "proxy/options.h"

namespace kdp::proxy {

/// Runs `options.mode` (not Sync) on the objects `source` delivers: started (its first full
/// state: the manifests read, or one LIST of every kind from the API), then stopped. `source`
/// may be null for --cleanup. Prints errors as one line `kube-dataplane: ...` on stderr. Returns
/// the process exit code. Main thread.
int runOneShot(const ProxyOptions& options, std::unique_ptr<k8s::Source> source);

}  // namespace kdp::proxy
