#include "k8s/detail/json_reader.h"

#include <algorithm>
#include <charconv>
#include <climits>

namespace kdp::k8s::detail {

std::string Path::str() const {
  // Collect the chain root-first; paths are a handful of links deep.
  const Path* chain[64];
  std::size_t n = 0;
  for (const Path* p = this; p != nullptr && n < std::size(chain); p = p->parent_) {
    chain[n++] = p;
  }
  std::string out;
  while (n > 0) {
    const Path* p = chain[--n];
    switch (p->type_) {
      case Type::Root:
        break;
      case Type::Field:
        if (!out.empty()) {
          out += '.';
        }
        out += p->name_;
        break;
      case Type::Index:
        out += '[';
        out += std::to_string(p->index_);
        out += ']';
        break;
      case Type::Key: {
        out += '[';
        std::string_view k = p->name_.substr(0, kMaxQuoted);
        for (char c : k) {
          auto u = static_cast<unsigned char>(c);
          out += (u < 0x20 || u == 0x7F) ? '?' : c;
        }
        if (p->name_.size() > kMaxQuoted) {
          out += "...";
        }
        out += ']';
        break;
      }
    }
  }
  return out;
}

std::string quote(std::string_view value) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : value.substr(0, kMaxQuoted)) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F || c == '"' || c == '\\') {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xF];
    } else {
      out += c;
    }
  }
  out += '"';
  if (value.size() > kMaxQuoted) {
    out += "... (" + std::to_string(value.size()) + " bytes)";
  }
  return out;
}

std::string_view typeName(dom::element_type type) {
  switch (type) {
    case dom::element_type::ARRAY: return "array";
    case dom::element_type::OBJECT: return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64: return "integer";
    case dom::element_type::DOUBLE: return "number";
    case dom::element_type::STRING: return "string";
    case dom::element_type::BOOL: return "boolean";
    case dom::element_type::NULL_VALUE: return "null";
  }
  return "value";
}

void Reader::fail(const Path& at, std::string message) {
  if (errors_.size() >= kMaxErrors) {
    ++suppressed_;
    return;
  }
  errors_.push_back(FieldError{at.str(), std::move(message)});
}

void Reader::invalid(const Path& at, std::string_view value, std::string_view why) {
  std::string msg = "invalid value " + quote(value);
  msg += ": ";
  msg += why;
  fail(at, std::move(msg));
}

void Reader::invalid(const Path& at, std::int64_t value, std::string_view why) {
  std::string msg = "invalid value " + std::to_string(value);
  msg += ": ";
  msg += why;
  fail(at, std::move(msg));
}

void Reader::typeError(const Path& p, std::string_view expected, dom::element e) {
  std::string msg = "expected ";
  msg += expected;
  msg += ", got ";
  msg += typeName(e.type());
  fail(p, std::move(msg));
}

Read Reader::object(dom::element e, const Path& p, dom::object& out) {
  switch (e.type()) {
    case dom::element_type::OBJECT:
      out = e.get_object().value_unsafe();
      return Read::Ok;
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    default:
      typeError(p, "object", e);
      return Read::Bad;
  }
}

Read Reader::array(dom::element e, const Path& p, dom::array& out) {
  switch (e.type()) {
    case dom::element_type::ARRAY:
      out = e.get_array().value_unsafe();
      return Read::Ok;
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    default:
      typeError(p, "array", e);
      return Read::Bad;
  }
}

Read Reader::string(dom::element e, const Path& p, std::string_view& out, std::size_t maxLen) {
  switch (e.type()) {
    case dom::element_type::STRING: {
      std::string_view s;
      s = e.get_string().value_unsafe();
      if (s.size() > maxLen) {
        fail(p, "too long: " + std::to_string(s.size()) + " bytes, must have at most " +
                    std::to_string(maxLen));
        return Read::Bad;
      }
      out = s;
      return Read::Ok;
    }
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    default:
      typeError(p, "string", e);
      return Read::Bad;
  }
}

Read Reader::string(dom::element e, const Path& p, std::string& out, std::size_t maxLen) {
  std::string_view s;
  Read r = string(e, p, s, maxLen);
  if (r == Read::Ok) {
    out.assign(s);
  }
  return r;
}

Read Reader::string(dom::element e, const Path& p, CompactString& out, std::size_t maxLen) {
  std::string_view s;
  Read r = string(e, p, s, maxLen);
  if (r == Read::Ok) {
    out.assign(s);
  }
  return r;
}

Read Reader::boolean(dom::element e, const Path& p, bool& out) {
  switch (e.type()) {
    case dom::element_type::BOOL:
      out = e.get_bool().value_unsafe();
      return Read::Ok;
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    default:
      typeError(p, "boolean", e);
      return Read::Bad;
  }
}

Read Reader::int32(dom::element e, const Path& p, std::int32_t& out) {
  switch (e.type()) {
    case dom::element_type::INT64: {
      std::int64_t v = 0;
      v = e.get_int64().value_unsafe();
      if (v < INT32_MIN || v > INT32_MAX) {
        fail(p, "expected a 32-bit integer, got " + std::to_string(v));
        return Read::Bad;
      }
      out = static_cast<std::int32_t>(v);
      return Read::Ok;
    }
    case dom::element_type::UINT64: {
      std::uint64_t v = 0;
      v = e.get_uint64().value_unsafe();
      fail(p, "expected a 32-bit integer, got " + std::to_string(v));
      return Read::Bad;
    }
    case dom::element_type::DOUBLE: {
      double v = 0;
      v = e.get_double().value_unsafe();
      char buf[64];
      auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
      (void)ec;
      fail(p, "expected an integer, got " + std::string(buf, end));
      return Read::Bad;
    }
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    default:
      typeError(p, "integer", e);
      return Read::Bad;
  }
}

Read Reader::intOrString(dom::element e, const Path& p, PortRef& out) {
  switch (e.type()) {
    case dom::element_type::STRING:
      out.number = 0;
      return string(e, p, out.name, kMaxShortString);
    case dom::element_type::NULL_VALUE:
      return Read::Absent;
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
    case dom::element_type::DOUBLE:
      out.name.clear();
      return int32(e, p, out.number);
    default:
      typeError(p, "integer or string", e);
      return Read::Bad;
  }
}

Read Reader::protocol(dom::element e, const Path& p, Protocol& out) {
  static constexpr EnumName<Protocol> kNames[] = {
      {"SCTP", Protocol::SCTP}, {"TCP", Protocol::TCP}, {"UDP", Protocol::UDP}};
  return enumeration(e, p, kNames, out);
}

Read Reader::ip(dom::element e, const Path& p, IpAddr& out) {
  std::string_view s;
  Read r = string(e, p, s, SIZE_MAX);
  if (r != Read::Ok) {
    return r;
  }
  if (auto ip = IpAddr::parse(s)) {
    out = *ip;
    return Read::Ok;
  }
  invalid(p, s, "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)");
  return Read::Bad;
}

void assignString(StringMap& map, std::string_view key, std::string_view value) {
  // The hint makes sorted input O(1); an existing key is overwritten (last one wins).
  const std::size_t before = map.size();
  auto it = map.emplace_hint(map.end(), std::piecewise_construct, std::forward_as_tuple(key),
                             std::forward_as_tuple(value));
  if (map.size() == before) {
    it->second.assign(value);
  }
}

void assignPairs(CompactStringMap& map, StringPairs& pairs) {
  std::stable_sort(pairs.begin(), pairs.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, value] : pairs) {
    map.insert_or_assign(key, value);
  }
}

}  // namespace kdp::k8s::detail
