#include "k8s/lease.h"

#include <simdjson.h>

#include <cstdint>
#include <cstdio>
#include <ctime>

namespace kdp::k8s {

std::string formatMicroTime(WallClock::time_point t) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  const std::time_t seconds = static_cast<std::time_t>(micros / 1'000'000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[96];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(micros % 1'000'000));
  return buffer;
}

std::optional<WallClock::time_point> parseMicroTime(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.ffffff]Z
  std::tm tm{};
  int consumed = 0;
  const std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  long micros = 0;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    long scale = 100000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      micros += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i + 1 != s.size() || s[i] != 'Z') {
    return std::nullopt;
  }
  const std::time_t seconds = timegm(&tm);
  return WallClock::time_point(std::chrono::seconds(seconds)) + std::chrono::microseconds(micros);
}

std::optional<LeaseRecord> decodeLease(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) {
    return std::nullopt;
  }
  std::string_view kind;
  if (root["kind"].get(kind) || kind != "Lease") {
    return std::nullopt;
  }
  LeaseRecord out;
  std::string_view text;
  if (!root["metadata"]["resourceVersion"].get(text)) {
    out.resourceVersion = std::string(text);
  }
  const auto spec = root["spec"];
  if (!spec["holderIdentity"].get(text)) {
    out.holder = std::string(text);
  }
  if (!spec["renewTime"].get(text)) {
    out.renewTime = parseMicroTime(text);
  }
  std::int64_t number = 0;
  if (!spec["leaseDurationSeconds"].get(number)) {
    out.duration = std::chrono::seconds(number);
  }
  if (!spec["leaseTransitions"].get(number)) {
    out.transitions = static_cast<int>(number);
  }
  return out;
}

}  // namespace kdp::k8s
