#include "common/logging.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <ctime>
#include <mutex>
#include <string>

namespace kdp {

namespace {

std::string_view levelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    case spdlog::level::off: return "off";
    default: return "unknown";
  }
}

// 2024-05-01T10:00:00.123Z
void appendTime(spdlog::memory_buf_t& dest, spdlog::log_clock::time_point tp) {
  const auto since = tp.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since);
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  fmt::format_to(std::back_inserter(dest), "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ms);
}

void append(spdlog::memory_buf_t& dest, std::string_view s) {
  dest.append(s.data(), s.data() + s.size());
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one (overlong forms,
// surrogates and code points past U+10FFFF are invalid).
std::size_t utf8Length(std::string_view s, std::size_t i) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  std::size_t n = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
  } else {
    return 0;
  }
  if (s.size() - i < n) {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) {
      return 0;
    }
  }
  if ((c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F) || (c == 0xF0 && b(1) < 0x90) ||
      (c == 0xF4 && b(1) > 0x8F)) {
    return 0;
  }
  return n;
}

class KdpFormatter final : public spdlog::formatter {
 public:
  explicit KdpFormatter(LogFormat format) : format_(format) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    const std::string_view text(msg.payload.data(), msg.payload.size());
    const std::string_view name(msg.logger_name.data(), msg.logger_name.size());
    if (format_ == LogFormat::Json) {
      append(dest, "{\"ts\":\"");
      appendTime(dest, msg.time);
      append(dest, "\",\"level\":\"");
      append(dest, levelName(msg.level));
      append(dest, "\",\"logger\":\"");
      appendJsonEscaped(dest, name);
      append(dest, "\",\"msg\":\"");
      appendJsonEscaped(dest, text);
      append(dest, "\"}\n");
      return;
    }
    appendTime(dest, msg.time);
    dest.push_back(' ');
    const auto level = levelName(msg.level);
    append(dest, level);
    for (std::size_t i = level.size(); i < 5; ++i) {
      dest.push_back(' ');
    }
    dest.push_back(' ');
    append(dest, name);
    append(dest, ": ");
    append(dest, text);
    dest.push_back('\n');
  }

  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<KdpFormatter>(format_);
  }

 private:
  LogFormat format_;
};

struct State {
  std::mutex mu;
  spdlog::sink_ptr sink;
  spdlog::level::level_enum level = spdlog::level::info;
};

State& state() {
  static State s;
  return s;
}

// s.mu held.
spdlog::sink_ptr sinkLocked(State& s) {
  if (!s.sink) {
    s.sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    s.sink->set_formatter(makeFormatter(LogFormat::Text));
  }
  return s.sink;
}

// s.mu held.
std::shared_ptr<spdlog::logger> loggerLocked(State& s, std::string_view name) {
  const std::string n(name);
  if (auto existing = spdlog::get(n)) {
    return existing;
  }
  auto created = std::make_shared<spdlog::logger>(n, sinkLocked(s));
  created->set_level(s.level);
  spdlog::register_logger(created);
  return created;
}

}  // namespace

void appendJsonEscaped(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const std::size_t n = utf8Length(s, i); n != 0) {
        append(dest, s.substr(i, n));
        i += n;
      } else {
        append(dest, "\\ufffd");
        ++i;
      }
      continue;
    }
    switch (c) {
      case '"': append(dest, "\\\""); break;
      case '\\': append(dest, "\\\\"); break;
      case '\n': append(dest, "\\n"); break;
      case '\r': append(dest, "\\r"); break;
      case '\t': append(dest, "\\t"); break;
      default:
        if (c < 0x20 || c == 0x7F) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
          dest.append(esc, esc + sizeof esc);
        } else {
          dest.push_back(static_cast<char>(c));
        }
    }
    ++i;
  }
}

spdlog::level::level_enum toSpdlogLevel(LogLevel level) {
  switch (level) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    case LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::unique_ptr<spdlog::formatter> makeFormatter(LogFormat format) {
  return std::make_unique<KdpFormatter>(format);
}

void setupLogging(LogLevel level, LogFormat format, spdlog::sink_ptr sink) {
  State& s = state();
  std::lock_guard lock(s.mu);
  s.sink = sink ? std::move(sink) : std::make_shared<spdlog::sinks::stderr_sink_mt>();
  s.sink->set_formatter(makeFormatter(format));
  s.level = toSpdlogLevel(level);
  for (auto name : kLoggerNames) {
    loggerLocked(s, name);
  }
  // Loggers made earlier (by a component, or by a previous setup) move to the new sink and level;
  // their holders keep valid pointers.
  spdlog::apply_all([&](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks() = {s.sink};
    l->set_level(s.level);
  });
  spdlog::set_default_logger(loggerLocked(s, "app"));
}

std::shared_ptr<spdlog::logger> logger(std::string_view name) {
  State& s = state();
  std::lock_guard lock(s.mu);
  return loggerLocked(s, name);
}

bool RateLimiter::allow(std::chrono::steady_clock::time_point now) noexcept {
  const auto second =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  auto window = window_.load(std::memory_order_relaxed);
  if (second != window && window_.compare_exchange_strong(window, second,
                                                          std::memory_order_relaxed)) {
    count_.store(0, std::memory_order_relaxed);
  }
  if (count_.fetch_add(1, std::memory_order_relaxed) < limit_) {
    return true;
  }
  suppressed_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace kdp
