#pragma once
// The manifests directory source: every *.yaml, *.yml and *.json file below a directory, kept
// current with inotify.
//
// - start() reads the whole tree (following symlinks; hidden files and directories, such as a
//   mounted ConfigMap's ..data and ..<timestamp>, are skipped), writes it to the store as ONE
//   batch, marks the store synced, then starts the watcher thread "kdp/manifests".
// - The watcher waits on inotify (no polling loop, no sleeps), gathers a burst of events until
//   20 ms pass without one (at most 200 ms), then writes all of it as one batch.
// - A file holds the objects it defines: a changed file replaces them, a removed one removes
//   them, a renamed one moves them (the store sees no change). A file that cannot be parsed keeps
//   its previous objects; an invalid object keeps the version the same file had loaded before,
//   and is otherwise left out. Each refusal is one warn line on logger "k8s" and counts in
//   stats().decodeErrors.
// - An object defined by several files takes the version of the last file in path order;
//   removing that file falls back to the next one's.
// - Services with a selector but no EndpointSlices in the directory get slices made from the
//   directory's Pods (k8s/endpoints_from_pods.h), recomputed in the same batch as each change.
// - A ConfigMap volume's atomic update (a new ..data symlink moved into place) rereads that
//   directory; files whose bytes did not change are not decoded again.
//
// stats(): decodeErrors (refusals since start), skippedObjects (objects of unused kinds in the
// files currently loaded), reloads (store versions written after the first full state), files
// (manifest files currently tracked).

#include <memory>
#include <string>

#include "k8s/source.h"

namespace kdp::k8s {

/// A Source for the manifests directory `dir`. Nothing happens until start(); start() throws
/// std::runtime_error("--manifests DIR: <reason>") when DIR is missing, not a directory or
/// unreadable. The Store given to start() must outlive the watcher (stop() or destruction).
std::unique_ptr<Source> makeManifestsSource(std::string dir);

}  // namespace kdp::k8s
