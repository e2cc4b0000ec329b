// A small synchronous HTTP/1.1 client (Boost.Beast) for the command line and the tests: one
// keep-alive connection to a vecstash (or Qdrant) server, reconnecting once when the server closed it.
//
// Thread safety: one HttpClient per thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "vecstash/api/http.h"
#include "vecstash/common/status.h"

namespace vecstash::api {

struct ClientOptions {
  std::string api_key;  ///< sent as the api-key header when not empty
  int timeout_s = 300;  ///< per request
};

class HttpClient {
 public:
  /// url: "http://host:port" (https is not supported). Connects lazily, on the first request.
  static Result<std::unique_ptr<HttpClient>> create(const std::string& url, const ClientOptions& options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Send one request; a transport failure is Unavailable. Any HTTP status is returned as a Response.
  Result<Response> request(Method method, const std::string& target, const std::string& body = {});
  const std::string& host() const noexcept;
  std::uint16_t port() const noexcept;

  struct Impl;

 private:
  explicit HttpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecstash::api
