// Reading request bodies (request_json.h).
#include "request_json.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

namespace vecstash::api {

using json = nlohmann::json;
using engine::CollectionConfig;
using engine::PointId;

Status bad(std::string message) { return Status::invalid_argument(std::move(message)); }

/// A field counts as given when present and not null (clients send null for "unset").
const json* field(const json& o, std::string_view key) {
  const auto it = o.find(key);
  if (it == o.end() || it->is_null()) return nullptr;
  return &*it;
}

Status check_fields(const json& o, std::string_view what, std::initializer_list<std::string_view> allowed) {
  if (!o.is_object()) return bad(std::string(what) + " must be a JSON object");
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (it.value().is_null()) continue;
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end()) {
      return bad("Json deserialize error: unknown field `" + it.key() + "` in " + std::string(what));
    }
  }
  return Status::ok();
}

Result<bool> read_bool(const json& o, std::string_view key, bool def) {
  const json* v = field(o, key);
  if (!v) return def;
  if (!v->is_boolean()) return bad("Json deserialize error: `" + std::string(key) + "` must be a boolean");
  return v->get<bool>();
}

Result<std::optional<bool>> read_optional_bool(const json& o, std::string_view key) {
  const json* v = field(o, key);
  if (!v || v->is_null()) return std::optional<bool>();
  if (!v->is_boolean()) return bad("Json deserialize error: `" + std::string(key) + "` must be a boolean");
  return std::optional<bool>(v->get<bool>());
}

Result<std::size_t> read_count(const json& o, std::string_view key, std::size_t def) {
  const json* v = field(o, key);
  if (!v) return def;
  if (!v->is_number_integer() || (v->is_number_integer() && !v->is_number_unsigned() && v->get<std::int64_t>() < 0)) {
    return bad("Json deserialize error: `" + std::string(key) + "` must be a non-negative integer");
  }
  return static_cast<std::size_t>(v->get<std::uint64_t>());
}

Result<std::optional<double>> read_number(const json& o, std::string_view key) {
  const json* v = field(o, key);
  if (!v) return std::optional<double>{};
  if (!v->is_number()) return bad("Json deserialize error: `" + std::string(key) + "` must be a number");
  const double d = v->get<double>();
  // (append rather than "`" + std::string(key): GCC 12 warns falsely (-Wrestrict) about the latter.)
  if (!std::isfinite(d)) return bad(std::string("`").append(key).append("` must be finite"));
  return std::optional<double>(d);
}

/// A dense vector of exactly `dim` finite float32 values.
Result<std::vector<float>> read_dense(const json& v, std::size_t dim) {
  if (!v.is_array()) return bad("Wrong input: a vector must be an array of numbers");
  if (v.size() != dim) {
    return bad("Wrong input: Vector dimension error: expected dim: " + std::to_string(dim) + ", got " +
               std::to_string(v.size()));
  }
  std::vector<float> out(dim);
  for (std::size_t i = 0; i < dim; ++i) {
    const json& x = v[i];
    if (!x.is_number()) return bad("Wrong input: vector element " + std::to_string(i) + " is not a number");
    const double d = x.get<double>();
    if (!std::isfinite(d) || std::fabs(d) > std::numeric_limits<float>::max()) {
      return bad("Wrong input: vector element " + std::to_string(i) + " is not a finite float32 value");
    }
    out[i] = static_cast<float>(d);
  }
  return out;
}

/// VectorStruct: a plain array, or {"<name>": array} naming the collection's one vector.
Result<std::vector<float>> read_vector_struct(const json& v, const CollectionConfig& cfg) {
  if (v.is_array()) return read_dense(v, cfg.dim);
  if (v.is_object()) {
    if (v.contains("indices") || v.contains("values")) {
      return bad("Wrong input: sparse vectors are not supported (vecstash stores one dense vector per point)");
    }
    const std::string mine = cfg.vector_name.value_or("");
    if (v.size() != 1 || !v.contains(mine)) {
      std::string names;
      for (auto it = v.begin(); it != v.end(); ++it) names += (names.empty() ? "" : ", ") + ("`" + it.key() + "`");
      return bad("Wrong input: Not existing vector name error: " + (names.empty() ? std::string("(none)") : names) +
                 " (this collection has one vector, named `" + mine + "`)");
    }
    return read_dense(v.at(mine), cfg.dim);
  }
  return bad("Wrong input: a vector must be an array of numbers or {\"name\": [numbers]}");
}

Result<std::vector<PointId>> read_ids(const json& v, std::string_view what, std::size_t max) {
  if (!v.is_array()) return bad("Json deserialize error: `" + std::string(what) + "` must be a list of point ids");
  if (v.size() > max) {
    return bad("Wrong input: at most " + std::to_string(max) + " ids per request, got " + std::to_string(v.size()));
  }
  std::vector<PointId> ids;
  ids.reserve(v.size());
  for (const json& x : v) {
    auto id = PointId::from_json(x);
    if (!id) return bad("Wrong input: " + id.status().message());
    ids.push_back(id.value());
  }
  return ids;
}

}  // namespace vecstash::api
