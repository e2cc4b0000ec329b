// vecstash's anchor endpoints: the anchor set of a collection (PUT/POST, GET, DELETE
// /collections/{c}/anchors) and the models registered by their embeddings of the anchors
// (/collections/{c}/models[/{name}]). Queries reach the relative vectors and the models through
// `using` (handlers.cpp). Semantics: engine/include/vecstash/engine/anchors.h.
#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "request_json.h"
#include "service_impl.h"
#include "vecstash/common/types.h"
#include "vecstash/engine/anchors.h"

namespace vecstash::api {

using engine::AnchorInfo;
using engine::Collection;
using engine::CollectionConfig;
using engine::ModelInfo;
using engine::PointId;

namespace {

constexpr std::size_t kDefaultAnchorCount = 256;
constexpr std::uint64_t kDefaultAnchorSeed = 42;

Status no_anchors(const std::string& collection) {
  return Status::not_found("Not found: collection '" + collection + "' has no anchor set");
}

json ids_json(const std::vector<PointId>& ids) {
  json out = json::array();
  for (const PointId& id : ids) out.push_back(id.to_json());
  return out;
}

// A float parameter as the double with the float's shortest decimal form (0.2f -> 0.2, not 0.2000000029).
double short_float(float f) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, f).ptr;
  return std::strtod(std::string(buf, end).c_str(), nullptr);
}

json model_json(const ModelInfo& m) {
  json out{{"name", m.name},
           {"dim", m.dim},
           {"method", std::string(engine::cross_method_name(m.default_method))},
           {"lambda", m.lambda},
           {"anchors_version", m.anchors_version},
           {"procrustes_fit_cosine", m.procrustes_fit_cosine},
           {"affine_fit_cosine", m.affine_fit_cosine},
           {"affine_orthogonality_gap", m.affine_orthogonality_gap},
           {"local",
            {{"neighbours", m.local_neighbours},
             {"temperature", short_float(m.local_temperature)},
             {"weight", short_float(m.local_weight)},
             {"fit_cosine", m.local_fit_cosine}}},
           {"hubness", {{"weight", short_float(m.hubness_weight)}, {"neighbours", m.hubness_neighbours}}}};
  if (!m.warnings.empty()) out["warnings"] = m.warnings;  // only when there is something to say
  return out;
}

// "local": {"neighbours": k, "temperature": t, "weight": w}, each optional (unset: chosen by the
// server by leave-one-out on the anchors); the ranges are checked by the engine.
Status read_local_options(const json& b, engine::ModelRequest* req) {
  const json* l = field(b, "local");
  if (!l) return Status::ok();
  if (!l->is_object()) return bad("Json deserialize error: `local` must be an object");
  VECSTASH_RETURN_IF_ERROR(check_fields(*l, "local", {"neighbours", "temperature", "weight"}));
  if (field(*l, "neighbours")) {
    auto k = read_count(*l, "neighbours", 0);
    if (!k) return k.status();
    if (k.value() > engine::kMaxAnchors) return bad("Wrong input: `local.neighbours` is larger than any anchor set");
    req->local_neighbours = static_cast<std::uint32_t>(k.value());
  }
  auto t = read_number(*l, "temperature");
  if (!t) return t.status();
  if (t.value()) req->local_temperature = static_cast<float>(*t.value());
  auto w = read_number(*l, "weight");
  if (!w) return w.status();
  if (w.value()) req->local_weight = static_cast<float>(*w.value());
  return Status::ok();
}

// "hubness": {"weight": w, "neighbours": k}, each optional (unset: 0.5 and 10; weight 0 on Euclidean
// collections); the ranges are checked by the engine.
Status read_hubness_options(const json& b, engine::ModelRequest* req) {
  const json* h = field(b, "hubness");
  if (!h) return Status::ok();
  if (!h->is_object()) return bad("Json deserialize error: `hubness` must be an object");
  VECSTASH_RETURN_IF_ERROR(check_fields(*h, "hubness", {"weight", "neighbours"}));
  if (field(*h, "neighbours")) {
    auto k = read_count(*h, "neighbours", 0);
    if (!k) return k.status();
    if (k.value() > engine::kMaxHubnessNeighbours) {
      return bad("Wrong input: `hubness.neighbours` must be at most " +
                 std::to_string(engine::kMaxHubnessNeighbours));
    }
    req->hubness_neighbours = static_cast<std::uint32_t>(k.value());
  }
  auto w = read_number(*h, "weight");
  if (!w) return w.status();
  if (w.value()) req->hubness_weight = static_cast<float>(*w.value());
  return Status::ok();
}

json anchors_json(const AnchorInfo& a) {
  json models = json::array();
  for (const ModelInfo& m : a.models) models.push_back(model_json(m));
  return json{{"version", a.version},
              {"strategy", std::string(engine::anchor_strategy_name(a.strategy))},
              {"count", a.count},
              {"seed", a.seed},
              {"ids", ids_json(a.ids)},
              {"center", a.center},
              {"relative",
               {{"store", a.store_relative},
                {"kind", std::string(to_string(a.relative_kind))},
                {"name", a.relative_name},
                {"rows", a.relative_rows},
                {"bytes", a.relative_bytes}}},
              {"models", models}};
}

/// `"anchors": [{"id": .., "vector": [..]}, ...]` of the vectors strategy (at most kMaxAnchors).
Status read_anchor_items(const json& items, const CollectionConfig& cfg, engine::AnchorRequest* req) {
  if (!items.is_array()) return bad("Json deserialize error: `anchors` must be a list of {\"id\", \"vector\"}");
  if (items.size() > engine::kMaxAnchors) {
    return bad("Wrong input: at most " + std::to_string(engine::kMaxAnchors) + " anchors, got " +
               std::to_string(items.size()));
  }
  req->vectors.reserve(items.size() * cfg.dim);
  for (std::size_t i = 0; i < items.size(); ++i) {
    const json& item = items[i];
    const std::string where = "anchors[" + std::to_string(i) + "]";
    VECSTASH_RETURN_IF_ERROR(check_fields(item, where, {"id", "vector"}));
    const json* id = field(item, "id");
    if (!id) return bad("Json deserialize error: " + where + ": missing field `id`");
    auto pid = PointId::from_json(*id);
    if (!pid) return bad("Wrong input: " + where + ": " + pid.status().message());
    const json* v = field(item, "vector");
    if (!v) return bad("Json deserialize error: " + where + ": missing field `vector`");
    auto vec = read_vector_struct(*v, cfg);
    if (!vec) return bad(vec.status().message() + " (" + where + ")");
    req->ids.push_back(pid.value());
    req->vectors.insert(req->vectors.end(), vec->begin(), vec->end());
  }
  return Status::ok();
}

/// The `relative` object of an anchor request: {"store": bool, "kind": code kind, "name": string}.
Status read_relative_options(const json& r, engine::AnchorRequest* req) {
  VECSTASH_RETURN_IF_ERROR(check_fields(r, "relative", {"store", "kind", "name"}));
  auto store = read_bool(r, "store", true);
  if (!store) return store.status();
  req->store_relative = store.value();
  if (const json* kind = field(r, "kind")) {
    if (!kind->is_string()) return bad("Json deserialize error: `relative.kind` must be a string");
    const auto parsed = parse_code_kind(kind->get_ref<const std::string&>());
    if (!parsed) {
      return bad("Wrong input: relative.kind: unknown code kind " + kind->dump() +
                 " (f32, f16, bf16, e4m3, e5m2 or i8)");
    }
    req->relative_kind = *parsed;
  }
  if (const json* name = field(r, "name")) {
    if (!name->is_string()) return bad("Json deserialize error: `relative.name` must be a string");
    req->relative_name = name->get<std::string>();
  }
  return Status::ok();
}

/// The model's embeddings of the anchors, anchors x dim in the anchor set's order, from
/// `"vectors": [[..], ..]` (already in that order) or `"anchors": [{"id", "vector"}, ..]` (keyed by
/// anchor id, each anchor exactly once). Every row has the first row's dimension.
Status read_model_vectors(const json& body, const AnchorInfo& anchors, std::size_t max_dim, engine::ModelRequest* req) {
  const json* vectors = field(body, "vectors");
  const json* items = field(body, "anchors");
  if ((vectors != nullptr) == (items != nullptr)) {
    return bad(
        "Json deserialize error: give the model's embeddings of the anchors either as `vectors` (a list, in "
        "the anchor set's order) or as `anchors` ([{\"id\": .., \"vector\": [..]}, ..])");
  }
  const std::size_t m = anchors.count;
  const json& list = vectors ? *vectors : *items;
  const char* what = vectors ? "vectors" : "anchors";
  if (!list.is_array()) return bad(std::string("Json deserialize error: `") + what + "` must be a list");
  if (list.size() != m) {
    return bad("Wrong input: `" + std::string(what) + "` has " + std::to_string(list.size()) +
               " entries; the anchor set (version " + std::to_string(anchors.version) + ") has " + std::to_string(m) +
               " anchors, and the model needs its embedding of each one exactly once");
  }
  std::unordered_map<PointId, std::size_t, engine::PointIdHash> position;
  if (items) {
    position.reserve(m);
    for (std::size_t i = 0; i < m; ++i) position.emplace(anchors.ids[i], i);
  }
  std::vector<bool> given(m, false);
  for (std::size_t i = 0; i < m; ++i) {
    const std::string where = std::string(what) + "[" + std::to_string(i) + "]";
    const json* row = &list[i];
    std::size_t at = i;
    if (items) {
      VECSTASH_RETURN_IF_ERROR(check_fields(*row, where, {"id", "vector"}));
      const json* id = field(*row, "id");
      if (!id) return bad("Json deserialize error: " + where + ": missing field `id`");
      auto pid = PointId::from_json(*id);
      if (!pid) return bad("Wrong input: " + where + ": " + pid.status().message());
      const auto it = position.find(pid.value());
      if (it == position.end()) {
        return bad("Wrong input: " + where + ": " + pid->to_string() + " is not an anchor of the anchor set (version " +
                   std::to_string(anchors.version) + ")");
      }
      at = it->second;
      if (given[at]) return bad("Wrong input: " + where + ": anchor " + pid->to_string() + " is given twice");
      row = field(*row, "vector");
      if (!row) return bad("Json deserialize error: " + where + ": missing field `vector`");
    }
    if (i == 0) {
      if (!row->is_array() || row->empty())
        return bad("Wrong input: " + where + ": a vector must be a non-empty array of numbers");
      if (row->size() > max_dim) {
        return bad("Wrong input: " + where + ": a model's vectors have at most " + std::to_string(max_dim) + " values");
      }
      req->dim = row->size();
      req->vectors.assign(m * req->dim, 0.0f);
    }
    auto v = read_dense(*row, req->dim);
    if (!v) return bad(v.status().message() + " (" + where + ")");
    std::copy(v->begin(), v->end(), req->vectors.begin() + static_cast<std::ptrdiff_t>(at * req->dim));
    given[at] = true;
  }
  return Status::ok();
}

/// ?with_vectors=true|false (default false).
Result<bool> with_vectors_param(const Request& req) {
  const std::string* v = req.param("with_vectors");
  if (!v) return false;
  if (*v == "true") return true;
  if (*v == "false") return false;
  return bad("Wrong input: query parameter `with_vectors` must be true or false");
}

}  // namespace

json anchors_summary(const Collection& c) {
  const std::optional<AnchorInfo> a = c.anchors();
  if (!a) return nullptr;
  json models = json::array();
  for (const ModelInfo& m : a->models) models.push_back(m.name);
  return json{{"version", a->version},
              {"count", a->count},
              {"strategy", std::string(engine::anchor_strategy_name(a->strategy))},
              {"relative", a->store_relative ? json(a->relative_name) : json(nullptr)},
              {"models", models}};
}

Result<json> Service::Impl::set_anchors(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const CollectionConfig& cfg = col.value()->config();
  const json& b = c.body;
  VECSTASH_RETURN_IF_ERROR(
      check_fields(b, "anchors request", {"strategy", "count", "seed", "ids", "anchors", "center", "relative"}));
  engine::AnchorRequest req;
  if (const json* s = field(b, "strategy")) {
    if (!s->is_string()) return bad("Json deserialize error: `strategy` must be a string");
    auto strategy = engine::parse_anchor_strategy(s->get_ref<const std::string&>());
    if (!strategy) return bad("Wrong input: " + strategy.status().message());
    req.strategy = strategy.value();
  }
  const json* ids = field(b, "ids");
  const json* items = field(b, "anchors");
  const std::string strategy_text = "strategy \"" + std::string(engine::anchor_strategy_name(req.strategy)) + "\"";
  auto count = read_count(b, "count", kDefaultAnchorCount);
  if (!count) return count.status();
  switch (req.strategy) {
    case engine::AnchorStrategy::kRandom:
    case engine::AnchorStrategy::kKMeans:
    case engine::AnchorStrategy::kFarthest:
      if (ids || items) {
        return bad("Wrong input: `ids` go with strategy \"ids\" and `anchors` with strategy \"vectors\", not with " +
                   strategy_text);
      }
      req.count = count.value();
      break;
    case engine::AnchorStrategy::kIds: {
      if (items)
        return bad("Wrong input: `anchors` (ids with vectors) go with strategy \"vectors\"; " + strategy_text +
                   " takes `ids`");
      if (!ids) return bad("Wrong input: " + strategy_text + " needs `ids`, the points to use as anchors");
      auto parsed = read_ids(*ids, "ids", engine::kMaxAnchors);
      if (!parsed) return parsed.status();
      req.ids = std::move(parsed).value();
      break;
    }
    case engine::AnchorStrategy::kVectors:
      if (ids) return bad("Wrong input: with " + strategy_text + " the ids go inside `anchors`");
      if (!items)
        return bad("Wrong input: " + strategy_text + " needs `anchors`: [{\"id\": .., \"vector\": [..]}, ..]");
      VECSTASH_RETURN_IF_ERROR(read_anchor_items(*items, cfg, &req));
      break;
  }
  if (field(b, "count") && (ids || items) && count.value() != req.ids.size()) {
    return bad("Wrong input: `count` (" + std::to_string(count.value()) + ") differs from the " +
               std::to_string(req.ids.size()) + " anchors given; leave it out");
  }
  auto seed = read_count(b, "seed", kDefaultAnchorSeed);
  if (!seed) return seed.status();
  req.seed = seed.value();
  auto center = read_bool(b, "center", true);
  if (!center) return center.status();
  req.center = center.value();
  if (const json* r = field(b, "relative")) VECSTASH_RETURN_IF_ERROR(read_relative_options(*r, &req));
  auto info = col.value()->set_anchors(req);
  if (!info) return info.status();
  return anchors_json(info.value());
}

Result<json> Service::Impl::get_anchors(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  auto with_vectors = with_vectors_param(c.req);
  if (!with_vectors) return with_vectors.status();
  const std::optional<AnchorInfo> info = col.value()->anchors();
  if (!info) return no_anchors(c.params[0]);
  json out = anchors_json(*info);
  if (with_vectors.value()) {
    auto values = col.value()->anchor_vectors();
    if (!values) {
      if (values.status().code() == StatusCode::kNotFound) return no_anchors(c.params[0]);  // removed meanwhile
      return values.status();
    }
    const std::size_t dim = col.value()->config().dim;
    const std::size_t rows = dim ? values->size() / dim : 0;
    json vectors = json::array();
    for (std::size_t i = 0; i < rows; ++i) {
      vectors.push_back(std::vector<float>(values->begin() + static_cast<std::ptrdiff_t>(i * dim),
                                           values->begin() + static_cast<std::ptrdiff_t>((i + 1) * dim)));
    }
    out["vectors"] = std::move(vectors);
  }
  return out;
}

Result<json> Service::Impl::delete_anchors(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const Status s = col.value()->clear_anchors();
  if (s.code() == StatusCode::kNotFound) return no_anchors(c.params[0]);
  VECSTASH_RETURN_IF_ERROR(s);
  return json(true);
}

Result<json> Service::Impl::register_model(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const json& b = c.body;
  VECSTASH_RETURN_IF_ERROR(
      check_fields(b, "model registration", {"vectors", "anchors", "method", "lambda", "local", "hubness"}));
  engine::ModelRequest req;
  req.name = c.params[1];
  if (const json* m = field(b, "method")) {
    if (!m->is_string()) return bad("Json deserialize error: `method` must be a string");
    auto method = engine::parse_cross_method(m->get_ref<const std::string&>());
    if (!method) return bad("Wrong input: " + method.status().message());
    req.default_method = method.value();
  }
  auto lambda = read_number(b, "lambda");
  if (!lambda) return lambda.status();
  if (lambda.value()) req.lambda = *lambda.value();
  VECSTASH_RETURN_IF_ERROR(read_local_options(b, &req));
  VECSTASH_RETURN_IF_ERROR(read_hubness_options(b, &req));
  const std::optional<AnchorInfo> anchors = col.value()->anchors();
  if (!anchors) {
    return Status::failed_precondition("collection '" + c.params[0] +
                                       "' has no anchor set: set one first (PUT /collections/" + c.params[0] +
                                       "/anchors)");
  }
  VECSTASH_RETURN_IF_ERROR(read_model_vectors(b, *anchors, options.limits.max_dim, &req));
  req.anchors_version = anchors->version;  // the vectors were read against this anchor set
  auto info = col.value()->register_model(req);
  if (!info) return info.status();
  return model_json(info.value());
}

Result<json> Service::Impl::list_models(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  json models = json::array();
  if (const std::optional<AnchorInfo> a = col.value()->anchors()) {
    for (const ModelInfo& m : a->models) models.push_back(model_json(m));
  }
  return json{{"models", models}};
}

Result<json> Service::Impl::get_model(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  if (const std::optional<AnchorInfo> a = col.value()->anchors()) {
    for (const ModelInfo& m : a->models) {
      if (m.name == c.params[1]) return model_json(m);
    }
  }
  return Status::not_found("Not found: collection '" + c.params[0] + "' has no model '" + c.params[1] + "'");
}

Result<json> Service::Impl::delete_model(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const Status s = col.value()->remove_model(c.params[1]);
  if (s.code() == StatusCode::kNotFound) {
    return Status::not_found("Not found: collection '" + c.params[0] + "' has no model '" + c.params[1] + "'");
  }
  VECSTASH_RETURN_IF_ERROR(s);
  return json(true);
}

}  // namespace vecstash::api
