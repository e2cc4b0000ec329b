#include "points_json.h"

#include <simdjson.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>

#include "request_json.h"

namespace vecstash::api {

namespace {

using nlohmann::json;
namespace dom = simdjson::dom;

Status deserialize_error(simdjson::error_code e) {
  return bad(std::string("Json deserialize error: ") + simdjson::error_message(e));
}

// A simdjson value as nlohmann::json (ids, payloads, the rare vector forms). Integers that fit int64
// and are not negative become unsigned, as nlohmann's own parser makes them.
Result<json> to_json(dom::element e, std::size_t depth) {
  if (depth > kMaxJsonDepth) {
    return bad("Json deserialize error: nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  switch (e.type()) {
    case dom::element_type::ARRAY: {
      json out = json::array();
      for (dom::element x : dom::array(e)) {
        auto v = to_json(x, depth + 1);
        if (!v) return v.status();
        out.push_back(std::move(*v));
      }
      return out;
    }
    case dom::element_type::OBJECT: {
      json out = json::object();
      for (dom::key_value_pair kv : dom::object(e)) {
        auto v = to_json(kv.value, depth + 1);
        if (!v) return v.status();
        out[std::string(kv.key)] = std::move(*v);
      }
      return out;
    }
    case dom::element_type::INT64: {
      const std::int64_t i = std::int64_t(e);
      return i >= 0 ? json(static_cast<std::uint64_t>(i)) : json(i);
    }
    case dom::element_type::UINT64:
      return json(std::uint64_t(e));
    case dom::element_type::DOUBLE:
      return json(double(e));
    case dom::element_type::STRING:
      return json(std::string(std::string_view(e)));
    case dom::element_type::BOOL:
      return json(bool(e));
    case dom::element_type::NULL_VALUE:
      return json(nullptr);
  }
  return json(nullptr);
}

// A field counts as given when present and not null (as request_json.h's field()).
std::optional<dom::element> member(dom::object o, std::string_view key) {
  dom::element v;
  if (o.at_key(key).get(v) != simdjson::SUCCESS || v.is_null()) return std::nullopt;
  return v;
}

Status only_fields(dom::object o, std::string_view what, std::initializer_list<std::string_view> allowed) {
  for (dom::key_value_pair kv : o) {
    if (kv.value.is_null()) continue;
    if (std::find(allowed.begin(), allowed.end(), kv.key) == allowed.end()) {
      return bad("Json deserialize error: unknown field `" + std::string(kv.key) + "` in " + std::string(what));
    }
  }
  return Status::ok();
}

// A dense vector of exactly dim finite float32 values, appended to out (as read_dense).
Status append_dense(dom::element v, std::size_t dim, std::vector<float>* out) {
  if (!v.is_array()) return bad("Wrong input: a vector must be an array of numbers");
  const dom::array a(v);
  if (a.size() != dim) {
    return bad("Wrong input: Vector dimension error: expected dim: " + std::to_string(dim) + ", got " +
               std::to_string(a.size()));
  }
  std::size_t i = 0;
  for (dom::element x : a) {
    double d = 0.0;
    if (x.get_double().get(d) != simdjson::SUCCESS) {
      return bad("Wrong input: vector element " + std::to_string(i) + " is not a number");
    }
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      return bad("Wrong input: vector element " + std::to_string(i) + " is not a finite float32 value");
    }
    out->push_back(static_cast<float>(d));
    ++i;
  }
  return Status::ok();
}

// VectorStruct: a plain array, or {"<name>": array} naming the collection's one vector.
Status append_vector_struct(dom::element v, const engine::CollectionConfig& cfg, std::vector<float>* out) {
  if (v.is_array()) return append_dense(v, cfg.dim, out);
  if (v.is_object()) {
    // The rare forms go through the DOM reader, which words every error.
    auto j = to_json(v, 1);
    if (!j) return j.status();
    auto dense = read_vector_struct(*j, cfg);
    if (!dense) return dense.status();
    out->insert(out->end(), dense->begin(), dense->end());
    return Status::ok();
  }
  return bad("Wrong input: a vector must be an array of numbers or {\"name\": [numbers]}");
}

Result<engine::PointId> read_id(dom::element e, const std::string& where) {
  auto j = to_json(e, 1);
  if (!j) return j.status();
  auto id = engine::PointId::from_json(*j);
  if (!id) return bad("Wrong input: " + where + id.status().message());
  return *id;
}

}  // namespace

Result<UpsertBody> parse_upsert_body(std::string_view body, const engine::CollectionConfig& cfg, std::size_t max) {
  dom::parser parser;
  dom::element root;
  if (const auto e = parser.parse(body.data(), body.size()).get(root); e != simdjson::SUCCESS) {
    return deserialize_error(e);
  }
  if (!root.is_object()) return bad("Json deserialize error: the request body must be a JSON object");
  const dom::object b(root);
  VECSTASH_RETURN_IF_ERROR(only_fields(b, "upsert", {"points", "batch", "shard_key", "update_filter"}));
  if (member(b, "update_filter")) return bad("Wrong input: `update_filter` is not supported");
  const auto points = member(b, "points");
  const auto batch = member(b, "batch");
  if (points.has_value() == batch.has_value()) return bad("Json deserialize error: expected `points` or `batch`");
  UpsertBody out;
  if (points) {
    if (!points->is_array()) return bad("Json deserialize error: `points` must be a list");
    const dom::array list(*points);
    if (list.size() > max) {
      return bad("Wrong input: at most " + std::to_string(max) + " points per request, got " +
                 std::to_string(list.size()));
    }
    out.vectors.reserve(list.size() * cfg.dim);
    std::size_t i = 0;
    for (dom::element pe : list) {
      const std::string where = "points[" + std::to_string(i++) + "]";
      if (!pe.is_object()) return bad(where + " must be a JSON object");
      const dom::object p(pe);
      VECSTASH_RETURN_IF_ERROR(only_fields(p, where, {"id", "vector", "payload"}));
      const auto id = member(p, "id");
      if (!id) return bad("Json deserialize error: " + where + ": missing field `id`");
      auto pid = read_id(*id, where + ": ");
      if (!pid) return pid.status();
      const auto v = member(p, "vector");
      if (!v) return bad("Json deserialize error: " + where + ": missing field `vector`");
      const Status s = append_vector_struct(*v, cfg, &out.vectors);
      if (!s.is_ok()) return bad(s.message() + " (" + where + ")");
      std::optional<json> payload;
      if (const auto pl = member(p, "payload")) {
        if (!pl->is_object()) return bad("Wrong input: " + where + ": payload must be a JSON object");
        auto j = to_json(*pl, 2);
        if (!j) return j.status();
        payload = std::move(*j);
      }
      out.ids.push_back(*pid);
      out.payloads.push_back(std::move(payload));
    }
    return out;
  }
  if (!batch->is_object()) return bad("batch must be a JSON object");
  const dom::object bo(*batch);
  VECSTASH_RETURN_IF_ERROR(only_fields(bo, "batch", {"ids", "vectors", "payloads"}));
  const auto bid = member(bo, "ids");
  const auto bv = member(bo, "vectors");
  if (!bid || !bv) return bad("Json deserialize error: batch needs `ids` and `vectors`");
  if (!bid->is_array()) return bad("Json deserialize error: `batch.ids` must be a list of point ids");
  const dom::array ids(*bid);
  if (ids.size() > max) {
    return bad("Wrong input: at most " + std::to_string(max) + " ids per request, got " + std::to_string(ids.size()));
  }
  for (dom::element e : ids) {
    auto pid = read_id(e, "");
    if (!pid) return pid.status();
    out.ids.push_back(*pid);
  }
  dom::element rows = *bv;
  if (bv->is_object()) {
    const std::string mine = cfg.vector_name.value_or("");
    const dom::object named(*bv);
    const auto mine_rows = member(named, mine);
    if (named.size() != 1 || !mine_rows) return bad("Wrong input: Not existing vector name error in batch.vectors");
    rows = *mine_rows;
  }
  if (!rows.is_array() || dom::array(rows).size() != out.ids.size()) {
    return bad("Wrong input: batch.vectors must hold one vector per id (" + std::to_string(out.ids.size()) + ")");
  }
  out.vectors.reserve(out.ids.size() * cfg.dim);
  std::size_t i = 0;
  for (dom::element row : dom::array(rows)) {
    const Status s = append_dense(row, cfg.dim, &out.vectors);
    if (!s.is_ok()) return bad(s.message() + " (batch.vectors[" + std::to_string(i) + "])");
    ++i;
  }
  out.payloads.assign(out.ids.size(), std::nullopt);
  if (const auto bp = member(bo, "payloads")) {
    if (!bp->is_array() || dom::array(*bp).size() != out.ids.size()) {
      return bad("Wrong input: batch.payloads must hold one payload per id (" + std::to_string(out.ids.size()) + ")");
    }
    i = 0;
    for (dom::element pl : dom::array(*bp)) {
      if (!pl.is_null()) {
        if (!pl.is_object()) return bad("Wrong input: batch.payloads[" + std::to_string(i) + "] must be a JSON object");
        auto j = to_json(pl, 2);
        if (!j) return j.status();
        out.payloads[i] = std::move(*j);
      }
      ++i;
    }
  }
  return out;
}

}  // namespace vecstash::api
