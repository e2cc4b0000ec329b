// The REST service: the route table, authentication, limits, the JSON envelope and the handlers of
// the Qdrant-compatible endpoints and vecstash's own ones. It is transport-free: Service::handle()
// turns a Request into a Response, so the HTTP server (server.h) only moves bytes and tests call it
// directly.
//
// Envelope: success is {"result": ..., "status": "ok", "time": seconds}; an error is
// {"status": {"error": "message"}, "time": seconds} with the status from http_status(). The one
// exception is GET / (version information, no envelope), and the probes and /metrics (plain text).
//
// Thread safety: handle() may be called from many threads at once (the engine serialises writes).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/api/http.h"
#include "vecstash/api/metrics.h"
#include "vecstash/common/status.h"

namespace vecstash::engine {
class Engine;
}

namespace vecstash::api {

/// Limits on what one request may ask for. Defaults in brackets.
struct ApiLimits {
  std::size_t max_limit = 4096;           ///< [4096] limit + offset of a search (the engine's largest k)
  std::size_t max_points_per_write = 10000;  ///< [10000] points in one upsert / ids in one delete
  std::size_t max_batch_queries = 1000;   ///< [1000] searches in one batch request
  std::size_t max_scroll_limit = 10000;   ///< [10000] points per scroll page
  std::size_t max_dim = 65536;            ///< [65536] vector dimension of a new collection
};

struct ServiceOptions {
  /// Full-access key ("" = no authentication). Sent as `api-key: K` or `Authorization: Bearer K`.
  std::string api_key;
  /// Read-only key: may search, scroll, count, retrieve and read info, but not write. "" = none.
  std::string read_only_api_key;
  ApiLimits limits;
  /// Acknowledge writes only once the write-ahead log is synced (the engine's default when unset).
  bool sync_writes = true;
};

/// The single Status -> HTTP status mapping: InvalidArgument 400, NotFound 404, AlreadyExists and
/// FailedPrecondition 409, ResourceExhausted 429, Unavailable 503, Corruption and Internal 500.
int http_status(StatusCode code) noexcept;

/// Compare two secrets in time that depends only on their lengths, not their contents.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

/// The Qdrant version reported by GET / (clients check it for compatibility).
inline constexpr std::string_view kQdrantCompatVersion = "1.19.0";

class Service {
 public:
  Service(engine::Engine& engine, ServiceOptions options);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  /// Route, authenticate, run and wrap one request; records metrics. Never throws.
  Response handle(const Request& request);
  /// True for the probes (/healthz, /livez, /readyz): cheap, unauthenticated, answered on the I/O
  /// thread so that health checks work while the pool is saturated.
  static bool is_probe(const Request& request) noexcept;
  /// The error envelope for a request refused before it ran (body too large, overload, timeout).
  Response refuse(int status, std::string_view reason, const std::string& message);
  /// Mark the service as shutting down: /readyz answers 503. Requests already accepted still run (the
  /// transport stops accepting new ones).
  void begin_shutdown() noexcept { shutting_down_ = true; }

  Metrics& metrics() noexcept { return metrics_; }
  const ServiceOptions& options() const noexcept { return options_; }

  struct Impl;

 private:
  ServiceOptions options_;
  Metrics metrics_;
  std::atomic<bool> shutting_down_{false};
  std::unique_ptr<Impl> impl_;
};

/// The JSON error envelope body for `message`.
std::string error_body(std::string_view message, double seconds);

}  // namespace vecstash::api
