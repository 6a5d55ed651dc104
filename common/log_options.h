#pragma once
// --log-level and --log-format values (kept apart from spdlog so the command line stays light).

#include <cstdint>

namespace kdp {

enum class LogLevel : std::uint8_t { Trace, Debug, Info, Warn, Error, Off };
enum class LogFormat : std::uint8_t { Text, Json };

}  // namespace kdp
