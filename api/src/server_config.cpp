#include "vecstash/api/server_config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include <nlohmann/json.hpp>

namespace vecstash::api {

namespace {

using json = nlohmann::json;

// One setting: its name and how to set it from text (environment) or JSON (file).
struct Key {
  std::string name;
  std::function<Status(std::string_view)> from_text;
  std::function<Status(const json&)> from_json;
  std::function<std::string()> show;
};

template <typename T>
Status parse_integer(std::string_view name, std::string_view text, T lo, T hi, T* out) {
  long long v = 0;
  const auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size() || v < static_cast<long long>(lo) ||
      v > static_cast<long long>(hi)) {
    return Status::invalid_argument(std::string(name) + ": expected an integer in [" + std::to_string(lo) + ", " +
                                    std::to_string(hi) + "], got '" + std::string(text) + "'");
  }
  *out = static_cast<T>(v);
  return Status::ok();
}

template <typename T>
Key integer_key(std::string name, T* target, T lo, T hi) {
  Key k;
  k.name = name;
  k.from_text = [name, target, lo, hi](std::string_view t) { return parse_integer(name, t, lo, hi, target); };
  k.from_json = [name, target, lo, hi](const json& j) {
    if (!j.is_number_integer()) return Status::invalid_argument(name + ": expected an integer");
    return parse_integer(name, j.dump(), lo, hi, target);
  };
  k.show = [target] { return std::to_string(*target); };
  return k;
}

Key bool_key(std::string name, bool* target) {
  Key k;
  k.name = name;
  k.from_text = [name, target](std::string_view t) {
    std::string s(t);
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    if (s == "1" || s == "true" || s == "yes" || s == "on") *target = true;
    else if (s == "0" || s == "false" || s == "no" || s == "off") *target = false;
    else return Status::invalid_argument(name + ": expected true or false, got '" + std::string(t) + "'");
    return Status::ok();
  };
  k.from_json = [name, target](const json& j) {
    if (!j.is_boolean()) return Status::invalid_argument(name + ": expected true or false");
    *target = j.get<bool>();
    return Status::ok();
  };
  k.show = [target] { return std::string(*target ? "true" : "false"); };
  return k;
}

Key string_key(std::string name, std::string* target, bool secret = false) {
  Key k;
  k.name = name;
  k.from_text = [target](std::string_view t) {
    *target = std::string(t);
    return Status::ok();
  };
  k.from_json = [name, target](const json& j) {
    if (!j.is_string()) return Status::invalid_argument(name + ": expected a string");
    *target = j.get<std::string>();
    return Status::ok();
  };
  k.show = [target, secret] { return secret ? (target->empty() ? std::string("(none)") : std::string("(set)")) : *target; };
  return k;
}

std::vector<Key> keys_of(ServerConfig* c) {
  constexpr std::size_t kBig = std::size_t{1} << 40;
  std::vector<Key> k;
  k.push_back(string_key("host", &c->host));
  k.push_back(integer_key<std::uint16_t>("port", &c->port, 0, 65535));
  k.push_back(string_key("data_dir", &c->data_dir));
  k.push_back(integer_key<int>("io_threads", &c->io_threads, 1, 256));
  k.push_back(integer_key<int>("threads", &c->threads, 0, 1024));
  k.push_back(integer_key<std::size_t>("pool_threads", &c->pool_threads, 0, 1024));
  k.push_back(integer_key<std::size_t>("pool_queue", &c->pool_queue, 1, 1000000));
  k.push_back(integer_key<std::size_t>("max_concurrent_requests", &c->max_concurrent_requests, 1, 1000000));
  k.push_back(bool_key("sync_writes", &c->sync_writes));
  k.push_back(bool_key("use_gpu", &c->use_gpu));
  k.push_back(integer_key<std::size_t>("block_cache_mb", &c->block_cache_mb, 0, 1 << 20));
  k.push_back(integer_key<std::size_t>("max_body_mb", &c->max_body_mb, 1, 4096));
  k.push_back(integer_key<int>("read_timeout_s", &c->read_timeout_s, 1, 86400));
  k.push_back(integer_key<int>("idle_timeout_s", &c->idle_timeout_s, 1, 86400));
  k.push_back(integer_key<int>("shutdown_timeout_s", &c->shutdown_timeout_s, 0, 86400));
  k.push_back(integer_key<std::size_t>("max_limit", &c->limits.max_limit, 1, 4096));
  k.push_back(integer_key<std::size_t>("max_points_per_write", &c->limits.max_points_per_write, 1, kBig));
  k.push_back(integer_key<std::size_t>("max_batch_queries", &c->limits.max_batch_queries, 1, kBig));
  k.push_back(integer_key<std::size_t>("max_scroll_limit", &c->limits.max_scroll_limit, 1, kBig));
  k.push_back(integer_key<std::size_t>("max_dim", &c->limits.max_dim, 1, 65536));
  k.push_back(string_key("api_key", &c->api_key, true));
  k.push_back(string_key("read_only_api_key", &c->read_only_api_key, true));
  k.push_back(string_key("log_level", &c->log_level));
  return k;
}

}  // namespace

std::vector<std::string> config_keys() {
  ServerConfig c;
  std::vector<std::string> out;
  for (const Key& k : keys_of(&c)) out.push_back(k.name);
  return out;
}

Status apply_config_file(const std::string& path, ServerConfig* config) {
  std::ifstream in(path);
  if (!in) return Status::not_found("config file '" + path + "' cannot be read");
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return Status::invalid_argument("config file '" + path + "' is not a JSON object");
  }
  auto keys = keys_of(config);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const auto k = std::find_if(keys.begin(), keys.end(), [&](const Key& key) { return key.name == it.key(); });
    if (k == keys.end()) return Status::invalid_argument("config file '" + path + "': unknown key '" + it.key() + "'");
    const Status s = k->from_json(it.value());
    if (!s.is_ok()) return Status::invalid_argument("config file '" + path + "': " + s.message());
  }
  return Status::ok();
}

Status apply_environment(ServerConfig* config, const std::function<const char*(const char*)>& getenv) {
  for (const Key& k : keys_of(config)) {
    std::string var = "VECSTASH_" + k.name;
    std::transform(var.begin(), var.end(), var.begin(), [](unsigned char c) { return std::toupper(c); });
    const char* v = getenv ? getenv(var.c_str()) : std::getenv(var.c_str());
    if (v == nullptr) continue;
    const Status s = k.from_text(v);
    if (!s.is_ok()) return Status::invalid_argument(var + ": " + s.message());
  }
  return Status::ok();
}

Status validate(const ServerConfig& c) {
  if (c.host.empty()) return Status::invalid_argument("host must not be empty");
  if (c.data_dir.empty()) return Status::invalid_argument("data_dir must not be empty");
  static const char* kLevels[] = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(std::begin(kLevels), std::end(kLevels), c.log_level) == std::end(kLevels)) {
    return Status::invalid_argument("log_level must be one of trace, debug, info, warn, error, critical, off");
  }
  if (!c.api_key.empty() && c.api_key == c.read_only_api_key) {
    return Status::invalid_argument("api_key and read_only_api_key must differ");
  }
  return Status::ok();
}

std::vector<std::string> describe(const ServerConfig& config) {
  ServerConfig copy = config;
  std::vector<std::string> out;
  for (const Key& k : keys_of(&copy)) out.push_back(k.name + " = " + k.show());
  return out;
}

}  // namespace vecstash::api
