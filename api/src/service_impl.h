// Internal to the api library: the service's state and its handlers (service.cpp routes and wraps,
// handlers.cpp implements the endpoints).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "vecstash/api/service.h"
#include "vecstash/engine/collection.h"
#include "vecstash/engine/engine.h"

namespace vecstash::api {

using json = nlohmann::json;

enum class Access : std::uint8_t { kOpen, kRead, kWrite };

/// One call: the request, the path parameters of its route, and the parsed body (an empty body is {}).
struct Call {
  const Request& req;
  std::vector<std::string> params;
  json body;
};

struct Service::Impl {
  using Handler = Result<json> (Impl::*)(Call&);
  struct Route {
    Method method;
    std::vector<std::string> segments;  // "{x}" matches any one segment
    std::string name;                   // "POST /collections/{name}/points/query" (metrics label)
    Access access;
    Handler handler;
    bool raw_body = false;  // the handler reads req.body itself (call.body stays {})
  };

  Impl(engine::Engine& e, const ServiceOptions& o, Metrics& m);

  engine::Engine& engine;
  const ServiceOptions& options;
  Metrics& metrics;
  std::vector<Route> routes;
  std::atomic<std::uint64_t> operation_id{0};

  Result<std::shared_ptr<engine::Collection>> collection(const std::string& name) const;
  engine::WriteOptions write_options() const;
  json update_result(const Call& call);

  // Collections.
  Result<json> list_collections(Call& c);
  Result<json> create_collection(Call& c);
  Result<json> delete_collection(Call& c);
  Result<json> collection_info(Call& c);
  Result<json> collection_exists(Call& c);
  Result<json> create_payload_index(Call& c);
  Result<json> delete_payload_index(Call& c);
  // Points.
  Result<json> upsert_points(Call& c);
  Result<json> retrieve_points(Call& c);
  Result<json> get_point(Call& c);
  Result<json> delete_points(Call& c);
  Result<json> set_payload(Call& c);
  Result<json> overwrite_payload(Call& c);
  Result<json> query_points(Call& c);
  Result<json> query_batch(Call& c);
  Result<json> search_points(Call& c);
  Result<json> search_batch(Call& c);
  Result<json> scroll_points(Call& c);
  Result<json> count_points(Call& c);
  // vecstash's own.
  Result<json> compression_report(Call& c);
  Result<json> start_recalibration(Call& c);
  Result<json> recalibration_progress(Call& c);
  Result<json> calibrate(Call& c);
  Result<json> compact(Call& c);
  // Anchors, relative vectors and cross-model queries (anchor_handlers.cpp).
  Result<json> set_anchors(Call& c);
  Result<json> get_anchors(Call& c);
  Result<json> delete_anchors(Call& c);
  Result<json> register_model(Call& c);
  Result<json> list_models(Call& c);
  Result<json> get_model(Call& c);
  Result<json> delete_model(Call& c);
};

/// The compact anchor summary of collection info (config.vecstash.anchors): {"version", "count",
/// "strategy", "relative" (the relative vector's name, null when not kept), "models" [names]}, or null.
json anchors_summary(const engine::Collection& c);

}  // namespace vecstash::api
