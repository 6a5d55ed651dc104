#pragma once
// One JSON text (an object or a List) → objects, errors and skips appended to a DecodeResult.
// The single decoding path: decodeJson calls it on the caller's text, decodeYaml on the JSON that
// detail::yamlToJson makes of each YAML document.

#include <cstddef>
#include <optional>
#include <string>
#include <vector>
#include <string_view>

#include "k8s/decode.h"

namespace kdp::k8s::detail {

/// Largest JSON text accepted (simdjson's parser grows to it; API LISTs are paginated).
inline constexpr std::size_t kMaxJsonTextBytes = std::size_t{256} << 20;

struct JsonDocumentOptions {
  std::string_view source;
  int document = -1;  // YAML document index; -1 for a JSON text
  std::optional<Kind> itemKind;
  /// true (JSON): a List item's index is the DecodeError::document. false (YAML): the document
  /// index stays and the item shows in the field path as items[i].
  bool listItemsAsDocuments = true;
  /// When set and the text is a List: its metadata.resourceVersion and metadata.continue.
  ListMeta* listMeta = nullptr;
};

/// Parses `text` with this thread's simdjson parser and appends what it holds to `out`.
/// `padded`: kJsonPadding bytes after the end of `text` are readable (the text is then parsed
/// in place, else copied into the parser's buffer). Returns the error, and appends nothing,
/// when the text is not JSON at all (syntax, invalid UTF-8, too large, too deep).
/// Any thread; objects in `out` do not refer to `text`.
std::optional<DecodeError> decodeJsonDocument(std::string_view text, bool padded,
                                              const JsonDocumentOptions& options,
                                              DecodeResult& out);

/// Frees this thread's parser and its buffers (see releaseDecodeBuffers in k8s/decode.h).
void releaseThreadParser();

/// decodeWatchEvent and decodeApiGroupVersions of k8s/decode.h, on this thread's parser.
bool decodeWatchEventDocument(std::string_view text, Kind kind, WatchEvent& event,
                              std::string& error);
std::vector<std::string> decodeApiGroupVersions(std::string_view text);
std::string decodeApiStatusMessage(std::string_view text);

}  // namespace kdp::k8s::detail
