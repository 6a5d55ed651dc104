#include "k8s/detail/json_split.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace kdp::k8s::detail {

namespace {

constexpr std::size_t kNpos = std::string_view::npos;

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::size_t skipSpace(std::string_view s, std::size_t i) {
  while (i < s.size() && isSpace(s[i])) {
    ++i;
  }
  return i;
}

// `i` is just after an opening quote. Returns the offset after the closing quote, or kNpos.
std::size_t skipString(std::string_view s, std::size_t i) {
  while (i < s.size()) {
    const void* found = std::memchr(s.data() + i, '"', s.size() - i);
    if (found == nullptr) {
      return kNpos;
    }
    const auto q = static_cast<std::size_t>(static_cast<const char*>(found) - s.data());
    // Escaped when preceded by an odd run of backslashes (the run starts at or after i, since
    // s[i - 1] is a quote).
    std::size_t b = q;
    while (b > i && s[b - 1] == '\\') {
      --b;
    }
    if (((q - b) & 1) == 0) {
      return q + 1;
    }
    i = q + 1;
  }
  return kNpos;
}

// s[i] is '{' or '['. Returns the offset after the bracket that closes it, or kNpos. Brackets are
// only counted, not matched by type: the item parser refuses "{]".
std::size_t skipContainer(std::string_view s, std::size_t i) {
  const char* p = s.data();
  const std::size_t n = s.size();
  long depth = 0;
  bool inString = false;
#if defined(__SSE2__)
  // 16 bytes at a time: only quotes, backslashes (in strings) and brackets (outside) matter.
  const __m128i quote = _mm_set1_epi8('"');
  const __m128i backslash = _mm_set1_epi8('\\');
  const __m128i openBrace = _mm_set1_epi8('{');
  const __m128i closeBrace = _mm_set1_epi8('}');
  const __m128i openBracket = _mm_set1_epi8('[');
  const __m128i closeBracket = _mm_set1_epi8(']');
  while (i + 16 <= n) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const auto quotes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote)));
    const auto slashes = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, backslash)));
    const auto brackets = static_cast<unsigned>(_mm_movemask_epi8(
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, openBrace), _mm_cmpeq_epi8(v, closeBrace)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, openBracket),
                                  _mm_cmpeq_epi8(v, closeBracket)))));
    unsigned todo = inString ? (quotes | slashes) : (quotes | brackets);
    std::size_t next = i + 16;
    while (todo != 0) {
      const auto bit = static_cast<unsigned>(__builtin_ctz(todo));
      const unsigned above = ~((2u << bit) - 1u);
      const char c = p[i + bit];
      if (inString) {
        if (c == '\\') {
          next = i + bit + 2;  // skip the escaped byte; go on from there
          break;
        }
        inString = false;
        todo = (quotes | brackets) & above;
      } else if (c == '"') {
        inString = true;
        todo = (quotes | slashes) & above;
      } else {
        if (c == '{' || c == '[') {
          ++depth;
        } else if (--depth == 0) {
          return i + bit + 1;
        }
        todo &= todo - 1;
      }
    }
    i = next;
  }
#endif
  while (i < n) {
    const char c = p[i];
    if (inString) {
      if (c == '\\') {
        i += 2;
        continue;
      }
      inString = c != '"';
    } else if (c == '"') {
      inString = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        return i + 1;
      }
    }
    ++i;
  }
  return kNpos;
}

// One JSON value starting at s[i]: returns the offset after it, or kNpos.
std::size_t skipValue(std::string_view s, std::size_t i) {
  if (i >= s.size()) {
    return kNpos;
  }
  switch (s[i]) {
    case '{':
    case '[':
      return skipContainer(s, i);
    case '"':
      return skipString(s, i + 1);
    default: {
      // A number, true, false or null: up to the next delimiter.
      std::size_t j = i;
      while (j < s.size() && !isSpace(s[j]) && std::strchr(",:}]{[\"", s[j]) == nullptr) {
        ++j;
      }
      return j == i ? kNpos : j;
    }
  }
}

}  // namespace

std::optional<ListSplit> splitListItems(std::string_view s) {
  std::size_t i = skipSpace(s, 0);
  if (i >= s.size() || s[i] != '{') {
    return std::nullopt;
  }
  i = skipSpace(s, i + 1);
  std::optional<ListSplit> found;
  while (true) {
    if (i >= s.size() || s[i] != '"') {
      return std::nullopt;  // also "{}": nothing to split
    }
    const std::size_t keyEnd = skipString(s, i + 1);
    if (keyEnd == kNpos) {
      return std::nullopt;
    }
    const std::string_view key = s.substr(i + 1, keyEnd - i - 2);
    i = skipSpace(s, keyEnd);
    if (i >= s.size() || s[i] != ':') {
      return std::nullopt;
    }
    i = skipSpace(s, i + 1);
    if (key == "items") {
      if (found || i >= s.size() || s[i] != '[') {
        return std::nullopt;  // several "items", or not an array
      }
      found.emplace();
      found->arrayOpen = i;
      i = skipSpace(s, i + 1);
      if (i < s.size() && s[i] == ']') {
        found->arrayClose = i++;
      } else {
        while (true) {
          const std::size_t end = skipValue(s, i);
          if (end == kNpos) {
            return std::nullopt;
          }
          found->items.emplace_back(i, end);
          i = skipSpace(s, end);
          if (i < s.size() && s[i] == ',') {
            i = skipSpace(s, i + 1);
            continue;
          }
          if (i < s.size() && s[i] == ']') {
            found->arrayClose = i++;
            break;
          }
          return std::nullopt;
        }
      }
    } else {
      i = skipValue(s, i);
      if (i == kNpos) {
        return std::nullopt;
      }
    }
    i = skipSpace(s, i);
    if (i < s.size() && s[i] == ',') {
      i = skipSpace(s, i + 1);
      continue;
    }
    if (i < s.size() && s[i] == '}') {
      i = skipSpace(s, i + 1);
      break;
    }
    return std::nullopt;
  }
  if (i != s.size()) {
    return std::nullopt;
  }
  return found;
}

}  // namespace kdp::k8s::detail
