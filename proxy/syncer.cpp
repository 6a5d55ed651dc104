#include "proxy/syncer.h"

#include <algorithm>
#include <chrono>

#include "nft/netlink.h"
#include "proxy/detail/encode.h"
#include "proxy/incremental.h"

namespace kdp::proxy {

Syncer::Syncer() : nl_(std::make_unique<nft::Netlink>()) {}
Syncer::~Syncer() = default;

Result<SyncStats> Syncer::sync(const Ruleset& desired) {
  const auto started = std::chrono::steady_clock::now();
  nft::Batch batch(nl_->nextSeq());
  SyncStats stats;
  for (const auto& table : desired.tables) {
    const Table* old = nullptr;
    if (applied_ && !needFull_) {
      for (const auto& t : applied_->tables) {
        if (t.family == table.family) {
          old = &t;
        }
      }
    }
    // Element changes, plus endpoint-count chains and maps as they come and go; the whole
    // table on the first sync, after a failure, or when options change the fixed chains. A
    // full sync replaces the table inside the transaction: packets never see it without rules.
    if (old == nullptr || !detail::encodeTableDiff(batch, *old, table)) {
      detail::encodeFullTable(batch, table);
      stats.full = true;
    }
  }
  // Families we no longer program (and, on a full sync, whatever an earlier run left).
  for (IpFamily family : {IpFamily::V4, IpFamily::V6}) {
    bool wanted = false;
    for (const auto& t : desired.tables) {
      wanted = wanted || t.family == family;
    }
    bool had = needFull_ || !applied_;
    if (applied_ && !had) {
      for (const auto& t : applied_->tables) {
        had = had || t.family == family;
      }
    }
    if (!wanted && had) {
      detail::encodeDeleteTable(batch, family);
    }
  }
  auto r = commit(batch, stats, started);
  if (r && r->messages > 0) {
    applied_ = desired;
    remember(desired);
  }
  return r;
}

namespace {

/// Deletes the tables of families `desired` does not program (and whatever an earlier run left).
void deleteUnwanted(nft::Batch& batch, const Ruleset& desired) {
  for (IpFamily family : {IpFamily::V4, IpFamily::V6}) {
    const bool wanted = std::any_of(desired.tables.begin(), desired.tables.end(),
                                    [&](const Table& t) { return t.family == family; });
    if (!wanted) {
      detail::encodeDeleteTable(batch, family);
    }
  }
}

}  // namespace

Result<SyncStats> Syncer::syncFull(const Ruleset& desired) {
  const auto started = std::chrono::steady_clock::now();
  nft::Batch batch(nl_->nextSeq());
  SyncStats stats;
  stats.full = true;
  for (const auto& table : desired.tables) {
    detail::encodeFullTable(batch, table);
  }
  deleteUnwanted(batch, desired);
  applied_.reset();
  auto r = commit(batch, stats, started);
  if (r) {
    remember(desired);
  }
  return r;
}

Result<SyncStats> Syncer::apply(const RulesetChange& change, const Ruleset& model) {
  if (change.full || needFull_) {
    return syncFull(model);
  }
  const auto started = std::chrono::steady_clock::now();
  nft::Batch batch(nl_->nextSeq());
  for (const auto& t : change.tables) {
    if (!detail::encodeTableDiff(batch, t.before, t.after)) {
      return syncFull(model);  // the fixed chains changed
    }
  }
  applied_.reset();
  auto r = commit(batch, SyncStats{}, started);
  if (r && r->messages > 0) {
    remember(model);
  }
  return r;
}

Result<SyncStats> Syncer::commit(nft::Batch& batch, SyncStats stats,
                                 std::chrono::steady_clock::time_point started) {
  stats.messages = batch.messageCount();
  if (stats.messages == 0) {
    return stats;
  }
  const auto encoded = std::chrono::steady_clock::now();
  stats.encodeSeconds = std::chrono::duration<double>(encoded - started).count();
  if (auto r = nl_->commit(batch); !r) {
    needFull_ = true;
    return r.error();
  }
  stats.commitSeconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - encoded).count();
  needFull_ = false;
  return stats;
}

void Syncer::remember(const Ruleset& applied) {
  ruleCounts_.clear();
  for (const auto& t : applied.tables) {
    ruleCounts_.emplace_back(t.family, detail::ruleCount(t));
  }
}

bool Syncer::checkDrift() {
  if (needFull_) {
    return true;
  }
  for (const auto& [family, rules] : ruleCounts_) {
    auto count = nl_->countRules(detail::nfproto(family), kTableName);
    if (!count || *count != static_cast<long>(rules)) {
      needFull_ = true;
      return true;
    }
  }
  return false;
}

Result<void> cleanupTables() {
  try {
    nft::Netlink nl;
    nft::Batch batch(nl.nextSeq());
    detail::encodeDeleteTable(batch, IpFamily::V4);
    detail::encodeDeleteTable(batch, IpFamily::V6);
    return nl.commit(batch);
  } catch (const std::runtime_error& e) {
    return Error{e.what()};
  }
}

}  // namespace kdp::proxy
