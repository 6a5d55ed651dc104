#pragma once
// A proxy Table as nftables netlink messages: the full table (replacing whatever the kernel
// holds under that name, in the same transaction) or only the element differences between two
// tables with the same static part. Pure: appends to a Batch, touches no socket.

#include "nft/batch.h"
#include "proxy/ruleset.h"

namespace kdp::proxy::detail {

std::uint16_t nfproto(IpFamily family);

/// add table + delete table + the whole table: atomic replacement, no window without rules.
void encodeFullTable(nft::Batch& batch, const Table& table);

/// Turns `from` (what the kernel holds) into `to` without rewriting the table: new endpoint-count
/// chains and backends maps first, then element deletes and adds, then chains and maps no longer
/// used. Returns false, encoding nothing, when other parts of the static layout differ (base
/// chains, options): the caller then sends a full table.
bool encodeTableDiff(nft::Batch& batch, const Table& from, const Table& to);

/// add table + delete table: removes the table whether or not it exists.
void encodeDeleteTable(nft::Batch& batch, IpFamily family);

/// The number of rules the table holds in the kernel (for drift checks).
std::size_t ruleCount(const Table& table);

}  // namespace kdp::proxy::detail
