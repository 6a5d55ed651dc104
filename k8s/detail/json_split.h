#pragma once
// Splits a JSON List (`{..., "items": [ {...}, {...} ], ...}`) into the byte ranges of its items
// without parsing them, so that each item can be parsed on its own: simdjson's DOM costs about
// 10 bytes of buffers per input byte, which for a 30 MB LIST is ~300 MB of memory touched once
// (page faults) and kept; item by item, the buffers stay the size of the largest item, and hot in
// cache.
//
// The scan is string-aware bracket matching (SSE2 where available). It does not validate the
// items: the caller parses each one, and the rest of the text (the "envelope", with the items
// array emptied), with a real JSON parser. Every byte of the text is then either validated by
// that parser or checked here (whitespace and commas between items), so the text is valid JSON
// exactly when all those parses succeed.

#include <cstddef>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace kdp::k8s::detail {

struct ListSplit {
  std::size_t arrayOpen = 0;   // offset of the items array's '['
  std::size_t arrayClose = 0;  // offset of its ']'
  std::vector<std::pair<std::size_t, std::size_t>> items;  // [begin, end) of each element
};

/// The items array of a top-level JSON object with one "items" member whose value is an array.
/// nullopt when the text is not shaped so (not an object, no or several "items" members, items
/// not an array) or is malformed in a way the scan notices: the caller then parses the text as
/// a whole, which reports any syntax error properly. Pure; any thread.
std::optional<ListSplit> splitListItems(std::string_view json);

}  // namespace kdp::k8s::detail
