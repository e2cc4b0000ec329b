// The Beast transport: keep-alive, body limit (413), requests in flight (429), a full pool queue
// (503), graceful shutdown finishing in-flight requests, and the client.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "testing/temp_dir.h"
#include "vecstash/api/client.h"
#include "vecstash/api/server.h"
#include "vecstash/api/service.h"
#include "vecstash/engine/engine.h"

namespace vecstash::api {
namespace {

using json = nlohmann::json;

class ServerTest : public ::testing::Test {
 protected:
  void start(ServerOptions so, std::size_t pool_threads = 2, std::size_t pool_queue = 16) {
    engine::EngineOptions eo;
    eo.threads = 1;
    eo.pool_threads = pool_threads;
    eo.pool_queue = pool_queue;
    eo.use_gpu = false;
    eo.sync_writes = false;
    auto e = engine::Engine::open(dir_.path() / "db", eo);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    service_ = std::make_unique<Service>(*engine_, ServiceOptions{});
    so.host = "127.0.0.1";
    so.port = 0;
    auto s = HttpServer::start(*service_, engine_->pool(), so);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    server_ = std::move(s).value();
    ASSERT_GT(server_->port(), 0);
  }
  void TearDown() override {
    if (server_) server_->stop();
    engine_.reset();
    server_.reset();
    service_.reset();
  }
  std::unique_ptr<HttpClient> client() {
    auto c = HttpClient::create("http://127.0.0.1:" + std::to_string(server_->port()), ClientOptions{"", 30});
    EXPECT_TRUE(c.is_ok());
    return std::move(c).value();
  }
  /// Occupy every pool worker until the returned promise is set.
  std::shared_ptr<std::promise<void>> block_pool(std::size_t workers) {
    auto release = std::make_shared<std::promise<void>>();
    std::shared_future<void> gate = release->get_future().share();
    for (std::size_t i = 0; i < workers; ++i) {
      auto started = std::make_shared<std::promise<void>>();
      EXPECT_TRUE(engine_->pool().submit([gate, started] {
        started->set_value();
        gate.wait();
      }).is_ok());
      started->get_future().wait();
    }
    return release;
  }

  testing::TempDir dir_{"vecstash-server"};
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, KeepAliveRoundTrips) {
  start({});
  auto c = client();
  auto r = c->request(Method::kPut, "/collections/a", R"({"vectors":{"size":3,"distance":"Dot"}})");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 200) << r->body;
  for (int i = 0; i < 20; ++i) {
    r = c->request(Method::kPut, "/collections/a/points",
                   json{{"points", {{{"id", i}, {"vector", {i, 1, 0}}}}}}.dump());
    ASSERT_TRUE(r.is_ok());
    ASSERT_EQ(r->status, 200) << r->body;
  }
  r = c->request(Method::kPost, "/collections/a/points/query", R"({"query":[1,0,0],"limit":3})");
  ASSERT_TRUE(r.is_ok());
  const json j = json::parse(r->body);
  ASSERT_EQ(j["result"]["points"].size(), 3u);
  EXPECT_EQ(j["result"]["points"][0]["id"], 19);
  r = c->request(Method::kGet, "/healthz");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->body, "healthz check passed");
  r = c->request(Method::kHead, "/collections");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 405);  // HEAD is only served on / and the probes
}

TEST_F(ServerTest, BodyLimitIs413) {
  ServerOptions so;
  so.max_body_bytes = 1000;
  start(so);
  auto c = client();
  auto r = c->request(Method::kPut, "/collections/a", std::string(2000, ' ') + "{}");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 413);
  // A body far larger than the socket buffers: the server answers before reading it all.
  r = c->request(Method::kPut, "/collections/a", std::string(8 << 20, ' ') + "{}");
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->status, 413);
  EXPECT_NE(r->body.find("exceeds 1000 bytes"), std::string::npos) << r->body;
  // The server closed that connection; the client reconnects for the next request.
  r = c->request(Method::kGet, "/collections");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 200);
}

TEST_F(ServerTest, TooManyInFlightIs429AndAFullQueueIs503) {
  ServerOptions so;
  so.max_concurrent_requests = 1;
  start(so, /*pool_threads=*/1, /*pool_queue=*/1);
  auto release = block_pool(1);
  // One request waits in the pool's queue (in flight); the next one is refused with 429.
  auto waiting = std::async(std::launch::async, [this] { return client()->request(Method::kGet, "/collections"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto c = client();
  auto r = c->request(Method::kGet, "/collections");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 429) << r->body;
  bool retry_after = false;
  for (const auto& [k, v] : r->headers) retry_after |= k == "Retry-After" && v == "1";
  EXPECT_TRUE(retry_after);
  // Probes still answer (on the I/O thread).
  r = c->request(Method::kGet, "/livez");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 200);
  release->set_value();
  auto first = waiting.get();
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->status, 200);
}

TEST_F(ServerTest, FullPoolQueueIs503) {
  start({}, /*pool_threads=*/1, /*pool_queue=*/1);
  auto release = block_pool(1);
  // Fill the one queue slot directly, then a request cannot be queued.
  std::shared_future<void> gate;
  ASSERT_TRUE(engine_->pool().submit([] {}).is_ok());
  auto r = client()->request(Method::kGet, "/collections");
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->status, 503) << r->body;
  release->set_value();
}

TEST_F(ServerTest, ShutdownFinishesInFlightRequests) {
  start({}, /*pool_threads=*/1, /*pool_queue=*/8);
  auto c0 = client();
  ASSERT_EQ(c0->request(Method::kPut, "/collections/a", R"({"vectors":{"size":2,"distance":"Dot"}})")->status, 200);
  c0.reset();  // no idle connection either: nothing but the queued request keeps the I/O threads busy
  auto release = block_pool(1);
  auto in_flight = std::async(std::launch::async, [this] {
    return client()->request(Method::kPut, "/collections/a/points", R"({"points":[{"id":7,"vector":[1,2]}]})");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto stopper = std::async(std::launch::async, [this] { server_->stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  release->set_value();
  stopper.get();
  auto r = in_flight.get();
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  // The write that was in flight when the shutdown began completed and was acknowledged.
  EXPECT_EQ(r->status, 200) << r->body;
  // No new connections after the stop.
  auto late = client()->request(Method::kGet, "/collections");
  EXPECT_FALSE(late.is_ok());
  const std::size_t points = engine_->collection("a").value()->count();
  EXPECT_EQ(points, 1u);
}

TEST(HttpClientUrl, Validation) {
  EXPECT_TRUE(HttpClient::create("http://localhost:6333").is_ok());
  EXPECT_TRUE(HttpClient::create("127.0.0.1:1234/").is_ok());
  EXPECT_FALSE(HttpClient::create("https://x:1").is_ok());
  EXPECT_FALSE(HttpClient::create("http://x:0").is_ok());
  EXPECT_FALSE(HttpClient::create("http://x:99999").is_ok());
  EXPECT_FALSE(HttpClient::create("http://x:1/path").is_ok());
  EXPECT_FALSE(HttpClient::create("http://:1").is_ok());
  auto c = HttpClient::create("http://127.0.0.1:1");
  ASSERT_TRUE(c.is_ok());
  auto r = c.value()->request(Method::kGet, "/");
  EXPECT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace vecstash::api
