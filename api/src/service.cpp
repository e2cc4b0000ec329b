// Routing, authentication, the envelope and metrics around the handlers (handlers.cpp).
#include <spdlog/spdlog.h>

#include <chrono>
#include <exception>

#include "service_impl.h"

#ifndef VECSTASH_VERSION
#define VECSTASH_VERSION "0.0.0"
#endif

namespace vecstash::api {

int http_status(StatusCode code) noexcept {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
  // Every byte of the longer string is visited; the length difference is folded into the result.
  const std::size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::string error_body(std::string_view message, double seconds) {
  json j = {{"status", {{"error", std::string(message)}}}, {"time", seconds}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> out;
  std::size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    const std::size_t j = path.find('/', i);
    out.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    i = j == std::string::npos ? path.size() : j;
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

Response json_response(int status, const json& j) {
  Response r;
  r.status = status;
  r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
  return r;
}

Response error_response(int status, std::string_view message, double seconds) {
  Response r;
  r.status = status;
  r.body = error_body(message, seconds);
  return r;
}

Response text_response(int status, std::string body, std::string content_type = "text/plain; charset=utf-8") {
  Response r;
  r.status = status;
  r.content_type = std::move(content_type);
  r.body = std::move(body);
  return r;
}

}  // namespace

Service::Impl::Impl(engine::Engine& e, const ServiceOptions& o, Metrics& m) : engine(e), options(o), metrics(m) {
  auto add = [this](Method method, const std::string& pattern, Access access, Handler h, bool raw_body = false) {
    routes.push_back(
        Route{method, split_path(pattern), std::string(to_string(method)) + " " + pattern, access, h, raw_body});
  };
  using M = Method;
  using A = Access;
  add(M::kGet, "/collections", A::kRead, &Impl::list_collections);
  add(M::kPut, "/collections/{collection_name}", A::kWrite, &Impl::create_collection);
  add(M::kDelete, "/collections/{collection_name}", A::kWrite, &Impl::delete_collection);
  add(M::kGet, "/collections/{collection_name}", A::kRead, &Impl::collection_info);
  add(M::kGet, "/collections/{collection_name}/exists", A::kRead, &Impl::collection_exists);
  add(M::kPut, "/collections/{collection_name}/index", A::kWrite, &Impl::create_payload_index);
  add(M::kDelete, "/collections/{collection_name}/index/{field_name}", A::kWrite, &Impl::delete_payload_index);
  // Upserts parse their (large) bodies themselves, without a DOM for the vectors (points_json.h).
  add(M::kPut, "/collections/{collection_name}/points", A::kWrite, &Impl::upsert_points, /*raw_body=*/true);
  add(M::kPost, "/collections/{collection_name}/points", A::kRead, &Impl::retrieve_points);
  add(M::kGet, "/collections/{collection_name}/points/{id}", A::kRead, &Impl::get_point);
  add(M::kPost, "/collections/{collection_name}/points/delete", A::kWrite, &Impl::delete_points);
  add(M::kPost, "/collections/{collection_name}/points/payload", A::kWrite, &Impl::set_payload);
  add(M::kPut, "/collections/{collection_name}/points/payload", A::kWrite, &Impl::overwrite_payload);
  add(M::kPost, "/collections/{collection_name}/points/query", A::kRead, &Impl::query_points);
  add(M::kPost, "/collections/{collection_name}/points/query/batch", A::kRead, &Impl::query_batch);
  add(M::kPost, "/collections/{collection_name}/points/search", A::kRead, &Impl::search_points);
  add(M::kPost, "/collections/{collection_name}/points/search/batch", A::kRead, &Impl::search_batch);
  add(M::kPost, "/collections/{collection_name}/points/scroll", A::kRead, &Impl::scroll_points);
  add(M::kPost, "/collections/{collection_name}/points/count", A::kRead, &Impl::count_points);
  add(M::kGet, "/collections/{collection_name}/compression", A::kRead, &Impl::compression_report);
  add(M::kPost, "/collections/{collection_name}/recalibration", A::kWrite, &Impl::start_recalibration);
  add(M::kGet, "/collections/{collection_name}/recalibration", A::kRead, &Impl::recalibration_progress);
  add(M::kPost, "/collections/{collection_name}/calibration", A::kWrite, &Impl::calibrate);
  add(M::kPost, "/collections/{collection_name}/compaction", A::kWrite, &Impl::compact);
  add(M::kPut, "/collections/{collection_name}/anchors", A::kWrite, &Impl::set_anchors);
  add(M::kPost, "/collections/{collection_name}/anchors", A::kWrite, &Impl::set_anchors);
  add(M::kGet, "/collections/{collection_name}/anchors", A::kRead, &Impl::get_anchors);
  add(M::kDelete, "/collections/{collection_name}/anchors", A::kWrite, &Impl::delete_anchors);
  add(M::kGet, "/collections/{collection_name}/models", A::kRead, &Impl::list_models);
  add(M::kPut, "/collections/{collection_name}/models/{model_name}", A::kWrite, &Impl::register_model);
  add(M::kGet, "/collections/{collection_name}/models/{model_name}", A::kRead, &Impl::get_model);
  add(M::kDelete, "/collections/{collection_name}/models/{model_name}", A::kWrite, &Impl::delete_model);
}

Service::Service(engine::Engine& engine, ServiceOptions options)
    : options_(std::move(options)), impl_(std::make_unique<Impl>(engine, options_, metrics_)) {}

Service::~Service() = default;

bool Service::is_probe(const Request& r) noexcept {
  return (r.method == Method::kGet || r.method == Method::kHead) &&
         (r.path == "/healthz" || r.path == "/livez" || r.path == "/readyz");
}

Response Service::refuse(int status, std::string_view reason, const std::string& message) {
  metrics_.add_rejected(reason);
  Response r = error_response(status, message, 0.0);
  if (status == 429 || status == 503) r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response Service::handle(const Request& req) {
  const auto t0 = std::chrono::steady_clock::now();
  std::string route_name = "unmatched";
  Response resp;
  try {
    resp = [&]() -> Response {
      if (is_probe(req)) {
        route_name = std::string(to_string(req.method)) + " " + req.path;
        if (req.path == "/readyz" && shutting_down_) return text_response(503, "shutting down");
        return text_response(200, req.path == "/readyz" ? "all shards are ready" : "healthz check passed");
      }
      // Authentication (everything but the probes when a key is configured).
      Access granted = Access::kWrite;
      if (!options_.api_key.empty() || !options_.read_only_api_key.empty()) {
        std::string key;
        if (const std::string* h = req.header("api-key")) {
          key = *h;
        } else if (const std::string* a = req.header("authorization")) {
          constexpr std::string_view kBearer = "Bearer ";
          if (a->size() > kBearer.size() && std::string_view(*a).substr(0, kBearer.size()) == kBearer) {
            key = a->substr(kBearer.size());
          }
        }
        if (key.empty()) {
          route_name = "unauthenticated";
          return error_response(401, "Must provide an API key or an Authorization bearer token", 0.0);
        }
        // Both comparisons always run, so the time does not say which key (if any) matched.
        const bool full = !options_.api_key.empty() && constant_time_equal(key, options_.api_key);
        const bool read = !options_.read_only_api_key.empty() && constant_time_equal(key, options_.read_only_api_key);
        if (full)
          granted = Access::kWrite;
        else if (read)
          granted = Access::kRead;
        else {
          route_name = "unauthenticated";
          return error_response(401, "Invalid API key", 0.0);
        }
      }

      if (req.path == "/" && (req.method == Method::kGet || req.method == Method::kHead)) {
        route_name = "GET /";
        json j = {{"title", "vecstash: a vector store for compressed embeddings (Qdrant-compatible REST API)"},
                  {"version", std::string(kQdrantCompatVersion)},
                  {"commit", "vecstash-" VECSTASH_VERSION},
                  {"vecstash_version", VECSTASH_VERSION}};
        return json_response(200, j);
      }
      if (req.path == "/metrics" && req.method == Method::kGet) {
        route_name = "GET /metrics";
        std::vector<CollectionGauge> gauges;
        for (const std::string& name : impl_->engine.list_collections()) {
          auto c = impl_->engine.collection(name);
          if (!c) continue;
          const engine::CollectionInfo info = c.value()->info();
          gauges.push_back({name, info.points, info.memory.total(), info.code_bytes});
        }
        return text_response(200, metrics_.render(gauges), "text/plain; version=0.0.4; charset=utf-8");
      }

      // Route table: among the routes whose segments match, those with the most literal segments
      // win (so /points/query is never read as /points/{id}); the one with the request's method
      // runs, and a path that only matches with other methods is 405.
      const std::vector<std::string> segs = split_path(req.path);
      const Impl::Route* route = nullptr;
      std::vector<std::string> params;
      std::string allowed;
      int best_literals = -1;
      for (const Impl::Route& r : impl_->routes) {
        if (r.segments.size() != segs.size()) continue;
        std::vector<std::string> p;
        int literals = 0;
        bool ok = true;
        for (std::size_t i = 0; i < segs.size() && ok; ++i) {
          if (r.segments[i].front() == '{') {
            p.push_back(segs[i]);
          } else {
            ok = r.segments[i] == segs[i];
            ++literals;
          }
        }
        if (!ok || literals < best_literals) continue;
        if (literals > best_literals) {
          best_literals = literals;
          route = nullptr;
          allowed.clear();
        }
        if (r.method == req.method) {
          route = &r;
          params = std::move(p);
        } else {
          if (!allowed.empty()) allowed += ", ";
          allowed += to_string(r.method);
        }
      }
      if (route == nullptr) {
        if (!allowed.empty()) {
          route_name = "method_not_allowed";
          Response r = error_response(405,
                                      "Method " + std::string(to_string(req.method)) + " is not allowed on " +
                                          req.path + " (allowed: " + allowed + ")",
                                      seconds_since(t0));
          r.headers.emplace_back("Allow", allowed);
          return r;
        }
        return error_response(404, "Not found: no endpoint " + std::string(to_string(req.method)) + " " + req.path,
                              seconds_since(t0));
      }
      route_name = route->name;
      if (route->access == Access::kWrite && granted != Access::kWrite) {
        return error_response(403, "Forbidden: the read-only API key cannot " + route->name, seconds_since(t0));
      }

      Call call{req, std::move(params), json::object()};
      const bool blank = req.body.find_first_not_of(" \t\r\n") == std::string::npos;
      if (!blank && !route->raw_body) {
        call.body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
        if (call.body.is_discarded()) {
          // Parse again with exceptions on to report where the JSON is broken.
          try {
            const json again = json::parse(req.body);
            (void)again;
          } catch (const json::parse_error& e) {
            return error_response(400, std::string("Json deserialize error: ") + e.what(), seconds_since(t0));
          }
          return error_response(400, "Json deserialize error: malformed JSON", seconds_since(t0));
        }
        if (!call.body.is_object()) {
          return error_response(400, "Json deserialize error: the request body must be a JSON object",
                                seconds_since(t0));
        }
      }
      Result<json> result = (impl_.get()->*(route->handler))(call);
      if (!result) {
        const Status& s = result.status();
        return error_response(http_status(s.code()), s.message(), seconds_since(t0));
      }
      json env = {{"result", std::move(result).value()}, {"status", "ok"}, {"time", seconds_since(t0)}};
      return json_response(200, env);
    }();
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", to_string(req.method), req.path, e.what());
    resp = error_response(500, std::string("Internal error: ") + e.what(), seconds_since(t0));
  }
  metrics_.observe_request(route_name, resp.status, seconds_since(t0));
  return resp;
}

}  // namespace vecstash::api
