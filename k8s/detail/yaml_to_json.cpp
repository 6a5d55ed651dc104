#include "k8s/detail/yaml_to_json.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <istream>
#include <streambuf>

namespace kdp::k8s::detail {

namespace {

/// Reads a string_view through std::istream without copying it (yaml-cpp takes only istreams).
class ViewStreambuf : public std::streambuf {
 public:
  explicit ViewStreambuf(std::string_view text) {
    // The get area is only read: sputbackc of a different character goes to pbackfail, which
    // the base class refuses.
    char* p = const_cast<char*>(text.data());
    setg(p, p, p + text.size());
  }
};

/// Thrown from the event handler to stop yaml-cpp at once when a limit is crossed.
struct ConversionFailure {
  YAML::Mark mark;
  std::string message;
};

enum class ScalarKind : std::uint8_t { Null, Bool, Int, Float, String };

constexpr std::string_view kTagPrefix = "tag:yaml.org,2002:";

bool isDigits(std::string_view s, bool (*digit)(char)) {
  return !s.empty() && std::all_of(s.begin(), s.end(), digit);
}

bool isDec(char c) {
  return c >= '0' && c <= '9';
}
bool isOct(char c) {
  return c >= '0' && c <= '7';
}
bool isHex(char c) {
  return isDec(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool isNullWord(std::string_view s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

// YAML 1.2 core schema float: [-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?
bool isCoreFloat(std::string_view s) {
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
  }
  std::size_t intDigits = 0;
  while (i < s.size() && isDec(s[i])) {
    ++i;
    ++intDigits;
  }
  std::size_t fracDigits = 0;
  bool dot = false;
  if (i < s.size() && s[i] == '.') {
    dot = true;
    ++i;
    while (i < s.size() && isDec(s[i])) {
      ++i;
      ++fracDigits;
    }
  }
  if (intDigits == 0 && (!dot || fracDigits == 0)) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    std::size_t expDigits = 0;
    while (i < s.size() && isDec(s[i])) {
      ++i;
      ++expDigits;
    }
    if (expDigits == 0) {
      return false;
    }
  }
  return i == s.size();
}

// Formats a double the way Go's encoding/json does (sigs.k8s.io/yaml goes YAML → Go → JSON), so
// that `port: 80.0` reads as the integer 80, as kubectl has it.
void appendDouble(std::string& out, double v) {
  char buf[64];
  const double a = std::fabs(v);
  const auto fmt = (a != 0 && (a < 1e-6 || a >= 1e21)) ? std::chars_format::scientific
                                                       : std::chars_format::fixed;
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v, fmt);
  if (ec != std::errc{}) {
    out += "null";  // unreachable for finite values: 64 bytes hold any shortest form
    return;
  }
  out.append(buf, p);
}

class JsonBuilder final : public YAML::EventHandler {
 public:
  JsonBuilder(std::string_view text, const YamlLimits& limits, const YamlDocumentSink& sink)
      : text_(text), limits_(limits), sink_(sink) {}

  int documentsStarted() const { return documents_; }
  bool inDocument() const { return inDocument_; }

  void OnDocumentStart(const YAML::Mark& mark) override {
    // yaml-cpp 0.7 loops forever on a token that cannot start a node at document level (a bare
    // ',', jbeder/yaml-cpp#1040): each call returns one more empty document at the same
    // place. Every real document starts further on.
    if (documents_ > 0 && mark.pos == lastDocumentStart_) {
      std::string what = "unexpected characters";
      if (mark.pos >= 0 && static_cast<std::size_t>(mark.pos) < text_.size()) {
        const auto c = static_cast<unsigned char>(text_[static_cast<std::size_t>(mark.pos)]);
        if (c >= 0x20 && c < 0x7F) {
          what = std::string("unexpected character '") + static_cast<char>(c) + "'";
        }
      }
      inDocument_ = true;  // the error belongs to the document that already started here
      throw ConversionFailure{mark, what};
    }
    if (static_cast<std::size_t>(documents_) > text_.size() + 1) {
      throw ConversionFailure{mark, "the YAML parser does not advance"};
    }
    lastDocumentStart_ = mark.pos;
    ++documents_;
    inDocument_ = true;
    out_.clear();
    frames_.clear();
    anchors_.clear();
    rootIsNull_ = false;
  }

  void OnDocumentEnd() override {
    inDocument_ = false;
    if (rootIsNull_ || out_.empty()) {
      return;  // an empty document: skipped
    }
    // Handed over in place (no copy); the sink may move it away. Otherwise the buffer, grown
    // to the largest document, is reused for the next one.
    out_.reserve(out_.size() + kJsonPadding);
    sink_(documents_ - 1, out_);
  }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (frames_.empty()) {
      rootIsNull_ = true;
    }
    if (isKeyPosition()) {
      writeKey(mark, "null");
    } else {
      beginValue();
      out_ += "null";
      endValue(0);
    }
    if (anchor != 0) {
      defineScalarAnchor(anchor, "tag:yaml.org,2002:null", "null");
    }
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor].complete) {
      throw ConversionFailure{mark, "an alias refers to the node that contains it"};
    }
    // Replaying with anchor 0 defines no anchor, so `a` stays valid throughout.
    const Anchor& a = anchors_[anchor];
    if (a.isScalar) {
      OnScalar(mark, a.tag, 0, a.raw);
      return;
    }
    if (isKeyPosition()) {
      throw ConversionFailure{mark, "a mapping key must be a scalar, not a sequence or a mapping"};
    }
    if (frames_.size() + static_cast<std::size_t>(a.height) >
        static_cast<std::size_t>(limits_.maxDepth)) {
      throwDepth(mark);
    }
    const std::size_t len = a.end - a.begin;
    checkSize(mark, len);
    beginValue();
    out_.reserve(out_.size() + len);  // so that the source range stays valid while appending
    out_.append(out_.data() + a.begin, len);
    endValue(a.height);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (frames_.empty() && tag == "?" && isNullWord(value)) {
      rootIsNull_ = true;
    }
    if (isKeyPosition()) {
      writeKey(mark, value);
    } else {
      beginValue();
      writeScalar(mark, tag, value);
      checkSize(mark, 0);
      endValue(0);
    }
    if (anchor != 0) {
      defineScalarAnchor(anchor, tag, value);
    }
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value /*style*/) override {
    openContainer(mark, anchor, false);
  }

  void OnSequenceEnd() override { closeContainer(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& /*tag*/, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value /*style*/) override {
    openContainer(mark, anchor, true);
  }

  void OnMapEnd() override { closeContainer(); }

 private:
  struct Frame {
    bool isMap = false;
    bool expectKey = true;  // maps: the next node is a key
    bool empty = true;
    int height = 1;         // levels of nesting from this container down
    std::size_t begin = 0;  // offset of '[' or '{' in out_
    YAML::anchor_t anchor = 0;
  };

  struct Anchor {
    bool complete = false;
    bool isScalar = false;
    std::string tag, raw;  // scalars: replayed through OnScalar
    std::size_t begin = 0, end = 0;  // containers: their JSON text in out_
    int height = 0;
  };

  bool isKeyPosition() const {
    return !frames_.empty() && frames_.back().isMap && frames_.back().expectKey;
  }

  void beginValue() {
    if (!frames_.empty()) {
      Frame& f = frames_.back();
      if (!f.isMap && !f.empty) {
        out_ += ',';
      }
    }
  }

  void endValue(int height) {
    if (!frames_.empty()) {
      Frame& f = frames_.back();
      f.empty = false;
      f.expectKey = true;
      f.height = std::max(f.height, height + 1);
    }
  }

  void writeKey(const YAML::Mark& mark, std::string_view key) {
    Frame& f = frames_.back();
    if (!f.empty) {
      out_ += ',';
    }
    appendJsonString(out_, key);
    out_ += ':';
    checkSize(mark, 0);
    f.expectKey = false;
    f.empty = false;
  }

  void openContainer(const YAML::Mark& mark, YAML::anchor_t anchor, bool isMap) {
    if (isKeyPosition()) {
      throw ConversionFailure{mark, "a mapping key must be a scalar, not a sequence or a mapping"};
    }
    if (frames_.size() + 1 > static_cast<std::size_t>(limits_.maxDepth)) {
      throwDepth(mark);
    }
    beginValue();
    Frame f;
    f.isMap = isMap;
    f.begin = out_.size();
    f.anchor = anchor;
    out_ += isMap ? '{' : '[';
    checkSize(mark, 0);
    if (anchor != 0) {
      anchorSlot(anchor) = Anchor{};  // redefinition: incomplete until the container closes
    }
    frames_.push_back(f);
  }

  void closeContainer() {
    Frame f = frames_.back();
    frames_.pop_back();
    out_ += f.isMap ? '}' : ']';
    if (f.anchor != 0) {
      Anchor& a = anchorSlot(f.anchor);
      a.complete = true;
      a.begin = f.begin;
      a.end = out_.size();
      a.height = f.height;
    }
    endValue(f.height);
  }

  Anchor& anchorSlot(YAML::anchor_t anchor) {
    if (anchor >= anchors_.size()) {
      anchors_.resize(anchor + 1);
    }
    return anchors_[anchor];
  }

  void defineScalarAnchor(YAML::anchor_t anchor, std::string_view tag, std::string_view raw) {
    Anchor& a = anchorSlot(anchor);
    a.complete = true;
    a.isScalar = true;
    a.tag.assign(tag);
    a.raw.assign(raw);
  }

  void checkSize(const YAML::Mark& mark, std::size_t adding) const {
    if (out_.size() + adding > limits_.maxJsonBytes) {
      throw ConversionFailure{
          mark, "document expands to more than " + std::to_string(limits_.maxJsonBytes) +
                    " bytes of JSON (too many aliases?)"};
    }
  }

  [[noreturn]] void throwDepth(const YAML::Mark& mark) const {
    throw ConversionFailure{mark, "document nests deeper than " +
                                      std::to_string(limits_.maxDepth) + " levels"};
  }

  void writeScalar(const YAML::Mark& mark, std::string_view tag, std::string_view value) {
    if (tag == "!") {
      appendJsonString(out_, value);  // quoted or block scalar
      return;
    }
    if (tag == "?") {
      writePlain(value);
      return;
    }
    if (tag.starts_with(kTagPrefix)) {
      auto type = tag.substr(kTagPrefix.size());
      if (type == "str" || type == "binary" || type == "timestamp") {
        appendJsonString(out_, value);
        return;
      }
      std::optional<ScalarKind> want;
      if (type == "null") {
        want = ScalarKind::Null;
      } else if (type == "bool") {
        want = ScalarKind::Bool;
      } else if (type == "int") {
        want = ScalarKind::Int;
      } else if (type == "float") {
        want = ScalarKind::Float;
      }
      if (want) {
        const std::size_t before = out_.size();
        ScalarKind got = writePlain(value);
        if (got == *want || (*want == ScalarKind::Float && got == ScalarKind::Int)) {
          return;
        }
        out_.resize(before);
        std::string shown(value.substr(0, 64));
        throw ConversionFailure{mark, "cannot decode \"" + shown + "\" as !!" + std::string(type)};
      }
    }
    // Application tags (!foo) and other standard tags on a scalar: keep the text, as go-yaml does.
    appendJsonString(out_, value);
  }

  // Resolves a plain scalar per the YAML 1.2 core schema and writes it; returns what it was.
  ScalarKind writePlain(std::string_view s) {
    if (isNullWord(s)) {
      out_ += "null";
      return ScalarKind::Null;
    }
    if (s == "true" || s == "True" || s == "TRUE") {
      out_ += "true";
      return ScalarKind::Bool;
    }
    if (s == "false" || s == "False" || s == "FALSE") {
      out_ += "false";
      return ScalarKind::Bool;
    }
    const char c = s.front();
    if (isDec(c) || c == '-' || c == '+' || c == '.') {
      if (auto kind = writeNumber(s)) {
        return *kind;
      }
    }
    appendJsonString(out_, s);
    return ScalarKind::String;
  }

  // Writes `s` as a JSON number when it is a core-schema int or float and says which.
  std::optional<ScalarKind> writeNumber(std::string_view s) {
    // Integers: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+
    std::string_view digits = s;
    bool negative = false;
    if (digits[0] == '-' || digits[0] == '+') {
      negative = digits[0] == '-';
      digits.remove_prefix(1);
    }
    int base = 0;
    if (isDigits(digits, isDec)) {
      base = 10;
    } else if (s.size() > 2 && s.starts_with("0o") && isDigits(s.substr(2), isOct)) {
      base = 8;
      digits = s.substr(2);
    } else if (s.size() > 2 && s.starts_with("0x") && isDigits(s.substr(2), isHex)) {
      base = 16;
      digits = s.substr(2);
    }
    if (base != 0) {
      std::uint64_t v = 0;
      auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
      if (ec == std::errc{} && p == digits.data() + digits.size() &&
          (!negative || v <= std::uint64_t{1} << 63)) {
        if (negative && v != 0) {
          out_ += '-';
        }
        char buf[24];
        auto [end, ec2] = std::to_chars(buf, buf + sizeof buf, v);
        (void)ec2;
        out_.append(buf, end);
        return ScalarKind::Int;
      }
      // Beyond 64 bits: written as a float, which the typed decoder refuses where it wants an
      // integer (rather than a JSON integer simdjson cannot read at all).
    }
    if (base == 10 || isCoreFloat(s)) {
      std::string_view t = s[0] == '+' ? s.substr(1) : s;
      double d = 0;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), d);
      if (ec == std::errc{} && p == t.data() + t.size() && std::isfinite(d)) {
        appendDouble(out_, d);
        return ScalarKind::Float;
      }
    }
    // .inf and .nan (JSON cannot hold them) and out-of-range floats stay strings.
    return std::nullopt;
  }

  std::string_view text_;
  const YamlLimits& limits_;
  const YamlDocumentSink& sink_;
  int lastDocumentStart_ = -1;
  std::string out_;
  std::vector<Frame> frames_;
  std::vector<Anchor> anchors_;
  int documents_ = 0;
  bool inDocument_ = false;
  bool rootIsNull_ = false;
};

}  // namespace

std::string YamlError::str() const {
  std::string s;
  if (line > 0) {
    s += "line " + std::to_string(line);
    if (column > 0) {
      s += ", column " + std::to_string(column);
    }
    s += ": ";
  }
  s += message;
  return s;
}

void appendJsonString(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.reserve(out.size() + s.size() + 2);
  out += '"';
  std::size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') {
      continue;
    }
    out.append(s.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(s.data() + run, s.size() - run);
  out += '"';
}

std::optional<YamlError> yamlToJson(std::string_view yaml, const YamlDocumentSink& sink,
                                    const YamlLimits& limits) {
  ViewStreambuf buf(yaml);
  std::istream in(&buf);
  JsonBuilder builder(yaml, limits, sink);
  auto documentIndex = [&] {
    return builder.inDocument() ? builder.documentsStarted() - 1 : builder.documentsStarted();
  };
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const ConversionFailure& f) {
    return YamlError{documentIndex(), f.mark.line + 1, f.mark.column + 1, f.message};
  } catch (const YAML::DeepRecursion& e) {
    return YamlError{documentIndex(), e.mark.is_null() ? 0 : e.mark.line + 1,
                     e.mark.is_null() ? 0 : e.mark.column + 1,
                     "document nests too deeply for the YAML parser"};
  } catch (const YAML::Exception& e) {
    return YamlError{documentIndex(), e.mark.is_null() ? 0 : e.mark.line + 1,
                     e.mark.is_null() ? 0 : e.mark.column + 1, e.msg};
  }
  return std::nullopt;
}

YamlToJsonResult yamlToJson(std::string_view yaml, const YamlLimits& limits) {
  YamlToJsonResult r;
  r.error = yamlToJson(
      yaml, [&](int /*document*/, std::string& json) { r.documents.push_back(std::move(json)); },
      limits);
  if (r.error) {
    r.documents.clear();
  }
  return r;
}

}  // namespace kdp::k8s::detail
