#pragma once
// Logging setup: one spdlog logger per component (proxy, nft, dns, ingress, tls, k8s, app), all
// writing to one stderr sink, as text or as one JSON object per line. Messages are a fixed text
// plus k=v fields (STYLE.md 13):
//
//   SPDLOG_LOGGER_WARN(kdp::logger("dns"), "upstream timeout server={} id={}", addr, id);
//
// Hot paths log through KDP_LOG_RATE_LIMITED (at most N lines per second per call site).

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "common/log_options.h"

namespace kdp {

/// The names of the loggers setupLogging() creates.
inline constexpr std::string_view kLoggerNames[] = {"proxy", "nft", "dns",  "ingress",
                                                    "tls",   "k8s", "app"};

spdlog::level::level_enum toSpdlogLevel(LogLevel level);

/// The formatter of `format`: text is `2024-05-01T10:00:00.123Z info  app: msg k=v`; json is
/// `{"ts":"2024-05-01T10:00:00.123Z","level":"info","logger":"app","msg":"msg k=v"}`, one per
/// line, times in UTC.
std::unique_ptr<spdlog::formatter> makeFormatter(LogFormat format);

/// Appends `s` as the body of a JSON string: quotes, backslashes and control characters escaped;
/// bytes that are not UTF-8 become U+FFFD, so that a line stays valid JSON whatever it carries.
void appendJsonEscaped(spdlog::memory_buf_t& dest, std::string_view s);

/// Creates (or re-creates) the named loggers on `sink` (stderr when null), with `level` and
/// `format`, and makes "app" the default logger. Call on the main thread before any other thread
/// logs (tests may call it again with their own sink).
void setupLogging(LogLevel level, LogFormat format, spdlog::sink_ptr sink = nullptr);

/// The logger `name`: one of kLoggerNames, or another name, created on first use on the same
/// sink and level. Any thread. Never null.
std::shared_ptr<spdlog::logger> logger(std::string_view name);

/// Admits at most `perSecond` events per one-second window and counts the rest. Lock-free; any
/// thread. One per call site (KDP_LOG_RATE_LIMITED makes a static one).
class RateLimiter {
 public:
  explicit RateLimiter(std::uint32_t perSecond) : limit_(perSecond) {}

  /// True when the event may be logged now.
  bool allow() noexcept { return allow(std::chrono::steady_clock::now()); }
  /// The same against a given clock reading (tests).
  bool allow(std::chrono::steady_clock::time_point now) noexcept;
  /// Events refused since the last call, and resets the count.
  std::uint64_t takeSuppressed() noexcept {
    return suppressed_.exchange(0, std::memory_order_relaxed);
  }

 private:
  const std::uint32_t limit_;
  std::atomic<std::int64_t> window_{-1};  // whole seconds of the steady clock
  std::atomic<std::uint32_t> count_{0};
  std::atomic<std::uint64_t> suppressed_{0};
};

}  // namespace kdp

/// Logs like SPDLOG_LOGGER_CALL at most `perSecond` times per second from this call site; when
/// lines were dropped, the next admitted one is preceded by a line saying how many.
#define KDP_LOG_RATE_LIMITED(log, lvl, perSecond, ...)                                          \
  do {                                                                                          \
    static ::kdp::RateLimiter kdpRateLimiter_(perSecond);                                  \
    if ((log)->should_log(lvl) && kdpRateLimiter_.allow()) {                                    \
      if (const auto kdpDropped_ = kdpRateLimiter_.takeSuppressed(); kdpDropped_ != 0) {        \
        SPDLOG_LOGGER_CALL(log, lvl, "rate-limited log lines dropped count={}", kdpDropped_);   \
      }                                                                                         \
      SPDLOG_LOGGER_CALL(log, lvl, __VA_ARGS__);                                                \
    }                                                                                           \
  } while (0)
