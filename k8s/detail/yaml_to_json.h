#pragma once
// YAML → JSON text, so that manifests take the same decoding path as the API's JSON.
//
// Scalars are resolved per the YAML 1.2 core schema: plain null/Null/NULL/~/empty → null;
// true/True/TRUE/false/False/FALSE → booleans; decimal, 0x and 0o integers → JSON integers;
// floats → JSON numbers (".inf"/".nan", which JSON cannot hold, stay strings); every other plain
// scalar and every quoted or block scalar → a JSON string. Explicit !!str/!!int/!!float/!!bool/
// !!null tags are honoured; other tags are ignored. Mapping keys become JSON strings; a mapping
// key that is a sequence or a mapping is refused (JSON cannot hold it).
//
// Aliases are expanded, so the output is bounded (YamlLimits) to defuse "billion laughs" alias
// bombs: a document whose JSON would exceed maxJsonBytes or nest deeper than maxDepth fails.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kdp::k8s::detail {

/// Bytes of spare capacity that every produced JSON string has after its end, so that simdjson
/// can parse it in place (SIMDJSON_PADDING; checked where simdjson is included).
inline constexpr std::size_t kJsonPadding = 64;

struct YamlLimits {
  std::size_t maxJsonBytes = std::size_t{64} << 20;  // per document
  int maxDepth = 100;                                 // nested sequences and mappings
};

struct YamlError {
  int document = 0;  // 0-based index of the document where it happened
  int line = 0;      // 1-based; 0 when unknown
  int column = 0;    // 1-based; 0 when unknown
  std::string message;

  /// "line 3, column 7: <message>"
  std::string str() const;
};

/// Receives each non-empty document: its 0-based index in the stream (empty documents count)
/// and its JSON text, which the callee may move from. `json.capacity() >= json.size() +
/// kJsonPadding`.
using YamlDocumentSink = std::function<void(int document, std::string& json)>;

/// Converts a YAML stream document by document, calling `sink` after each document. Stops at
/// the first syntax error or limit and returns it; documents before it were already delivered.
/// Pure; any thread. Never throws (yaml-cpp's exceptions and std::bad_alloc become errors).
std::optional<YamlError> yamlToJson(std::string_view yaml, const YamlDocumentSink& sink,
                                    const YamlLimits& limits = {});

struct YamlToJsonResult {
  std::vector<std::string> documents;  // non-empty documents only
  std::optional<YamlError> error;      // when set, `documents` is empty
};

/// All documents at once (for tests and small inputs).
YamlToJsonResult yamlToJson(std::string_view yaml, const YamlLimits& limits = {});

/// Appends `s` to `out` as a JSON string literal, quotes included.
void appendJsonString(std::string& out, std::string_view s);

}  // namespace kdp::k8s::detail
