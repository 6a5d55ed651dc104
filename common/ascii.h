#pragma once
// ASCII case folding for protocol names (DNS names, hosts, SNI, annotation values): locale-free.

#include <string>
#include <string_view>

namespace kdp {

inline char asciiLower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

inline std::string asciiLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    c = asciiLower(c);
  }
  return out;
}

}  // namespace kdp
