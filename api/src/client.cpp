// Synchronous Beast client: one connection, reconnected once when the server has closed it.
#include <utility>  // before Boost: Asio 1.74 with C++20 (toolchain notes)

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <chrono>
#include <optional>

#include "vecstash/api/client.h"

namespace vecstash::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port = 0;
  ClientOptions options;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;

  Status connect() {
    stream.emplace(ioc);
    beast::error_code ec;
    tcp::resolver resolver(ioc);
    const auto results = resolver.resolve(host, std::to_string(port), ec);
    if (ec) return Status::unavailable("cannot resolve " + host + ": " + ec.message());
    stream->expires_after(std::chrono::seconds(options.timeout_s));
    stream->connect(results, ec);
    if (ec) {
      stream.reset();
      return Status::unavailable("cannot connect to http://" + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    return Status::ok();
  }

  Result<Response> once(Method method, const std::string& target, const std::string& body) {
    if (!stream) VECSTASH_RETURN_IF_ERROR(connect());
    http::request<http::string_body> req(http::string_to_verb(std::string(to_string(method))), target, 11);
    req.set(http::field::host, host + ":" + std::to_string(port));
    req.set(http::field::user_agent, "vecstash-cli");
    req.keep_alive(true);
    if (!options.api_key.empty()) req.set("api-key", options.api_key);
    if (!body.empty()) req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    beast::error_code ec;
    stream->expires_after(std::chrono::seconds(options.timeout_s));
    http::write(*stream, req, ec);
    // A server that refuses the request early (413 for a body over its limit) answers and closes
    // while the body is still being sent: try to read that answer before reporting the send error.
    const beast::error_code write_ec = ec;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::uint64_t{1} << 32);
    http::read(*stream, buffer, parser, ec);
    if (ec && write_ec) return Status::unavailable("sending " + target + ": " + write_ec.message());
    if (ec) return Status::unavailable("reading the response to " + target + ": " + ec.message());
    auto res = parser.release();
    Response out;
    out.status = static_cast<int>(res.result_int());
    out.content_type = std::string(res[http::field::content_type]);
    out.body = std::move(res.body());
    for (const auto& f : res) out.headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    if (write_ec || !res.keep_alive()) stream.reset();  // a half-sent request leaves it unusable
    return out;
  }
};

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(const std::string& url, const ClientOptions& options) {
  constexpr std::string_view kScheme = "http://";
  if (url.rfind("https://", 0) == 0) return Status::invalid_argument("https is not supported: use http://HOST:PORT");
  std::string_view rest(url);
  if (rest.rfind(kScheme, 0) == 0) rest.remove_prefix(kScheme.size());
  while (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return Status::invalid_argument("url '" + url + "' must be http://HOST:PORT");
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const std::size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos) {
    impl->host = std::string(rest);
    impl->port = 6333;
  } else {
    impl->host = std::string(rest.substr(0, colon));
    const std::string_view p = rest.substr(colon + 1);
    unsigned v = 0;
    const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (ec != std::errc() || ptr != p.data() + p.size() || v == 0 || v > 65535) {
      return Status::invalid_argument("url '" + url + "': bad port");
    }
    impl->port = static_cast<std::uint16_t>(v);
  }
  if (impl->host.empty()) return Status::invalid_argument("url '" + url + "': no host");
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

Result<Response> HttpClient::request(Method method, const std::string& target, const std::string& body) {
  const bool reused = impl_->stream.has_value();
  auto r = impl_->once(method, target, body);
  if (!r && reused) {
    // The server may have closed an idle keep-alive connection: one fresh attempt.
    impl_->stream.reset();
    r = impl_->once(method, target, body);
  }
  if (!r) impl_->stream.reset();
  return r;
}

const std::string& HttpClient::host() const noexcept { return impl_->host; }
std::uint16_t HttpClient::port() const noexcept { return impl_->port; }

}  // namespace vecstash::api
