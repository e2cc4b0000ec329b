// Settings of `vecstash serve`: defaults, then a JSON config file, then environment variables
// (VECSTASH_<KEY in upper case>), then command-line flags. Every key is documented in docs/API.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "vecstash/api/service.h"
#include "vecstash/common/status.h"

namespace vecstash::api {

struct ServerConfig {
  std::string host = "127.0.0.1";           ///< bind address [127.0.0.1]: only this machine
  std::uint16_t port = 6333;                ///< [6333], Qdrant's REST port; 0 = any free port
  std::string data_dir = "vecstash-data";   ///< RocksDB directory [./vecstash-data]
  int io_threads = 2;                       ///< [2] threads reading and writing sockets
  /// [1] kernel threads per search or encode call (0 = all cores). Requests already run in parallel
  /// on the pool, so one thread each serves many clients best; raise it for few, large queries.
  int threads = 1;
  std::size_t pool_threads = 0;             ///< [0 = cores] workers running requests
  std::size_t pool_queue = 256;             ///< [256] requests waiting for a worker; more get 503
  std::size_t max_concurrent_requests = 512;  ///< [512] requests in flight; more get 429
  bool sync_writes = true;                  ///< [true] fsync before acknowledging a write
  bool use_gpu = true;                      ///< [true] exact scans on a GPU when one is usable
  std::size_t block_cache_mb = 64;          ///< [64] RocksDB block cache
  std::size_t max_body_mb = 32;             ///< [32] request body limit (413 beyond)
  int read_timeout_s = 30;                  ///< [30] to receive one whole request
  int idle_timeout_s = 60;                  ///< [60] keep-alive connection idle time
  int shutdown_timeout_s = 30;              ///< [30] wait for in-flight requests on SIGTERM
  ApiLimits limits;
  std::string api_key;                      ///< [""] full access key; "" = no authentication
  std::string read_only_api_key;            ///< [""] key that may only read
  std::string log_level = "info";           ///< [info] trace, debug, info, warn, error
};

/// Apply a JSON config file (an object of the keys above, with the limits flattened: max_limit,
/// max_points_per_write, max_batch_queries, max_scroll_limit, max_dim). Unknown keys are errors.
Status apply_config_file(const std::string& path, ServerConfig* config);
/// Apply VECSTASH_* environment variables, read through `getenv` (std::getenv by default).
Status apply_environment(ServerConfig* config,
                         const std::function<const char*(const char*)>& getenv = nullptr);
/// Check ranges (port, threads, sizes) and combinations.
Status validate(const ServerConfig& config);
/// key = value lines of the effective settings, keys masked.
std::vector<std::string> describe(const ServerConfig& config);
/// Every key accepted in the file (and, upper-cased with VECSTASH_, in the environment).
std::vector<std::string> config_keys();

}  // namespace vecstash::api
