#pragma once
// Frames a stream of concatenated JSON objects (a WATCH response body: one event object after
// another, newline-separated by the API server, but framed here by the objects' own braces so
// that no separator is assumed) into whole documents, fed in pieces of any size. Each document
// is handed out as soon as its closing brace arrives; only the incomplete tail is kept, so the
// memory held is the largest single event, never the stream.
//
// The scan is string-aware brace matching; it does not validate JSON (the decoder does).
// Pure; one per stream.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace kdp::k8s::detail {

class JsonStreamFramer {
 public:
  /// A document larger than `maxDocumentBytes` makes feed() fail.
  explicit JsonStreamFramer(std::size_t maxDocumentBytes) : max_(maxDocumentBytes) {}

  enum class Status { Ok, TooLarge, NotAnObject };

  /// Appends `bytes`; calls onDocument(text) for every document completed by them, in order
  /// (the text is valid during the call only). Stops at the first error and returns it; the
  /// framer must not be fed again after an error.
  Status feed(std::string_view bytes, const std::function<void(std::string_view)>& onDocument);

  /// Bytes of an incomplete document held.
  std::size_t pending() const { return buffer_.size(); }

 private:
  std::size_t max_;
  std::string buffer_;      // the incomplete document, from its '{'
  std::size_t depth_ = 0;
  bool inString_ = false;
  bool escaped_ = false;
};

}  // namespace kdp::k8s::detail
