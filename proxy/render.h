#pragma once
// The Ruleset as `nft -f` text: what `proxy --dry-run` prints and what the golden tests compare.
// Each table is preceded by `add table` + `delete table`, so that loading the text replaces an
// existing table atomically (one nft transaction) and `nft -c -f` accepts it on an empty kernel.

#include <string>

#include "proxy/ruleset.h"

namespace kdp::proxy {

/// One rule's text (without indentation) for a table of `family`.
std::string renderRule(const StaticRule& rule, IpFamily family);

/// The whole ruleset. Deterministic: elements in key order. Any thread.
std::string renderNft(const Ruleset& ruleset);

}  // namespace kdp::proxy
