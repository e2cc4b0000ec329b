// Transport-neutral HTTP request and response: what the route table and the handlers see. The Beast
// server (server.h) converts to and from these; tests build them directly.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vecstash::api {

enum class Method { kGet, kHead, kPost, kPut, kDelete, kPatch, kOptions, kOther };

std::string_view to_string(Method m) noexcept;
Method parse_method(std::string_view m) noexcept;

struct Request {
  Method method = Method::kGet;
  std::string path;                              ///< percent-decoded, without the query string
  std::map<std::string, std::string> query;      ///< decoded query parameters (the last one wins)
  std::map<std::string, std::string> headers;    ///< names in lower case
  std::string body;
  std::string remote;                            ///< peer address, for logs

  /// A request for `target` ("/path?query"); headers are given with any case.
  static Request make(Method method, std::string_view target, std::string body = {},
                      std::vector<std::pair<std::string, std::string>> headers = {});
  const std::string* header(std::string_view lower_name) const;
  const std::string* param(std::string_view name) const;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (Retry-After, ...)
};

/// Percent-decoding of a path or query component ('+' becomes a space in queries only). Returns
/// false for a malformed escape.
bool percent_decode(std::string_view in, bool query, std::string* out);

}  // namespace vecstash::api
