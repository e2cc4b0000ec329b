// A minimal logging hook so that std-only layers (common, kernels) can report events such as
// "no GPU, falling back to the CPU" without depending on a logging library. Tools and the server
// install a sink that forwards to spdlog; the default sink writes to stderr.
// Thread safety: log() and set_log_sink() may be called from any thread.
#pragma once

#include <functional>
#include <string_view>

namespace vecstash {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

using LogSink = std::function<void(LogLevel, std::string_view)>;

/// Replace the process-wide sink (nullptr restores the stderr sink).
void set_log_sink(LogSink sink);
void log(LogLevel level, std::string_view message);
/// Log `message` only the first time this `key` is seen in the process.
void log_once(LogLevel level, std::string_view key, std::string_view message);

}  // namespace vecstash
