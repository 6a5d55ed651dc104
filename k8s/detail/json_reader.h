#pragma once
// Typed reads over a simdjson DOM with the API server's reading of JSON: null is the same as an
// absent field, a wrong JSON type is an error naming the field and the type expected, integers
// must fit their Go type. Errors are collected per object (Reader), with a field path that is
// only rendered to text when an error happens.
//
// Internal to the decoders (k8s/detail/*.cpp); includes simdjson, so keep it out of public
// headers.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ip.h"
#include "k8s/detail/yaml_to_json.h"
#include "k8s/objects.h"

namespace kdp::k8s::detail {

namespace dom = simdjson::dom;

static_assert(kJsonPadding >= simdjson::SIMDJSON_PADDING,
              "yaml_to_json must leave the padding simdjson reads past the end");

/// Free-text fields that no other rule bounds (uid, resourceVersion, phase, zone, ...).
inline constexpr std::size_t kMaxShortString = 1024;
/// Values quoted in error messages are cut to this many bytes.
inline constexpr std::size_t kMaxQuoted = 64;

/// Where a field is, as a chain of stack-allocated links: building one costs nothing; str()
/// renders "spec.ports[0].port" or "metadata.labels[app]" only when an error is reported.
class Path {
 public:
  Path() = default;
  /// A root with a name, e.g. Path("items").at(3) for list items decoded as one document.
  explicit Path(std::string_view rootField) : type_(Type::Field), name_(rootField) {}

  Path field(std::string_view name) const { return Path(this, Type::Field, name, 0); }
  Path at(std::size_t index) const { return Path(this, Type::Index, {}, index); }
  Path key(std::string_view key) const { return Path(this, Type::Key, key, 0); }

  std::string str() const;

 private:
  enum class Type : std::uint8_t { Root, Field, Index, Key };
  Path(const Path* parent, Type type, std::string_view name, std::size_t index)
      : parent_(parent), type_(type), name_(name), index_(index) {}

  const Path* parent_ = nullptr;
  Type type_ = Type::Root;
  std::string_view name_;
  std::size_t index_ = 0;
};

struct FieldError {
  std::string field;
  std::string message;
};

/// Result of a typed read. Absent: missing or null (leave the default). Bad: an error was
/// recorded.
enum class Read : std::uint8_t { Absent, Ok, Bad };

template <class E>
struct EnumName {
  std::string_view name;
  E value;
};

/// `"value"` for messages: cut to kMaxQuoted bytes, control bytes escaped.
std::string quote(std::string_view value);
std::string_view typeName(dom::element_type type);

/// Decodes the fields of one object. Not thread-safe; one per object being decoded.
class Reader {
 public:
  static constexpr std::size_t kMaxErrors = 16;  // per object; the rest are counted

  void fail(const Path& at, std::string message);
  void required(const Path& at) { fail(at, "required value"); }
  /// "invalid value "<v>": <why>"
  void invalid(const Path& at, std::string_view value, std::string_view why);
  void invalid(const Path& at, std::int64_t value, std::string_view why);

  bool ok() const { return errors_.empty(); }
  std::vector<FieldError>& errors() { return errors_; }
  std::size_t suppressed() const { return suppressed_; }

  Read object(dom::element e, const Path& p, dom::object& out);
  Read array(dom::element e, const Path& p, dom::array& out);
  Read string(dom::element e, const Path& p, std::string_view& out,
              std::size_t maxLen = kMaxShortString);
  Read string(dom::element e, const Path& p, std::string& out,
              std::size_t maxLen = kMaxShortString);
  Read string(dom::element e, const Path& p, CompactString& out,
              std::size_t maxLen = kMaxShortString);
  Read boolean(dom::element e, const Path& p, bool& out);
  Read int32(dom::element e, const Path& p, std::int32_t& out);
  /// IntOrString: a number (int32) or a string; syntax is for the caller to check.
  Read intOrString(dom::element e, const Path& p, PortRef& out);
  Read protocol(dom::element e, const Path& p, Protocol& out);
  /// A string holding an IP address (kdp::IpAddr::parse).
  Read ip(dom::element e, const Path& p, IpAddr& out);

  template <class E, std::size_t N>
  Read enumeration(dom::element e, const Path& p, const EnumName<E> (&names)[N], E& out) {
    std::string_view s;
    Read r = string(e, p, s, SIZE_MAX);
    if (r != Read::Ok) {
      return r;
    }
    for (const auto& n : names) {
      if (n.name == s) {
        out = n.value;
        return Read::Ok;
      }
    }
    std::string msg = "unsupported value " + quote(s) + ": supported values: ";
    for (std::size_t i = 0; i < N; ++i) {
      msg += i ? ", \"" : "\"";
      msg += names[i].name;
      msg += '"';
    }
    fail(p, std::move(msg));
    return Read::Bad;
  }

  /// A JSON object of strings to strings (labels, selector, annotations, stringData). `each` is
  /// called as each(key, value, keyPath) for every pair; values of other types are errors.
  template <class F>
  Read stringMap(dom::element e, const Path& p, F&& each, std::size_t maxValueLen = SIZE_MAX) {
    dom::object o;
    Read r = object(e, p, o);
    if (r != Read::Ok) {
      return r;
    }
    for (auto [key, value] : o) {
      Path kp = p.key(key);
      std::string_view v;
      if (value.type() == dom::element_type::NULL_VALUE) {
        // Go reads null into a map[string]string as "".
        each(key, std::string_view{}, kp);
      } else if (string(value, kp, v, maxValueLen) == Read::Ok) {
        each(key, v, kp);
      }
    }
    return Read::Ok;
  }

 private:
  void typeError(const Path& p, std::string_view expected, dom::element e);

  std::vector<FieldError> errors_;
  std::size_t suppressed_ = 0;
};

/// map[key] = value, the last one winning on duplicate keys as in Go's encoding/json. O(1) when
/// keys arrive sorted, as the API server writes them.
void assignString(StringMap& map, std::string_view key, std::string_view value);

/// A JSON object's accepted pairs, in document order, for assignPairs.
using StringPairs = std::vector<std::pair<std::string_view, std::string_view>>;
/// Adds `pairs` to `map`, the last one winning on duplicate keys. Sorted first, so that every
/// insert is an append: O(n log n) however the document orders its keys.
void assignPairs(CompactStringMap& map, StringPairs& pairs);

}  // namespace kdp::k8s::detail
