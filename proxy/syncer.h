#pragma once
// The applier: sends the difference between the last applied Ruleset and the desired one to
// the kernel as one nftables transaction (element adds/deletes; the whole table only when its
// static part changed, at the first sync, or after any failure), and notices when someone else
// deleted or flushed our tables.
//
// Not thread-safe: one owner thread (the proxy's sync thread, or main for --once).

#include <cstddef>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/result.h"
#include "proxy/ruleset.h"

#include <utility>
#include <vector>

namespace kdp::nft {
class Batch;
class Netlink;
}

namespace kdp::proxy {

struct RulesetChange;

struct SyncStats {
  bool full = false;           // the last sync rewrote whole tables
  std::size_t messages = 0;    // netlink messages in the last transaction (0: nothing to do)
  double encodeSeconds = 0;    // building the batch
  double commitSeconds = 0;    // sending it and waiting for the kernel's ACKs
};

class Syncer {
 public:
  /// Opens the netlink socket (throws std::runtime_error when it cannot).
  Syncer();
  ~Syncer();
  Syncer(const Syncer&) = delete;
  Syncer& operator=(const Syncer&) = delete;

  /// Makes the kernel hold `desired`. On error the kernel kept its previous state, the error
  /// names the refused message and the reason, and the next sync is a full one. Keeps a copy of
  /// `desired` to diff the next call against.
  Result<SyncStats> sync(const Ruleset& desired);

  /// Rewrites whole tables to `desired` (in one transaction: no window without rules) and keeps
  /// no copy: for --once and for the incremental path's full syncs.
  Result<SyncStats> syncFull(const Ruleset& desired);

  /// Sends the element differences of one IncrementalCompiler update; `model` is the compiler's
  /// ruleset after it. A full sync of `model` instead when the change asks for one, or after a
  /// failure or drift.
  Result<SyncStats> apply(const RulesetChange& change, const Ruleset& model);

  /// True when our tables no longer look like what we applied (deleted, flushed, rules
  /// changed): the next sync is then a full one. Errors count as drift.
  bool checkDrift();

  /// Forces the next sync to rewrite whole tables.
  void requireFullSync() { needFull_ = true; }
  bool needsFullSync() const { return needFull_; }

 private:
  Result<SyncStats> commit(nft::Batch& batch, SyncStats stats,
                           std::chrono::steady_clock::time_point started);
  void remember(const Ruleset& applied);

  std::unique_ptr<nft::Netlink> nl_;
  std::optional<Ruleset> applied_;  // sync() only: what the next sync() diffs against
  /// Rules per family in what the kernel holds (for drift checks).
  std::vector<std::pair<IpFamily, std::size_t>> ruleCounts_;
  bool needFull_ = true;
};

/// Deletes kube-dataplane's tables (ip and ip6) in one transaction; absent tables are fine.
Result<void> cleanupTables();

}  // namespace kdp::proxy
