#include "proxy/syncer.h"

#include <chrono>

#include "nft/netlink.h"
#include "proxy/detail/encode.h"

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
  applied_ = desired;
  needFull_ = false;
  return stats;
}

bool Syncer::checkDrift() {
  if (!applied_ || needFull_) {
    return needFull_;
  }
  for (const auto& t : applied_->tables) {
    auto count = nl_->countRules(detail::nfproto(t.family), kTableName);
    if (!count || *count != static_cast<long>(detail::ruleCount(t))) {
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
