#include "common/logging.h"

#include <spdlog/sinks/ostream_sink.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <sstream>
#include <string>

using kdp::LogFormat;
using kdp::LogLevel;

namespace {

// 2024-05-01T10:00:00.123Z
const auto kTime = spdlog::log_clock::time_point(std::chrono::milliseconds(1714557600123));

std::string formatted(LogFormat format, spdlog::level::level_enum level, std::string_view name,
                      std::string_view text) {
  const spdlog::details::log_msg msg(kTime, spdlog::source_loc{}, name, level, text);
  spdlog::memory_buf_t buf;
  kdp::makeFormatter(format)->format(msg, buf);
  return fmt::to_string(buf);
}

/// Points the loggers at a string stream for one test, and back at stderr afterwards.
class CapturedLogs {
 public:
  CapturedLogs(LogLevel level, LogFormat format) {
    kdp::setupLogging(level, format, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_));
  }
  ~CapturedLogs() { kdp::setupLogging(LogLevel::Info, LogFormat::Text); }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

TEST_CASE("logging: json is one object per line with ts, level, logger, msg", "[logging]") {
  CHECK(formatted(LogFormat::Json, spdlog::level::info, "app", "loaded services=3 files=2") ==
        R"({"ts":"2024-05-01T10:00:00.123Z","level":"info","logger":"app","msg":"loaded services=3 files=2"})"
        "\n");
  CHECK(formatted(LogFormat::Json, spdlog::level::warn, "dns", "x") ==
        R"({"ts":"2024-05-01T10:00:00.123Z","level":"warn","logger":"dns","msg":"x"})"
        "\n");
  CHECK(formatted(LogFormat::Json, spdlog::level::err, "nft", "x").find(R"("level":"error")") !=
        std::string::npos);
}

TEST_CASE("logging: json escapes quotes, control characters and invalid UTF-8", "[logging]") {
  const std::string msg = std::string("name=\"a\\b\"\nnext\ttab \x01 caf\xC3\xA9 bad\xFF end\x7F");
  CHECK(formatted(LogFormat::Json, spdlog::level::info, "k8s", msg) ==
        R"({"ts":"2024-05-01T10:00:00.123Z","level":"info","logger":"k8s","msg":"name=\"a\\b\"\nnext\ttab \u0001 café bad\ufffd end\u007f"})"
        "\n");
  // A truncated multi-byte sequence and an overlong encoding are not UTF-8 either.
  CHECK(formatted(LogFormat::Json, spdlog::level::info, "k8s", "\xE2\x82") ==
        R"({"ts":"2024-05-01T10:00:00.123Z","level":"info","logger":"k8s","msg":"\ufffd\ufffd"})"
        "\n");
  CHECK(formatted(LogFormat::Json, spdlog::level::info, "k8s", "\xC0\xAF").find(
            R"("msg":"\ufffd\ufffd")") != std::string::npos);
}

TEST_CASE("logging: text format", "[logging]") {
  CHECK(formatted(LogFormat::Text, spdlog::level::info, "proxy", "synced rules=12") ==
        "2024-05-01T10:00:00.123Z info  proxy: synced rules=12\n");
  CHECK(formatted(LogFormat::Text, spdlog::level::err, "tls", "bad key") ==
        "2024-05-01T10:00:00.123Z error tls: bad key\n");
}

TEST_CASE("logging: setup creates the named loggers with the level and format", "[logging]") {
  CapturedLogs logs(LogLevel::Warn, LogFormat::Json);
  for (auto name : kdp::kLoggerNames) {
    CHECK(spdlog::get(std::string(name)) != nullptr);
  }
  auto dns = kdp::logger("dns");
  CHECK(dns == kdp::logger("dns"));
  SPDLOG_LOGGER_INFO(dns, "hidden by level");
  SPDLOG_LOGGER_WARN(dns, "upstream timeout server={}", "10.0.0.1:53");
  auto custom = kdp::logger("custom");  // made on first use, same sink and level
  SPDLOG_LOGGER_ERROR(custom, "x");
  const auto text = logs.text();
  CHECK(text.find("hidden") == std::string::npos);
  CHECK(text.find(R"("level":"warn","logger":"dns","msg":"upstream timeout server=10.0.0.1:53"})") !=
        std::string::npos);
  CHECK(text.find(R"("logger":"custom","msg":"x"})") != std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 2);
}

TEST_CASE("logging: SPDLOG_LOGGER_DEBUG and _TRACE are compiled in, the runtime level decides",
          "[logging]") {
  // spdlog drops these macros at compile time below SPDLOG_ACTIVE_LEVEL (INFO unless defined):
  // then --log-level debug would print none of them.
  {
    CapturedLogs logs(LogLevel::Trace, LogFormat::Text);
    SPDLOG_LOGGER_DEBUG(kdp::logger("k8s"), "debug line n={}", 1);
    SPDLOG_LOGGER_TRACE(kdp::logger("k8s"), "trace line n={}", 2);
    CHECK(logs.text().find("debug k8s: debug line n=1") != std::string::npos);
    CHECK(logs.text().find("trace k8s: trace line n=2") != std::string::npos);
  }
  CapturedLogs logs(LogLevel::Info, LogFormat::Text);
  SPDLOG_LOGGER_DEBUG(kdp::logger("k8s"), "debug line n={}", 1);
  CHECK(logs.text().empty());
}

TEST_CASE("logging: rate limiter admits N per second per site", "[logging]") {
  kdp::RateLimiter rl(3);
  const auto t0 = std::chrono::steady_clock::time_point(std::chrono::seconds(1000));
  int admitted = 0;
  for (int i = 0; i < 10; ++i) {
    admitted += rl.allow(t0 + std::chrono::milliseconds(i * 10)) ? 1 : 0;
  }
  CHECK(admitted == 3);
  CHECK(rl.takeSuppressed() == 7);
  CHECK(rl.takeSuppressed() == 0);
  // The next second opens a new window.
  CHECK(rl.allow(t0 + std::chrono::milliseconds(1500)));
}

TEST_CASE("logging: KDP_LOG_RATE_LIMITED drops the excess and says how many", "[logging]") {
  CapturedLogs logs(LogLevel::Info, LogFormat::Text);
  auto log = kdp::logger("proxy");
  for (int i = 0; i < 100; ++i) {
    KDP_LOG_RATE_LIMITED(log, spdlog::level::warn, 5, "send failed i={}", i);
  }
  const auto text = logs.text();
  // All 100 calls happen within a second or two: 5 lines per window at most.
  const auto lines = std::count(text.begin(), text.end(), '\n');
  CHECK(lines >= 5);
  CHECK(lines <= 12);
  CHECK(text.find("send failed i=0") != std::string::npos);
  CHECK(text.find("send failed i=99") == std::string::npos);
}
