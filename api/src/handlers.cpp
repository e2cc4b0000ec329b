// The endpoints: Qdrant-compatible collections and points, and vecstash's own (compression report,
// calibration, recalibration, compaction; anchors and models are in anchor_handlers.cpp). Request
// bodies are validated here, once; the engine checks again what it owns (finite values, dimensions,
// limits).
#include <algorithm>
#include <cmath>
#include <limits>
#include <regex>
#include <string_view>

#include "points_json.h"
#include "request_json.h"
#include "service_impl.h"
#include "vecstash/engine/filter.h"

namespace vecstash::api {

using engine::Collection;
using engine::CollectionConfig;
using engine::Filter;
using engine::PointId;

namespace {

std::string not_found_collection(const std::string& name) {
  return "Not found: Collection `" + name + "` doesn't exist!";
}

/// A vector name of a query: the collection's own leaves `space` empty; any other (the relative
/// vector's or a registered model's) goes to the engine, which reports names it does not know. The
/// empty name of a collection whose vector is named otherwise stays an error, as in Qdrant.
Status read_space_name(const std::string& name, const CollectionConfig& cfg, engine::QuerySpace* space) {
  if (name == cfg.vector_name.value_or("")) return Status::ok();
  if (name.empty()) return bad("Wrong input: Not existing vector name error: ");
  space->name = name;
  return Status::ok();
}

/// `using` (see read_space_name).
Status read_using(const json& body, const CollectionConfig& cfg, engine::QuerySpace* space) {
  const json* u = field(body, "using");
  if (!u) return Status::ok();
  if (!u->is_string()) return bad("Json deserialize error: `using` must be a string");
  return read_space_name(u->get_ref<const std::string&>(), cfg, space);
}

/// A query vector. In the collection's own space a VectorStruct of the collection's dimension; in
/// another space (`using` a model or the relative vector) an array (or {"<that name>": array}) of
/// finite values whose count the engine checks against the space's dimension.
Result<std::vector<float>> read_query_vector(const json& v, const CollectionConfig& cfg,
                                             const engine::QuerySpace& space, const ApiLimits& limits) {
  if (space.name.empty()) return read_vector_struct(v, cfg);
  const json* values = &v;
  if (v.is_object()) {
    if (v.size() != 1 || !v.contains(space.name)) {
      return bad("Wrong input: with `using` \"" + space.name + "\" the query vector must be an array of numbers");
    }
    values = &v.at(space.name);
  }
  if (!values->is_array() || values->empty()) return bad("Wrong input: a vector must be a non-empty array of numbers");
  if (values->size() > limits.max_dim) {
    return bad("Wrong input: a query vector has at most " + std::to_string(limits.max_dim) + " values");
  }
  return read_dense(*values, values->size());
}

Result<std::optional<Filter>> read_filter(const json& body) {
  const json* f = field(body, "filter");
  if (!f) return std::optional<Filter>{};
  auto parsed = Filter::parse(*f);
  if (!parsed) return bad("Wrong input: filter: " + parsed.status().message());
  return std::optional<Filter>(std::move(parsed).value());
}

// ---- payload and vector selection ------------------------------------------------------------

struct PayloadSelector {
  bool enabled = false;
  std::vector<std::string> include;  // dotted paths; empty = everything
  std::vector<std::string> exclude;
};

Result<std::vector<std::string>> string_list(const json& v, std::string_view what) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
    return out;
  }
  if (!v.is_array()) return bad("Json deserialize error: `" + std::string(what) + "` must be a list of keys");
  for (const json& x : v) {
    if (!x.is_string()) return bad("Json deserialize error: `" + std::string(what) + "` must be a list of keys");
    out.push_back(x.get<std::string>());
  }
  return out;
}

Result<PayloadSelector> read_with_payload(const json& body, bool def) {
  PayloadSelector sel;
  const json* v = field(body, "with_payload");
  if (!v) {
    sel.enabled = def;
    return sel;
  }
  if (v->is_boolean()) {
    sel.enabled = v->get<bool>();
    return sel;
  }
  sel.enabled = true;
  if (v->is_array()) {
    auto keys = string_list(*v, "with_payload");
    if (!keys) return keys.status();
    sel.include = std::move(keys).value();
    return sel;
  }
  if (v->is_object()) {
    VECSTASH_RETURN_IF_ERROR(check_fields(*v, "with_payload", {"include", "exclude"}));
    if (const json* inc = field(*v, "include")) {
      auto keys = string_list(*inc, "with_payload.include");
      if (!keys) return keys.status();
      sel.include = std::move(keys).value();
    }
    if (const json* exc = field(*v, "exclude")) {
      auto keys = string_list(*exc, "with_payload.exclude");
      if (!keys) return keys.status();
      sel.exclude = std::move(keys).value();
    }
    return sel;
  }
  return bad("Json deserialize error: `with_payload` must be a boolean, a list of keys or {include|exclude}");
}

std::vector<std::string> split_dots(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t i = 0;
  while (true) {
    const std::size_t j = path.find('.', i);
    parts.push_back(path.substr(i, j == std::string::npos ? std::string::npos : j - i));
    if (j == std::string::npos) break;
    i = j + 1;
  }
  return parts;
}

json select_payload(const PayloadSelector& sel, const json& payload) {
  json out;
  if (sel.include.empty()) {
    out = payload;
  } else {
    out = json::object();
    for (const std::string& path : sel.include) {
      const auto parts = split_dots(path);
      const json* src = &payload;
      for (const auto& p : parts) {
        if (!src->is_object() || !src->contains(p)) {
          src = nullptr;
          break;
        }
        src = &src->at(p);
      }
      if (!src) continue;
      json* dst = &out;
      for (std::size_t i = 0; i + 1 < parts.size(); ++i) {
        if (!dst->contains(parts[i]) || !(*dst)[parts[i]].is_object()) (*dst)[parts[i]] = json::object();
        dst = &(*dst)[parts[i]];
      }
      (*dst)[parts.back()] = *src;
    }
  }
  for (const std::string& path : sel.exclude) {
    const auto parts = split_dots(path);
    json* node = &out;
    for (std::size_t i = 0; i + 1 < parts.size() && node; ++i) {
      node = node->is_object() && node->contains(parts[i]) ? &(*node)[parts[i]] : nullptr;
    }
    if (node && node->is_object()) node->erase(parts.back());
  }
  return out;
}

Result<bool> read_with_vector(const json& body, bool def, const CollectionConfig& cfg) {
  const json* v = field(body, "with_vector");
  if (!v) return def;
  if (v->is_boolean()) return v->get<bool>();
  auto names = string_list(*v, "with_vector");
  if (!names) return names.status();
  const std::string mine = cfg.vector_name.value_or("");
  return std::find(names->begin(), names->end(), mine) != names->end();
}

/// A stored vector in answers: {"name": [...]} for a named vector, a plain list for an unnamed one or
/// for the default name "" (as Qdrant answers both).
json vector_json(const std::vector<float>& v, const CollectionConfig& cfg) {
  if (cfg.vector_name && !cfg.vector_name->empty()) return json{{*cfg.vector_name, v}};
  return json(v);
}

json point_json(const PointId& id, const std::optional<json>& payload, const std::optional<std::vector<float>>& vec,
                const PayloadSelector& sel, bool with_vector, const CollectionConfig& cfg, std::optional<float> score) {
  json j = json::object();
  j["id"] = id.to_json();
  if (score) {
    j["version"] = 0;
    j["score"] = *score;
  }
  j["payload"] = sel.enabled ? (payload ? select_payload(sel, *payload) : json::object()) : json(nullptr);
  j["vector"] = with_vector && vec ? vector_json(*vec, cfg) : json(nullptr);
  return j;
}

// ---- queries -----------------------------------------------------------------------------------

struct Query {
  bool scroll = false;  // no query vector: points in id order
  std::vector<float> vector;
  std::optional<PointId> exclude;  // query by point id: the point itself is not a result
  std::optional<Filter> filter;
  std::size_t limit = 10;
  std::size_t offset = 0;
  std::optional<float> score_threshold;
  PayloadSelector payload;
  bool with_vector = false;
  bool exact = false;
  std::optional<bool> rescore;
  std::optional<double> oversampling;
  std::optional<int> hnsw_ef;
  std::optional<int> ivf_nprobe;
  // Maximal marginal relevance re-ranking of the first `mmr_candidates` hits (diversity in [0, 1]).
  std::optional<double> mmr_diversity;
  std::size_t mmr_candidates = 0;
  // `using` another space than the collection's own vector, and params.vecstash.
  engine::QuerySpace space;
};

/// params.vecstash: {"method": "relative|procrustes|affine|local", "relative_input": bool,
/// "hubness_weight": number}.
Status read_space_params(const json& p, engine::QuerySpace* space) {
  VECSTASH_RETURN_IF_ERROR(check_fields(p, "params.vecstash", {"method", "relative_input", "hubness_weight"}));
  if (const json* m = field(p, "method")) {
    if (!m->is_string()) return bad("Json deserialize error: `params.vecstash.method` must be a string");
    auto method = engine::parse_cross_method(m->get_ref<const std::string&>());
    if (!method) return bad("Wrong input: params.vecstash.method: " + method.status().message());
    space->method = method.value();
  }
  auto relative_input = read_bool(p, "relative_input", false);
  if (!relative_input) return relative_input.status();
  space->relative_input = relative_input.value();
  auto hub = read_number(p, "hubness_weight");
  if (!hub) return hub.status();
  if (hub.value()) space->hubness_weight = static_cast<float>(*hub.value());  // range: checked by the engine
  return Status::ok();
}

Status read_search_params(const json& body, Query* q) {
  const json* p = field(body, "params");
  if (!p) return Status::ok();
  VECSTASH_RETURN_IF_ERROR(check_fields(
      *p, "params", {"hnsw_ef", "exact", "quantization", "indexed_only", "acorn", "ivf_nprobe", "vecstash"}));
  if (const json* ours = field(*p, "vecstash")) VECSTASH_RETURN_IF_ERROR(read_space_params(*ours, &q->space));
  auto ef = read_count(*p, "hnsw_ef", 0);
  if (!ef) return ef.status();
  if (field(*p, "hnsw_ef")) q->hnsw_ef = static_cast<int>(std::min<std::size_t>(ef.value(), 1 << 20));
  auto nprobe = read_count(*p, "ivf_nprobe", 0);
  if (!nprobe) return nprobe.status();
  if (field(*p, "ivf_nprobe")) q->ivf_nprobe = static_cast<int>(std::min<std::size_t>(nprobe.value(), 1 << 21));
  auto exact = read_bool(*p, "exact", false);
  if (!exact) return exact.status();
  q->exact = exact.value();
  auto indexed_only = read_bool(*p, "indexed_only", false);
  if (!indexed_only) return indexed_only.status();
  if (const json* qz = field(*p, "quantization")) {
    VECSTASH_RETURN_IF_ERROR(check_fields(*qz, "params.quantization", {"ignore", "rescore", "oversampling"}));
    auto ignore = read_bool(*qz, "ignore", false);
    if (!ignore) return ignore.status();
    if (field(*qz, "rescore")) {
      auto rescore = read_bool(*qz, "rescore", true);
      if (!rescore) return rescore.status();
      q->rescore = rescore.value();
    }
    // "ignore": search without the quantised codes: the closest vecstash offers is float32 rescoring.
    if (ignore.value()) q->rescore = true;
    auto over = read_number(*qz, "oversampling");
    if (!over) return over.status();
    if (over.value()) {
      if (*over.value() < 1.0 || *over.value() > 100.0)
        return bad("params.quantization.oversampling must be in [1, 100]");
      q->oversampling = *over.value();
    }
  }
  return Status::ok();
}

Status read_page(const json& body, const ApiLimits& limits, std::size_t default_limit, Query* q) {
  auto limit = read_count(body, "limit", default_limit);
  if (!limit) return limit.status();
  auto offset = read_count(body, "offset", 0);
  if (!offset) return offset.status();
  q->limit = limit.value();
  q->offset = offset.value();
  if (q->limit == 0) return bad("Wrong input: `limit` must be at least 1");
  if (q->limit + q->offset > limits.max_limit) {
    return bad("Wrong input: limit + offset must be at most " + std::to_string(limits.max_limit));
  }
  auto th = read_number(body, "score_threshold");
  if (!th) return th.status();
  if (th.value()) q->score_threshold = static_cast<float>(*th.value());
  return Status::ok();
}

/// The vector of a stored point (query by id).
Result<std::vector<float>> vector_of_point(const Collection& c, const json& id_json) {
  auto id = PointId::from_json(id_json);
  if (!id) return bad("Wrong input: " + id.status().message());
  const PointId ids[] = {id.value()};
  auto recs = c.retrieve(ids, false, true);
  if (!recs) return recs.status();
  if (recs->empty() || !recs->front().vector) {
    return Status::not_found("Not found: No point with id " + id->to_string() + " found");
  }
  return *recs->front().vector;
}

/// The fields query and legacy search share: filter, params, limit/offset/threshold, with_*.
Status read_query_options(const json& body, const CollectionConfig& cfg, const ApiLimits& limits, Query* q) {
  auto filter = read_filter(body);
  if (!filter) return filter.status();
  q->filter = std::move(filter).value();
  VECSTASH_RETURN_IF_ERROR(read_search_params(body, q));
  VECSTASH_RETURN_IF_ERROR(read_page(body, limits, 10, q));
  auto payload = read_with_payload(body, false);
  if (!payload) return payload.status();
  q->payload = std::move(payload).value();
  auto wv = read_with_vector(body, false, cfg);
  if (!wv) return wv.status();
  q->with_vector = wv.value();
  if ((q->space.method || q->space.relative_input || q->space.hubness_weight) && q->space.name.empty()) {
    return bad(
        "Wrong input: params.vecstash.method, relative_input and hubness_weight apply to queries `using` a "
        "registered model or the relative vector");
  }
  return Status::ok();
}

/// QueryRequest (POST points/query): query = vector | {"nearest": vector | id} | id | absent.
Result<Query> parse_query(const json& body, const Collection& c, const ApiLimits& limits) {
  VECSTASH_RETURN_IF_ERROR(
      check_fields(body, "query request",
                   {"shard_key", "prefetch", "query", "using", "filter", "params", "score_threshold", "limit", "offset",
                    "with_vector", "with_payload", "lookup_from", "timeout"}));
  const CollectionConfig& cfg = c.config();
  Query q;
  if (const json* pf = field(body, "prefetch")) {
    if (!(pf->is_array() && pf->empty())) return bad("Wrong input: `prefetch` (hybrid queries) is not supported");
  }
  if (field(body, "lookup_from")) return bad("Wrong input: `lookup_from` is not supported");
  VECSTASH_RETURN_IF_ERROR(read_using(body, cfg, &q.space));
  const json* query = field(body, "query");
  if (!query) {
    q.scroll = true;
  } else {
    const json* target = query;
    if (query->is_object()) {
      if (query->contains("nearest")) {
        VECSTASH_RETURN_IF_ERROR(check_fields(*query, "query", {"nearest", "mmr"}));
        if (const json* mmr = field(*query, "mmr")) {
          VECSTASH_RETURN_IF_ERROR(check_fields(*mmr, "query.mmr", {"diversity", "candidates_limit"}));
          auto diversity = read_number(*mmr, "diversity");
          if (!diversity) return diversity.status();
          q.mmr_diversity = diversity.value().value_or(0.5);
          if (*q.mmr_diversity < 0.0 || *q.mmr_diversity > 1.0)
            return bad("Wrong input: mmr.diversity must be in [0, 1]");
          auto candidates = read_count(*mmr, "candidates_limit", 0);
          if (!candidates) return candidates.status();
          q.mmr_candidates = candidates.value();
        }
        target = &query->at("nearest");
      } else if (query->contains("indices") || query->contains("values")) {
        return bad("Wrong input: sparse vectors are not supported (vecstash stores one dense vector per point)");
      } else if (!query->empty() && query->begin().key() != std::string(cfg.vector_name.value_or("")) &&
                 (q.space.name.empty() || query->begin().key() != q.space.name)) {
        return bad("Wrong input: query `" + query->begin().key() +
                   "` is not supported (supported: a vector, {\"nearest\": ...} or a point id)");
      }
    }
    if (target->is_number_integer() || target->is_string()) {
      if (!q.space.name.empty()) {
        return bad(
            "Wrong input: a query by point id searches with the point's stored vector, in the collection's "
            "own space; with `using` \"" +
            q.space.name + "\" give a query vector of that space");
      }
      auto v = vector_of_point(c, *target);
      if (!v) return v.status();
      q.vector = std::move(v).value();
      q.exclude = PointId::from_json(*target).value();
    } else {
      auto v = read_query_vector(*target, cfg, q.space, limits);
      if (!v) return v.status();
      q.vector = std::move(v).value();
    }
  }
  VECSTASH_RETURN_IF_ERROR(read_query_options(body, cfg, limits, &q));
  return q;
}

/// SearchRequest (legacy POST points/search): vector = array | {"name": n, "vector": array}.
Result<Query> parse_search(const json& body, const Collection& c, const ApiLimits& limits) {
  VECSTASH_RETURN_IF_ERROR(check_fields(body, "search request",
                                        {"shard_key", "vector", "filter", "params", "limit", "offset", "with_payload",
                                         "with_vector", "score_threshold"}));
  const CollectionConfig& cfg = c.config();
  Query q;
  const json* v = field(body, "vector");
  if (!v) return bad("Json deserialize error: missing field `vector`");
  if (v->is_object() && v->contains("vector")) {
    VECSTASH_RETURN_IF_ERROR(check_fields(*v, "vector", {"name", "vector"}));
    const json* name = field(*v, "name");
    if (name && !name->is_string()) return bad("Json deserialize error: `vector.name` must be a string");
    if (name) VECSTASH_RETURN_IF_ERROR(read_space_name(name->get_ref<const std::string&>(), cfg, &q.space));
    auto d = read_query_vector(v->at("vector"), cfg, q.space, limits);
    if (!d) return d.status();
    q.vector = std::move(d).value();
  } else {
    auto d = read_vector_struct(*v, cfg);
    if (!d) return d.status();
    q.vector = std::move(d).value();
  }
  if (!field(body, "limit")) return bad("Json deserialize error: missing field `limit`");
  VECSTASH_RETURN_IF_ERROR(read_query_options(body, cfg, limits, &q));
  return q;
}

/// The engine's largest k (offset + limit of one search).
constexpr std::size_t kernels_max_k() { return 4096; }

/// Greedy maximal marginal relevance: repeatedly take the hit maximising
/// (1 - diversity) * relevance - diversity * (largest similarity to a hit already taken), where
/// relevance is the search score (negated when `scores_are_distances`) and similarities between hits
/// use the collection's metric on their stored vectors.
std::vector<engine::ScoredPoint> mmr_rerank(std::vector<engine::ScoredPoint> hits, double diversity, std::size_t want,
                                            Metric metric, bool scores_are_distances) {
  const std::size_t n = hits.size();
  auto sim = [metric](const std::vector<float>& a, const std::vector<float>& b) {
    double dot = 0, d2 = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
      dot += double(a[i]) * b[i];
      d2 += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    }
    return metric == Metric::kL2 ? -std::sqrt(d2) : dot;  // cosine rows are stored normalised
  };
  std::vector<double> closest(n, -std::numeric_limits<double>::infinity());
  std::vector<bool> taken(n, false);
  std::vector<engine::ScoredPoint> out;
  while (out.size() < std::min(want, n)) {
    std::size_t best = n;
    double best_value = -std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < n; ++i) {
      if (taken[i]) continue;
      const double relevance = scores_are_distances ? -double(hits[i].score) : double(hits[i].score);
      const double penalty = out.empty() ? 0.0 : closest[i];
      const double value = (1.0 - diversity) * relevance - diversity * penalty;
      if (best == n || value > best_value) {
        best = i;
        best_value = value;
      }
    }
    taken[best] = true;
    for (std::size_t i = 0; i < n; ++i) {
      if (!taken[i] && hits[i].vector && hits[best].vector) {
        closest[i] = std::max(closest[i], sim(*hits[i].vector, *hits[best].vector));
      }
    }
    out.push_back(hits[best]);
  }
  return out;
}

/// Whether a search's scores are Euclidean distances: on Euclid collections, except in the relative
/// vectors' space (a search there scores cosine similarities of relative vectors, also for models
/// answered by the relative method).
bool scores_are_distances(const Collection& c, const engine::QuerySpace& space) {
  if (c.config().metric != Metric::kL2) return false;
  if (space.name.empty()) return true;
  const std::optional<engine::AnchorInfo> anchors = c.anchors();
  if (!anchors) return true;  // the search itself reports the unknown name
  if (space.name == anchors->relative_name) return false;
  for (const engine::ModelInfo& m : anchors->models) {
    if (m.name == space.name) return space.method.value_or(m.default_method) != engine::CrossMethod::kRelative;
  }
  return true;
}

Result<json> run_query(const Query& q, const Collection& c) {
  const CollectionConfig& cfg = c.config();
  json points = json::array();
  const Filter* filter = q.filter ? &*q.filter : nullptr;
  if (q.scroll) {
    engine::ScrollRequest sr;
    sr.limit = q.offset + q.limit;
    sr.filter = filter;
    sr.with_payload = q.payload.enabled;
    sr.with_vector = q.with_vector;
    auto page = c.scroll(sr);
    if (!page) return page.status();
    for (std::size_t i = q.offset; i < page->points.size(); ++i) {
      const auto& r = page->points[i];
      points.push_back(point_json(r.id, r.payload, r.vector, q.payload, q.with_vector, cfg, 0.0f));
    }
    return points;
  }
  engine::SearchRequest req;
  req.queries = q.vector;
  req.nq = 1;
  req.limit = q.limit;
  req.offset = q.offset;
  if (q.exclude) {
    // The query point is not a result: ask for one more from the top and apply the offset here.
    req.limit = std::min<std::size_t>(kernels_max_k(), q.offset + q.limit + 1);
    req.offset = 0;
  }
  if (q.mmr_diversity) {
    // MMR needs the candidates' vectors; offset and limit apply to the re-ranked list.
    req.limit =
        std::min<std::size_t>(kernels_max_k(), std::max(q.mmr_candidates, q.offset + q.limit) + (q.exclude ? 1 : 0));
    req.offset = 0;
  }
  req.filter = filter;
  req.score_threshold = q.score_threshold;
  req.with_payload = q.payload.enabled;
  req.with_vector = q.with_vector;
  req.exact = q.exact;
  req.rescore = q.rescore;
  req.oversampling = q.oversampling;
  req.hnsw_ef = q.hnsw_ef;
  req.ivf_nprobe = q.ivf_nprobe;
  req.space = q.space;
  if (q.mmr_diversity) req.with_vector = true;
  auto found = c.search(req);
  if (!found) return found.status();
  if (q.mmr_diversity) {
    std::vector<engine::ScoredPoint> hits;
    for (auto& p : found->front()) {
      if (!(q.exclude && p.id == *q.exclude)) hits.push_back(std::move(p));
    }
    hits =
        mmr_rerank(std::move(hits), *q.mmr_diversity, q.offset + q.limit, cfg.metric, scores_are_distances(c, q.space));
    for (std::size_t i = q.offset; i < hits.size(); ++i) {
      const auto& p = hits[i];
      points.push_back(point_json(p.id, p.payload, p.vector, q.payload, q.with_vector, cfg, p.score));
    }
    return points;
  }
  std::size_t skip = q.exclude ? q.offset : 0;
  for (const auto& p : found->front()) {
    if (q.exclude && p.id == *q.exclude) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    if (points.size() >= q.limit) break;
    points.push_back(point_json(p.id, p.payload, p.vector, q.payload, q.with_vector, cfg, p.score));
  }
  return points;
}

/// PointsSelector: {"points": [ids]} or {"filter": {...}}.
struct Selector {
  std::vector<PointId> ids;
  std::optional<Filter> filter;
};
Result<Selector> read_selector(const json& body, const ApiLimits& limits) {
  Selector s;
  const json* points = field(body, "points");
  const json* filter = field(body, "filter");
  if (points && filter) return bad("Wrong input: give either `points` or `filter`, not both");
  if (!points && !filter) return bad("Json deserialize error: expected `points` (a list of ids) or `filter`");
  if (points) {
    auto ids = read_ids(*points, "points", limits.max_points_per_write);
    if (!ids) return ids.status();
    s.ids = std::move(ids).value();
  } else {
    auto f = Filter::parse(*filter);
    if (!f) return bad("Wrong input: filter: " + f.status().message());
    s.filter = std::move(f).value();
  }
  return s;
}

/// Every id matching a filter (pages of the id-ordered scroll).
Result<std::vector<PointId>> ids_matching(const Collection& c, const Filter& f) {
  std::vector<PointId> ids;
  engine::ScrollRequest sr;
  sr.limit = 10000;
  sr.filter = &f;
  sr.with_payload = false;
  while (true) {
    auto page = c.scroll(sr);
    if (!page) return page.status();
    for (const auto& r : page->points) ids.push_back(r.id);
    if (!page->next_offset) break;
    sr.offset = page->next_offset;
  }
  return ids;
}

// ---- collection config: Qdrant's create body <-> the engine's CollectionConfig --------------------

Result<Metric> read_distance(const json& v) {
  if (!v.is_string()) return bad("Json deserialize error: `distance` must be a string");
  const std::string& d = v.get_ref<const std::string&>();
  if (d == "Cosine") return Metric::kCos;
  if (d == "Dot") return Metric::kIp;
  if (d == "Euclid") return Metric::kL2;
  if (d == "Manhattan") return bad("Wrong input: distance Manhattan is not supported (Cosine, Dot or Euclid)");
  return bad("Json deserialize error: unknown distance `" + d + "` (expected Cosine, Dot, Euclid or Manhattan)");
}

std::string_view distance_name(Metric m) {
  switch (m) {
    case Metric::kCos:
      return "Cosine";
    case Metric::kIp:
      return "Dot";
    case Metric::kL2:
      return "Euclid";
    default:
      break;
  }
  return "Dot";
}

/// always_ram of a quantization config: vecstash always holds the codes in RAM.
Status check_always_ram(const json& v, const std::string& where) {
  const json* ram = field(v, "always_ram");
  if (!ram || ram->is_null()) return Status::ok();
  if (!ram->is_boolean()) return bad("Json deserialize error: `" + where + ".always_ram` must be a boolean");
  if (!ram->get<bool>()) {
    return bad("Wrong input: " + where +
               ".always_ram false is not supported: vecstash always holds the codes in RAM (the originals go to disk "
               "with vectors.on_disk)");
  }
  return Status::ok();
}

/// Qdrant's quantization_config -> codec settings in `engine_json` (unless vecstash.codec.kind is set).
Status apply_quantization(const json& qc, json* engine_json) {
  if (!qc.is_object() || qc.size() != 1) {
    return bad("Json deserialize error: quantization_config must be {\"scalar\": ...} or {\"binary\": ...}");
  }
  const std::string kind = qc.begin().key();
  const json& v = qc.begin().value();
  json& codec = (*engine_json)["codec"];
  if (codec.is_null()) codec = json::object();
  const bool ours = codec.contains("kind");
  if (kind == "scalar") {
    VECSTASH_RETURN_IF_ERROR(
        check_fields(v, "quantization_config.scalar", {"type", "quantile", "always_ram", "memory"}));
    VECSTASH_RETURN_IF_ERROR(check_always_ram(v, "quantization_config.scalar"));
    const json* type = field(v, "type");
    if (!type || *type != "int8") return bad("Wrong input: quantization_config.scalar.type must be \"int8\"");
    auto q = read_number(v, "quantile");
    if (!q) return q.status();
    if (ours && codec["kind"] != "i8")
      return bad("Wrong input: quantization_config (int8) contradicts vecstash.codec.kind");
    codec["kind"] = "i8";
    if (q.value()) {
      const double quantile = *q.value();
      // Qdrant allows [0.5, 1]; vecstash clips at most 10 % of each tail (int8_clip_percent < 10).
      if (!(quantile > 0.8 && quantile <= 1.0)) {
        return bad(
            "Wrong input: quantization_config.scalar.quantile must be in (0.8, 1] (vecstash clips less than 10 % "
            "of each tail)");
      }
      if (!codec.contains("int8_clip_percent")) codec["int8_clip_percent"] = (1.0 - quantile) * 50.0;
    }
    return Status::ok();
  }
  if (kind == "binary") {
    VECSTASH_RETURN_IF_ERROR(
        check_fields(v, "quantization_config.binary", {"always_ram", "encoding", "query_encoding"}));
    VECSTASH_RETURN_IF_ERROR(check_always_ram(v, "quantization_config.binary"));
    if (const json* enc = field(v, "encoding"); enc && *enc != "one_bit") {
      return bad("Wrong input: quantization_config.binary.encoding: only one_bit is supported");
    }
    if (ours && codec["kind"] != "b1")
      return bad("Wrong input: quantization_config (binary) contradicts vecstash.codec.kind");
    codec["kind"] = "b1";
    return Status::ok();
  }
  if (kind == "product")
    return bad("Wrong input: product quantization is not supported (use vecstash.index \"IVF...,PQ...\")");
  return bad("Json deserialize error: unknown quantization `" + kind + "`");
}

json quantization_out(const CollectionConfig& cfg) {
  if (cfg.codec.kind == CodeKind::kI8) {
    json s = {{"type", "int8"}, {"always_ram", true}};
    if (cfg.codec.int8_clip_percent > 0) s["quantile"] = 1.0 - cfg.codec.int8_clip_percent / 50.0;
    return json{{"scalar", s}};
  }
  if (cfg.codec.kind == CodeKind::kB1) return json{{"binary", {{"always_ram", true}}}};
  return nullptr;
}

int hnsw_m_of(const std::string& index) {
  static const std::regex re("^B?HNSW([0-9]+)");
  std::smatch m;
  if (std::regex_search(index, m, re)) return std::stoi(m[1]);
  return 0;
}

}  // namespace

// ---- Impl ----------------------------------------------------------------------------------------

Result<std::shared_ptr<Collection>> Service::Impl::collection(const std::string& name) const {
  auto c = engine.collection(name);
  if (!c) {
    if (c.status().code() == StatusCode::kNotFound) return Status::not_found(not_found_collection(name));
    return c.status();
  }
  return c;
}

engine::WriteOptions Service::Impl::write_options() const {
  engine::WriteOptions o;
  o.sync = options.sync_writes;
  return o;
}

json Service::Impl::update_result(const Call& call) {
  const std::string* wait = call.req.param("wait");
  const bool waited = wait == nullptr || *wait != "false";
  return json{{"operation_id", operation_id.fetch_add(1) + 1}, {"status", waited ? "completed" : "acknowledged"}};
}

Result<json> Service::Impl::list_collections(Call&) {
  json list = json::array();
  for (const std::string& n : engine.list_collections()) list.push_back({{"name", n}});
  return json{{"collections", list}};
}

Result<json> Service::Impl::collection_exists(Call& c) {
  auto col = engine.collection(c.params[0]);
  return json{{"exists", col.is_ok()}};
}

Result<json> Service::Impl::create_collection(Call& c) {
  const std::string& name = c.params[0];
  if (const Status s = engine::validate_collection_name(name); !s.is_ok()) return bad("Wrong input: " + s.message());
  const json& b = c.body;
  VECSTASH_RETURN_IF_ERROR(
      check_fields(b, "create collection",
                   {"vectors", "sparse_vectors", "hnsw_config", "quantization_config", "optimizers_config",
                    "wal_config", "shard_number", "sharding_method", "replication_factor", "write_consistency_factor",
                    "on_disk_payload", "strict_mode_config", "metadata", "init_from", "timeout", "vecstash"}));
  if (field(b, "init_from")) return bad("Wrong input: `init_from` is not supported");
  if (const json* md = field(b, "metadata"); md && !(md->is_object() && md->empty())) {
    return bad("Wrong input: collection `metadata` is not supported yet");
  }
  if (const json* sv = field(b, "sparse_vectors"); sv && !(sv->is_object() && sv->empty())) {
    return bad("Wrong input: sparse vectors are not supported (vecstash stores one dense vector per point)");
  }
  const json* vectors = field(b, "vectors");
  if (!vectors || !vectors->is_object()) return bad("Json deserialize error: missing field `vectors`");

  json ej = json::object();
  if (const json* ours = field(b, "vecstash")) {
    if (!ours->is_object()) return bad("Json deserialize error: `vecstash` must be an object");
    for (const char* k : {"dim", "metric", "vector_name"}) {
      if (ours->contains(k)) {
        return bad(std::string("Wrong input: vecstash.") + k + " is set through `vectors`, not the vecstash settings");
      }
    }
    ej = *ours;
  }
  std::optional<std::string> vector_name;
  const json* params = vectors;
  if (!vectors->contains("size")) {
    if (vectors->size() != 1) {
      return bad("Wrong input: vecstash stores one dense vector per collection; got " +
                 std::to_string(vectors->size()) + " named vectors");
    }
    vector_name = vectors->begin().key();
    params = &vectors->begin().value();
  }
  VECSTASH_RETURN_IF_ERROR(check_fields(
      *params, "vectors",
      {"size", "distance", "on_disk", "hnsw_config", "quantization_config", "datatype", "multivector_config"}));
  if (field(*params, "multivector_config")) return bad("Wrong input: multivectors are not supported");
  auto size = read_count(*params, "size", 0);
  if (!size) return size.status();
  if (size.value() == 0 || size.value() > options.limits.max_dim) {
    return bad("Wrong input: vector size must be in [1, " + std::to_string(options.limits.max_dim) + "]");
  }
  const json* dist = field(*params, "distance");
  if (!dist) return bad("Json deserialize error: missing field `distance`");
  auto metric = read_distance(*dist);
  if (!metric) return metric.status();
  ej["dim"] = size.value();
  ej["metric"] = std::string(to_string(metric.value()));
  ej["vector_name"] = vector_name ? json(*vector_name) : json(nullptr);

  const json* qc = field(*params, "quantization_config");
  if (!qc) qc = field(b, "quantization_config");
  if (qc) VECSTASH_RETURN_IF_ERROR(apply_quantization(*qc, &ej));
  if (const json* dt = field(*params, "datatype")) {
    if (*dt == "float16" && !qc && !(ej.contains("codec") && ej["codec"].contains("kind"))) {
      ej["codec"]["kind"] = "f16";
    } else if (*dt != "float32" && *dt != "float16") {
      return bad("Wrong input: datatype " + dt->dump() + " is not supported (float32 or float16)");
    }
  }
  // Qdrant's storage settings: originals on disk (vecstash's default) or also in RAM; payloads the same.
  auto on_disk = read_optional_bool(*params, "on_disk");
  if (!on_disk) return on_disk.status();
  if (on_disk.value() && !ej.contains("originals_in_ram")) ej["originals_in_ram"] = !*on_disk.value();
  auto on_disk_payload = read_optional_bool(b, "on_disk_payload");
  if (!on_disk_payload) return on_disk_payload.status();
  if (on_disk_payload.value() && !ej.contains("payloads_in_ram")) ej["payloads_in_ram"] = !*on_disk_payload.value();
  if (ej.value("keep_originals", true) == false && ej.value("originals_in_ram", false)) {
    return bad("Wrong input: vectors.on_disk false keeps the originals in RAM, but vecstash.keep_originals is false");
  }
  const json* hnsw = field(*params, "hnsw_config");
  if (!hnsw) hnsw = field(b, "hnsw_config");
  if (hnsw && !ej.contains("index")) {
    if (!hnsw->is_object()) return bad("Json deserialize error: `hnsw_config` must be an object");
    auto m = read_count(*hnsw, "m", 0);
    if (!m) return m.status();
    if (m.value() > 0) {
      if (m.value() < 2 || m.value() > 256) return bad("Wrong input: hnsw_config.m must be 0 or in [2, 256]");
      const bool binary = ej.contains("codec") && ej["codec"].value("kind", "") == "b1";
      ej["index"] = (binary ? "BHNSW" : "HNSW") + std::to_string(m.value());
      auto efc = read_count(*hnsw, "ef_construct", 0);
      if (!efc) return efc.status();
      if (efc.value() > 0 && !ej.contains("hnsw_ef_construction")) {
        if (efc.value() > 4096) return bad("Wrong input: hnsw_config.ef_construct must be at most 4096");
        ej["hnsw_ef_construction"] = efc.value();
      }
    }
  }
  auto cfg = engine::config_from_json(ej);
  if (!cfg) return bad("Wrong input: " + cfg.status().message());
  auto created = engine.create_collection(name, cfg.value());
  if (!created) {
    if (created.status().code() == StatusCode::kAlreadyExists) {
      return Status::already_exists("Wrong input: Collection `" + name + "` already exists!");
    }
    return created.status();
  }
  return json(true);
}

Result<json> Service::Impl::delete_collection(Call& c) {
  const Status s = engine.drop_collection(c.params[0]);
  if (s.code() == StatusCode::kNotFound) return json(false);  // as Qdrant: deleting nothing is not an error
  VECSTASH_RETURN_IF_ERROR(s);
  return json(true);
}

/// Qdrant's payload_schema: {"field": {"data_type": type, "params": {"type": type}, "points": n}}.
json payload_schema_json(const engine::Collection& col) {
  json out = json::object();
  for (const auto& index : col.payload_indexes()) {
    out[index.field] = {{"data_type", index.type}, {"params", {{"type", index.type}}}, {"points", index.points}};
  }
  return out;
}

Result<json> Service::Impl::collection_info(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const engine::CollectionInfo info = col.value()->info();
  const CollectionConfig& cfg = info.config;
  // on_disk: the originals live on disk (vecstash's default); false keeps a RAM copy as well.
  json vparams = {{"size", cfg.dim},
                  {"distance", std::string(distance_name(cfg.metric))},
                  {"on_disk", !cfg.originals_in_ram}};
  json vectors = cfg.vector_name ? json{{*cfg.vector_name, vparams}} : vparams;
  const int m = hnsw_m_of(cfg.index);
  json ours = engine::config_to_json(cfg);
  ours.erase("dim");
  ours.erase("metric");
  ours.erase("vector_name");
  ours["state"] = {
      {"calibrated", info.calibrated},
      {"code_dim", info.code_dim},
      {"code_bytes", info.code_bytes},
      {"explained_variance", info.explained_variance},
      {"generation", info.generation},
      {"rows", info.rows},
      {"indexed_rows", info.indexed},
      {"memory_bytes",
       {{"codes", info.memory.codes},
        {"originals", info.memory.originals},
        {"ids", info.memory.ids},
        {"payloads", info.memory.payloads},
        {"payload_index", info.memory.payload_index},
        {"index", info.memory.index},
        {"total", info.memory.total()}}},
  };
  ours["anchors"] = anchors_summary(*col.value());
  const bool busy = info.recalibration.state == engine::RecalibrationState::kRunning;
  json config = {
      {"params",
       {{"vectors", vectors},
        {"shard_number", 1},
        {"replication_factor", 1},
        {"write_consistency_factor", 1},
        {"on_disk_payload", !cfg.payloads_in_ram}}},
      {"hnsw_config",
       {{"m", m},
        {"ef_construct", m == 0 ? 100 : (cfg.hnsw_ef_construction > 0 ? cfg.hnsw_ef_construction : 40)},
        {"full_scan_threshold", 10000}}},
      {"optimizer_config",
       {{"deleted_threshold", 0.2},
        {"vacuum_min_vector_number", 1000},
        {"default_segment_number", 1},
        {"flush_interval_sec", 5}}},
      {"wal_config", {{"wal_capacity_mb", 32}, {"wal_segments_ahead", 0}}},
      {"quantization_config", quantization_out(cfg)},
      {"vecstash", ours},
  };
  return json{{"status", busy ? "yellow" : "green"},
              {"optimizer_status", "ok"},
              {"segments_count", 1},
              {"points_count", info.points},
              {"indexed_vectors_count", info.indexed},
              {"payload_schema", payload_schema_json(*col.value())},
              {"config", config}};
}

Result<json> Service::Impl::create_payload_index(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "create index", {"field_name", "field_schema", "field_type"}));
  const json* f = field(c.body, "field_name");
  if (!f || !f->is_string()) return bad("Json deserialize error: missing field `field_name`");
  // field_schema: a type name, or {"type": name, ...the index's parameters}; field_type is its old name.
  const json* schema = field(c.body, "field_schema");
  if (!schema) schema = field(c.body, "field_type");
  if (!schema) return bad("Json deserialize error: missing field `field_schema`");
  std::string type;
  if (schema->is_string()) {
    type = schema->get<std::string>();
  } else if (schema->is_object() && schema->contains("type") && (*schema)["type"].is_string()) {
    type = (*schema)["type"].get<std::string>();
  } else {
    return bad("Json deserialize error: `field_schema` must be a type name or an object with a `type`");
  }
  if (type == "geo") return bad("Wrong input: geo payload indexes are not supported");
  const Status s = col.value()->create_payload_index(f->get<std::string>(), type);
  if (s.code() == StatusCode::kInvalidArgument) return bad("Wrong input: " + s.message());
  VECSTASH_RETURN_IF_ERROR(s);
  return update_result(c);
}

Result<json> Service::Impl::delete_payload_index(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const Status s = col.value()->drop_payload_index(c.params[1]);
  if (s.code() != StatusCode::kNotFound) VECSTASH_RETURN_IF_ERROR(s);  // deleting nothing is not an error
  return update_result(c);
}

Result<json> Service::Impl::upsert_points(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const CollectionConfig& cfg = col.value()->config();
  auto body = parse_upsert_body(c.req.body, cfg, options.limits.max_points_per_write);
  if (!body) return body.status();
  const std::size_t n = body->ids.size();
  std::vector<engine::PointInput> input(n);
  for (std::size_t i = 0; i < n; ++i) {
    input[i].id = body->ids[i];
    input[i].vector = std::span<const float>(body->vectors.data() + i * cfg.dim, cfg.dim);
    input[i].payload = std::move(body->payloads[i]);
  }
  VECSTASH_RETURN_IF_ERROR(col.value()->upsert(input, write_options()));
  metrics.add_upserted(c.params[0], input.size());
  return update_result(c);
}

Result<json> Service::Impl::retrieve_points(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "retrieve", {"ids", "with_payload", "with_vector", "shard_key"}));
  const json* idj = field(c.body, "ids");
  if (!idj) return bad("Json deserialize error: missing field `ids`");
  auto ids = read_ids(*idj, "ids", options.limits.max_scroll_limit);
  if (!ids) return ids.status();
  auto sel = read_with_payload(c.body, true);
  if (!sel) return sel.status();
  const CollectionConfig& cfg = col.value()->config();
  auto wv = read_with_vector(c.body, false, cfg);
  if (!wv) return wv.status();
  auto recs = col.value()->retrieve(ids.value(), sel->enabled, wv.value());
  if (!recs) return recs.status();
  json out = json::array();
  for (const auto& r : recs.value())
    out.push_back(point_json(r.id, r.payload, r.vector, sel.value(), wv.value(), cfg, {}));
  return out;
}

Result<json> Service::Impl::get_point(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const std::string& text = c.params[1];
  Result<PointId> id = Status::invalid_argument("");
  if (!text.empty() && std::all_of(text.begin(), text.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
    id = PointId::from_json(json::parse(text, nullptr, false));
  } else {
    id = PointId::parse_uuid(text);
  }
  if (!id) return bad("Wrong input: Unable to parse point id `" + text + "`");
  const PointId ids[] = {id.value()};
  auto recs = col.value()->retrieve(ids, true, true);
  if (!recs) return recs.status();
  if (recs->empty()) return Status::not_found("Not found: No point with id " + id->to_string() + " found");
  PayloadSelector all;
  all.enabled = true;
  const auto& r = recs->front();
  return point_json(r.id, r.payload, r.vector, all, true, col.value()->config(), {});
}

Result<json> Service::Impl::delete_points(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "delete points", {"points", "filter", "shard_key"}));
  auto sel = read_selector(c.body, options.limits);
  if (!sel) return sel.status();
  Result<std::size_t> n = sel->filter ? col.value()->erase_matching(*sel->filter, write_options())
                                      : col.value()->erase(sel->ids, write_options());
  if (!n) return n.status();
  metrics.add_deleted(c.params[0], n.value());
  return update_result(c);
}

namespace {
Result<json> payload_update(Service::Impl& impl, Call& c, bool overwrite) {
  auto col = impl.collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "set payload", {"payload", "points", "filter", "shard_key", "key"}));
  if (field(c.body, "key")) return bad("Wrong input: `key` (nested payload updates) is not supported");
  const json* payload = field(c.body, "payload");
  if (!payload || !payload->is_object()) return bad("Json deserialize error: `payload` must be a JSON object");
  auto sel = read_selector(c.body, impl.options.limits);
  if (!sel) return sel.status();
  std::vector<PointId> ids = std::move(sel->ids);
  if (sel->filter) {
    auto matching = ids_matching(*col.value(), *sel->filter);
    if (!matching) return matching.status();
    ids = std::move(matching).value();
  }
  VECSTASH_RETURN_IF_ERROR(col.value()->set_payload(ids, *payload, overwrite, impl.write_options()));
  return impl.update_result(c);
}
}  // namespace

Result<json> Service::Impl::set_payload(Call& c) { return payload_update(*this, c, false); }
Result<json> Service::Impl::overwrite_payload(Call& c) { return payload_update(*this, c, true); }

namespace {
/// A batch of queries (query/batch or search/batch): every query is parsed before any runs, so a bad
/// one fails the batch without work done. `wrap` puts each answer in {"points": ...} (query API).
template <typename Parse>
Result<json> run_batch(Service::Impl& impl, Call& c, std::initializer_list<std::string_view> fields, Parse parse,
                       bool wrap) {
  auto col = impl.collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "batch", fields));
  const json* searches = field(c.body, "searches");
  if (!searches || !searches->is_array()) return bad("Json deserialize error: missing field `searches`");
  const std::size_t max = impl.options.limits.max_batch_queries;
  if (searches->size() > max) return bad("Wrong input: at most " + std::to_string(max) + " searches per batch");
  std::vector<Query> queries;
  for (std::size_t i = 0; i < searches->size(); ++i) {
    auto q = parse((*searches)[i], *col.value(), impl.options.limits);
    if (!q) return Status(q.status().code(), q.status().message() + " (searches[" + std::to_string(i) + "])");
    queries.push_back(std::move(q).value());
  }
  json out = json::array();
  for (const Query& q : queries) {
    auto points = run_query(q, *col.value());
    if (!points) return points.status();
    out.push_back(wrap ? json{{"points", std::move(points).value()}} : std::move(points).value());
  }
  impl.metrics.add_queries(c.params[0], queries.size());
  return out;
}
}  // namespace

namespace {
/// One query (points/query or the legacy points/search); `wrap` puts the answer in {"points": ...}.
template <typename Parse>
Result<json> run_single(Service::Impl& impl, Call& c, Parse parse, bool wrap) {
  auto col = impl.collection(c.params[0]);
  if (!col) return col.status();
  auto q = parse(c.body, *col.value(), impl.options.limits);
  if (!q) return q.status();
  auto points = run_query(q.value(), *col.value());
  if (!points) return points.status();
  impl.metrics.add_queries(c.params[0], 1);
  return wrap ? json{{"points", std::move(points).value()}} : std::move(points).value();
}
}  // namespace

Result<json> Service::Impl::query_points(Call& c) { return run_single(*this, c, parse_query, true); }

Result<json> Service::Impl::search_points(Call& c) { return run_single(*this, c, parse_search, false); }

Result<json> Service::Impl::query_batch(Call& c) {
  return run_batch(*this, c, {"searches", "timeout"}, parse_query, true);
}

Result<json> Service::Impl::search_batch(Call& c) { return run_batch(*this, c, {"searches"}, parse_search, false); }

Result<json> Service::Impl::scroll_points(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(
      c.body, "scroll", {"offset", "limit", "filter", "with_payload", "with_vector", "order_by", "shard_key"}));
  if (field(c.body, "order_by")) return bad("Wrong input: `order_by` is not supported (points come in id order)");
  const CollectionConfig& cfg = col.value()->config();
  engine::ScrollRequest sr;
  if (const json* off = field(c.body, "offset")) {
    auto id = PointId::from_json(*off);
    if (!id) return bad("Wrong input: offset: " + id.status().message());
    sr.offset = id.value();
  }
  auto limit = read_count(c.body, "limit", 10);
  if (!limit) return limit.status();
  if (limit.value() == 0 || limit.value() > options.limits.max_scroll_limit) {
    return bad("Wrong input: `limit` must be in [1, " + std::to_string(options.limits.max_scroll_limit) + "]");
  }
  sr.limit = limit.value();
  auto filter = read_filter(c.body);
  if (!filter) return filter.status();
  if (filter.value()) sr.filter = &*filter.value();
  auto sel = read_with_payload(c.body, true);
  if (!sel) return sel.status();
  auto wv = read_with_vector(c.body, false, cfg);
  if (!wv) return wv.status();
  sr.with_payload = sel->enabled;
  sr.with_vector = wv.value();
  auto page = col.value()->scroll(sr);
  if (!page) return page.status();
  json pts = json::array();
  for (const auto& r : page->points)
    pts.push_back(point_json(r.id, r.payload, r.vector, sel.value(), wv.value(), cfg, {}));
  return json{{"points", pts}, {"next_page_offset", page->next_offset ? page->next_offset->to_json() : json(nullptr)}};
}

Result<json> Service::Impl::count_points(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(check_fields(c.body, "count", {"filter", "exact", "shard_key"}));
  auto exact = read_bool(c.body, "exact", true);
  if (!exact) return exact.status();
  auto filter = read_filter(c.body);
  if (!filter) return filter.status();
  auto n = col.value()->count(filter.value() ? &*filter.value() : nullptr);
  if (!n) return n.status();
  return json{{"count", *n}};
}

// ---- vecstash's own endpoints ------------------------------------------------------------------

Result<json> Service::Impl::compression_report(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  auto number_param = [&c](const char* name, std::size_t def) -> Result<std::size_t> {
    const std::string* v = c.req.param(name);
    if (!v) return def;
    if (v->empty() || v->size() > 9 ||
        !std::all_of(v->begin(), v->end(), [](char ch) { return ch >= '0' && ch <= '9'; })) {
      return bad(std::string("Wrong input: query parameter `") + name + "` must be a positive integer");
    }
    return static_cast<std::size_t>(std::stoul(*v));
  };
  auto sample = number_param("sample", 200);
  if (!sample) return sample.status();
  auto k = number_param("k", 10);
  if (!k) return k.status();
  auto rep = col.value()->evaluate_compression(sample.value(), k.value());
  if (!rep) return rep.status();
  const engine::CompressionReport& r = rep.value();
  const CollectionConfig& cfg = col.value()->config();
  auto opt = [](const std::optional<double>& v) { return v ? json(*v) : json(nullptr); };
  return json{{"collection", c.params[0]},
              {"points", r.points},
              {"dim", r.dim},
              {"code_kind", std::string(to_string(cfg.codec.kind))},
              {"pca_dim", r.code_dim},
              {"code_bytes", r.code_bytes},
              {"float32_bytes_per_vector", r.float32_bytes},
              {"code_bytes_per_vector", r.code_bytes_per_vector},
              {"ram_bytes_per_vector", r.ram_bytes_per_vector},
              {"compression_ratio", r.compression_ratio},
              {"keep_originals", cfg.keep_originals},
              {"sample", r.sample},
              {"k", r.k},
              {"recall_at_k", opt(r.recall_codes)},
              {"recall_at_k_rescored", opt(r.recall_rescored)},
              {"oversampling", r.oversampling},
              {"note", r.note}};
}

Result<json> Service::Impl::start_recalibration(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(col.value()->start_recalibration());
  return recalibration_progress(c);
}

Result<json> Service::Impl::recalibration_progress(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  const engine::RecalibrationProgress p = col.value()->recalibration_progress();
  static constexpr const char* kStates[] = {"idle", "running", "done", "failed"};
  const bool idle = p.state == engine::RecalibrationState::kIdle;
  return json{{"state", kStates[static_cast<int>(p.state)]},
              {"done", idle ? 0 : p.done},
              {"total", idle ? 0 : p.total},
              {"message", p.message}};
}

Result<json> Service::Impl::calibrate(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  VECSTASH_RETURN_IF_ERROR(col.value()->calibrate());
  const engine::CollectionInfo info = col.value()->info();
  return json{{"calibrated", info.calibrated},
              {"code_dim", info.code_dim},
              {"code_bytes", info.code_bytes},
              {"generation", info.generation}};
}

Result<json> Service::Impl::compact(Call& c) {
  auto col = collection(c.params[0]);
  if (!col) return col.status();
  auto n = col.value()->compact();
  if (!n) return n.status();
  return json{{"reclaimed_rows", n.value()}};
}

}  // namespace vecstash::api
