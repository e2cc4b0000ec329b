// The HTTP/1.1 server (Boost.Beast): keep-alive connections on a few I/O threads; every request but
// the probes runs on the engine's thread pool, never on an I/O thread. Bounded everywhere: request
// body size (413), time to receive a request, idle keep-alive time, requests in flight (429) and the
// pool's queue (503).
//
// Shutdown (stop(), or SIGINT/SIGTERM with run_until_signal()): stop accepting, let in-flight
// requests finish (up to shutdown_timeout), then close the connections and the I/O threads. The
// caller then destroys the engine, which flushes and closes the database.
//
// Thread safety: stop() and port() may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "vecstash/api/service.h"
#include "vecstash/common/status.h"

namespace vecstash::engine {
class ThreadPool;
}

namespace vecstash::api {

struct ServerOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6333;            ///< 0 = any free port (see port())
  int io_threads = 2;
  std::size_t max_body_bytes = 32u << 20;
  int read_timeout_s = 30;
  int idle_timeout_s = 60;
  std::size_t max_concurrent_requests = 512;
  int shutdown_timeout_s = 30;
};

class HttpServer {
 public:
  /// Bind, listen and start the I/O threads. `service` and `pool` must outlive the server.
  static Result<std::unique_ptr<HttpServer>> start(Service& service, engine::ThreadPool& pool,
                                                   const ServerOptions& options);
  ~HttpServer();  ///< stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// The port listened on (the chosen one when options.port was 0).
  std::uint16_t port() const noexcept;
  /// Block until SIGINT or SIGTERM arrives (or stop() is called), then shut down gracefully.
  void run_until_signal();
  /// Graceful shutdown (idempotent); returns once the I/O threads have stopped.
  void stop();

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecstash::api
