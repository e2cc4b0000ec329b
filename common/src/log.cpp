#include "vecstash/common/log.h"

#include <cstdio>
#include <mutex>
#include <set>
#include <string>

namespace vecstash {
namespace {

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}
LogSink& sink() {
  static LogSink s;
  return s;
}

const char* level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

}  // namespace

void set_log_sink(LogSink s) {
  std::lock_guard lock(sink_mutex());
  sink() = std::move(s);
}

void log(LogLevel level, std::string_view message) {
  std::lock_guard lock(sink_mutex());
  if (sink()) {
    sink()(level, message);
    return;
  }
  if (level == LogLevel::kDebug) return;
  std::fprintf(stderr, "[vecstash] [%s] %.*s\n", level_name(level), static_cast<int>(message.size()),
               message.data());
}

void log_once(LogLevel level, std::string_view key, std::string_view message) {
  static std::mutex m;
  static std::set<std::string, std::less<>> seen;
  {
    std::lock_guard lock(m);
    if (!seen.emplace(key).second) return;
  }
  log(level, message);
}

}  // namespace vecstash
