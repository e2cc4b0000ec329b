// Boost.Beast transport for Service: accept, read with limits and timeouts, hand the request to the
// engine's pool, write the response back on the connection's strand.
#include "vecstash/api/server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>  // before Boost: Asio 1.74 with C++20 (toolchain notes)
#include <vector>

#include "vecstash/engine/thread_pool.h"

namespace vecstash::api {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

struct HttpServer::Impl {
  Impl(Service& s, engine::ThreadPool& p, const ServerOptions& o)
      : service(s),
        pool(p),
        options(o),
        ioc(o.io_threads),
        work(net::make_work_guard(ioc)),
        acceptor(net::make_strand(ioc)) {}

  Service& service;
  engine::ThreadPool& pool;
  ServerOptions options;
  net::io_context ioc;
  // Keeps the I/O threads running while a request is on the pool and no socket operation is
  // pending (after the acceptor closed at shutdown, its answer still has to be written).
  net::executor_work_guard<net::io_context::executor_type> work;
  tcp::acceptor acceptor;
  std::vector<std::thread> threads;
  std::uint16_t port = 0;
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<bool> stopping{false};
  std::mutex stop_mu;
  std::condition_variable stop_cv;
  bool stop_requested = false;
  bool stopped = false;

  void accept();
  void request_stop() {
    std::lock_guard lock(stop_mu);
    stop_requested = true;
    stop_cv.notify_all();
  }
  void shutdown();
};

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, HttpServer::Impl& server) : stream_(std::move(socket)), server_(server) {
    // Beast reads at most min(free capacity, 64 KiB) per call: with the buffer's small default
    // capacity a request body of megabytes (a batch of vectors) took a read, a timer reset and an
    // epoll update per 4 KiB.
    buffer_.reserve(64 * 1024);
  }

  void start() {
    beast::error_code ec;
    const auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = ep.address().to_string() + ":" + std::to_string(ep.port());
    net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read(); });
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_.options.max_body_bytes);
    parser_->header_limit(64 * 1024);
    stream_.expires_after(
        std::chrono::seconds(requests_ == 0 ? server_.options.read_timeout_s : server_.options.idle_timeout_s));
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::connection_reset ||
        ec == net::error::operation_aborted) {
      return close();
    }
    if (ec == beast::error::timeout) {
      // An idle keep-alive connection timing out is normal; a half-received request is not.
      if (parser_ && parser_->got_some()) server_.service.metrics().add_rejected("timeout");
      return close();
    }
    if (ec == http::error::body_limit) {
      return respond(server_.service.refuse(413, "body_too_large",
                                            "Payload too large: the request body exceeds " +
                                                std::to_string(server_.options.max_body_bytes) + " bytes"),
                     false);
    }
    if (ec) {
      return respond(server_.service.refuse(400, "bad_request", "Bad request: " + ec.message()), false);
    }
    ++requests_;
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    std::vector<std::pair<std::string, std::string>> headers;
    for (const auto& f : msg) headers.emplace_back(std::string(f.name_string()), std::string(f.value()));
    Request req = Request::make(parse_method(std::string(msg.method_string())), std::string(msg.target()),
                                std::move(msg.body()), std::move(headers));
    req.remote = remote_;
    head_ = req.method == Method::kHead;

    if (Service::is_probe(req)) return respond(server_.service.handle(req), keep_alive_);
    if (server_.stopping) {
      return respond(server_.service.refuse(503, "shutting_down", "Service unavailable: the server is shutting down"),
                     false);
    }
    const std::int64_t now = ++server_.in_flight;
    server_.service.metrics().set_in_flight(now);
    if (now > static_cast<std::int64_t>(server_.options.max_concurrent_requests)) {
      --server_.in_flight;
      return respond(server_.service.refuse(429, "overloaded",
                                            "Too many requests: more than " +
                                                std::to_string(server_.options.max_concurrent_requests) +
                                                " in flight; retry later"),
                     keep_alive_);
    }
    // Counted in flight until its answer is written (or the write failed): shutdown waits for that.
    counted_ = true;
    auto self = shared_from_this();
    auto shared_req = std::make_shared<Request>(std::move(req));
    const Status submitted = server_.pool.submit([self, shared_req] {
      Response resp = self->server_.service.handle(*shared_req);
      net::post(self->stream_.get_executor(),
                [self, resp = std::move(resp)]() mutable { self->respond(std::move(resp), self->keep_alive_); });
    });
    if (!submitted.is_ok()) {
      respond(server_.service.refuse(503, "queue_full", "Service unavailable: " + submitted.message()), keep_alive_);
    }
  }

  void done_in_flight() {
    if (!counted_) return;
    counted_ = false;
    server_.service.metrics().set_in_flight(--server_.in_flight);
  }

  void respond(Response r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(static_cast<http::status>(r.status), 11);
    res->set(http::field::server, "vecstash");
    res->set(http::field::content_type, r.content_type);
    for (auto& [k, v] : r.headers) res->set(k, v);
    res->keep_alive(keep_alive && !server_.stopping);
    res->body() = head_ ? std::string() : std::move(r.body);
    res->prepare_payload();
    res_ = res;
    stream_.expires_after(std::chrono::seconds(server_.options.read_timeout_s));
    http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->res_.reset();
      self->done_in_flight();
      if (ec || !res->keep_alive()) return self->close();
      self->read();
    });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  HttpServer::Impl& server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<void> res_;
  std::string remote_;
  std::size_t requests_ = 0;
  bool keep_alive_ = true;
  bool head_ = false;
  bool counted_ = false;
};

}  // namespace

void HttpServer::Impl::accept() {
  acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor.is_open()) return;  // closed by shutdown
      spdlog::warn("accept: {}", ec.message());
    } else {
      std::make_shared<Session>(std::move(socket), *this)->start();
    }
    if (!stopping) accept();
  });
}

void HttpServer::Impl::shutdown() {
  {
    std::lock_guard lock(stop_mu);
    if (stopped) return;
    stopped = true;
  }
  stopping = true;
  service.begin_shutdown();
  net::post(acceptor.get_executor(), [this] {
    beast::error_code ec;
    acceptor.close(ec);
  });
  // Let the requests already running finish and their responses go out.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.shutdown_timeout_s);
  while (in_flight > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (in_flight > 0) {
    spdlog::warn("shutdown: {} requests still running after {} s", in_flight.load(), options.shutdown_timeout_s);
  }
  work.reset();
  ioc.stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::start(Service& service, engine::ThreadPool& pool,
                                                      const ServerOptions& options) {
  if (options.io_threads < 1) return Status::invalid_argument("io_threads must be at least 1");
  auto impl = std::make_unique<Impl>(service, pool, options);
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  if (ec) return Status::invalid_argument("host '" + options.host + "' is not an IP address: " + ec.message());
  const tcp::endpoint ep(address, options.port);
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::unavailable("cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                               ec.message());
  }
  impl->port = impl->acceptor.local_endpoint().port();
  impl->accept();
  for (int i = 0; i < options.io_threads; ++i) {
    impl->threads.emplace_back([io = &impl->ioc] { io->run(); });
  }
  return std::unique_ptr<HttpServer>(new HttpServer(std::move(impl)));
}

std::uint16_t HttpServer::port() const noexcept { return impl_->port; }

void HttpServer::run_until_signal() {
  net::io_context signals_ctx;
  net::signal_set signals(signals_ctx, SIGINT, SIGTERM);
  signals.async_wait([this](const beast::error_code& ec, int sig) {
    if (!ec) spdlog::info("signal {}: shutting down", sig);
    impl_->request_stop();
  });
  std::thread waiter([&signals_ctx] { signals_ctx.run(); });
  {
    std::unique_lock lock(impl_->stop_mu);
    impl_->stop_cv.wait(lock, [this] { return impl_->stop_requested; });
  }
  signals_ctx.stop();
  waiter.join();
  stop();
}

void HttpServer::stop() {
  impl_->request_stop();
  impl_->shutdown();
}

}  // namespace vecstash::api
