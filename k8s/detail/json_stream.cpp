#include "k8s/detail/json_stream.h"

namespace kdp::k8s::detail {

JsonStreamFramer::Status JsonStreamFramer::feed(
    std::string_view bytes, const std::function<void(std::string_view)>& onDocument) {
  std::size_t start = 0;  // start in `bytes` of the part not yet copied to buffer_
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (depth_ == 0) {
      // Between documents: whitespace only, then the next '{'.
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
        start = i + 1;
        continue;
      }
      if (c != '{') {
        return Status::NotAnObject;
      }
      start = i;
      depth_ = 1;
      continue;
    }
    if (inString_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        inString_ = false;
      }
      continue;
    }
    if (c == '"') {
      inString_ = true;
    } else if (c == '{' || c == '[') {
      ++depth_;
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) {
        const std::string_view tail = bytes.substr(start, i + 1 - start);
        if (buffer_.empty()) {
          onDocument(tail);  // whole in this piece: no copy
        } else {
          if (buffer_.size() + tail.size() > max_) {
            return Status::TooLarge;
          }
          buffer_.append(tail);
          onDocument(buffer_);
          buffer_.clear();
        }
        start = i + 1;
      }
    }
  }
  if (depth_ > 0 && start < bytes.size()) {
    if (buffer_.size() + (bytes.size() - start) > max_) {
      return Status::TooLarge;
    }
    buffer_.append(bytes.substr(start));
  }
  return Status::Ok;
}

}  // namespace kdp::k8s::detail
