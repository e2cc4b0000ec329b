#include "vecstash/engine/collection_config.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "vecstash/engine/ann_index.h"

namespace vecstash::engine {
namespace {

using nlohmann::json;

Status check_keys(const json& j, const std::string& where, const std::set<std::string>& allowed) {
  if (!j.is_object()) return Status::invalid_argument(where + " must be an object");
  for (const auto& [key, value] : j.items()) {
    if (!allowed.count(key)) return Status::invalid_argument(where + ": unknown key '" + key + "'");
  }
  return Status::ok();
}

template <typename T>
Status read_uint(const json& j, const char* key, const std::string& where, T* out) {
  if (!j.contains(key)) return Status::ok();
  const json& v = j.at(key);
  // Parsed JSON gives non-negative integers as unsigned; built in C++ they may be signed.
  if (!v.is_number_integer() || (!v.is_number_unsigned() && v.get<std::int64_t>() < 0)) {
    return Status::invalid_argument(where + key + " must be a non-negative integer");
  }
  *out = static_cast<T>(v.get<std::uint64_t>());
  return Status::ok();
}

Status read_double(const json& j, const char* key, const std::string& where, double* out) {
  if (!j.contains(key)) return Status::ok();
  const json& v = j.at(key);
  if (!v.is_number()) return Status::invalid_argument(where + key + " must be a number");
  *out = v.get<double>();
  return Status::ok();
}

Status read_bool(const json& j, const char* key, const std::string& where, bool* out) {
  if (!j.contains(key)) return Status::ok();
  const json& v = j.at(key);
  if (!v.is_boolean()) return Status::invalid_argument(where + key + " must be true or false");
  *out = v.get<bool>();
  return Status::ok();
}

Status read_int(const json& j, const char* key, const std::string& where, int* out) {
  if (!j.contains(key)) return Status::ok();
  const json& v = j.at(key);
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::int64_t>() > 1 << 20) {
    return Status::invalid_argument(where + key + " must be an integer in [0, 1048576]");
  }
  *out = static_cast<int>(v.get<std::int64_t>());
  return Status::ok();
}

Status read_string(const json& j, const char* key, const std::string& where, std::string* out) {
  if (!j.contains(key)) return Status::ok();
  const json& v = j.at(key);
  if (!v.is_string()) return Status::invalid_argument(where + key + " must be a string");
  *out = v.get<std::string>();
  return Status::ok();
}

}  // namespace

Metric CollectionConfig::scan_metric() const noexcept {
  if (metric == Metric::kCos) return codec.kind == CodeKind::kB1 ? Metric::kL2 : Metric::kIp;
  return metric;
}

Status CollectionConfig::validate() const {
  if (dim == 0 || dim > kMaxDim) {
    return Status::invalid_argument("dim must be in [1, " + std::to_string(kMaxDim) + "], got " + std::to_string(dim));
  }
  if (metric != Metric::kCos && metric != Metric::kIp && metric != Metric::kL2) {
    return Status::invalid_argument("metric must be cos, ip or l2 (hamming is a scoring mode of b1 codes)");
  }
  if (hnsw_ef_construction < 0 || hnsw_ef_construction > 4096) {
    return Status::invalid_argument("hnsw_ef_construction must be in [0, 4096] (0 = FAISS's default, 40)");
  }
  if (hnsw_ef_construction > 0 && index.find("HNSW") == std::string::npos) {
    return Status::invalid_argument("hnsw_ef_construction applies to HNSW index strings only (index is '" + index +
                                    "')");
  }
  if (originals_in_ram && !keep_originals) {
    return Status::invalid_argument("originals_in_ram needs keep_originals (a codes-only collection keeps none)");
  }
  if (vector_name && vector_name->size() > 255)
    return Status::invalid_argument("vector_name must have at most 255 characters");
  if (pca.components > dim) {
    return Status::invalid_argument("pca.components (" + std::to_string(pca.components) + ") must not exceed dim (" +
                                    std::to_string(dim) + ")");
  }
  if (!(pca.variance_fraction > 0.0 && pca.variance_fraction <= 1.0)) {
    return Status::invalid_argument("pca.variance_fraction must be in (0, 1]");
  }
  if (!(codec.int8_clip_percent >= 0.0 && codec.int8_clip_percent < 10.0)) {
    return Status::invalid_argument("codec.int8_clip_percent must be in [0, 10)");
  }
  if (calibration_sample < 2 || calibration_sample > 10'000'000) {
    return Status::invalid_argument("calibration_sample must be in [2, 10000000]");
  }
  if (!(search.oversampling >= 1.0 && search.oversampling <= 100.0)) {
    return Status::invalid_argument("search.oversampling must be in [1, 100]");
  }
  if (!index.empty()) {
    // Build an empty index once to validate the string against the (post-PCA) dimension.
    const std::size_t index_dim = pca.components > 0 ? pca.components : dim;
    const bool binary = !index.empty() && index[0] == 'B';
    if (binary && codec.kind != CodeKind::kB1) {
      return Status::invalid_argument("index '" + index + "' is a binary index: it needs codec.kind b1");
    }
    if (binary && pca.enabled() && pca.components == 0) {
      // The bit width is only known after calibration; validated again then.
    } else {
      const std::size_t bits = (index_dim + 63) / 64 * 64;
      auto probe = AnnIndex::create(index, binary ? bits : index_dim,
                                    binary ? Metric::kHamming : (metric == Metric::kL2 ? Metric::kL2 : Metric::kIp));
      if (!probe.is_ok()) return Status::invalid_argument("index: " + probe.status().message());
    }
  }
  return Status::ok();
}

Result<CollectionConfig> config_from_json(const json& j) {
  CollectionConfig c;
  VECSTASH_RETURN_IF_ERROR(
      check_keys(j, "collection config",
                 {"dim", "metric", "pca", "codec", "keep_originals", "originals_in_ram", "payloads_in_ram",
                  "calibration_sample", "index", "hnsw_ef_construction", "search", "vector_name"}));
  if (!j.contains("dim")) return Status::invalid_argument("dim is required");
  VECSTASH_RETURN_IF_ERROR(read_uint(j, "dim", "", &c.dim));
  if (j.contains("metric")) {
    std::string m;
    VECSTASH_RETURN_IF_ERROR(read_string(j, "metric", "", &m));
    const auto metric = parse_metric(m);
    if (!metric) return Status::invalid_argument("metric '" + m + "' is not one of cos, ip, l2");
    c.metric = *metric;
  }
  if (j.contains("pca") && !j.at("pca").is_null()) {
    const json& p = j.at("pca");
    VECSTASH_RETURN_IF_ERROR(check_keys(p, "pca", {"components", "variance_fraction"}));
    VECSTASH_RETURN_IF_ERROR(read_uint(p, "components", "pca.", &c.pca.components));
    VECSTASH_RETURN_IF_ERROR(read_double(p, "variance_fraction", "pca.", &c.pca.variance_fraction));
  }
  if (j.contains("codec")) {
    const json& k = j.at("codec");
    VECSTASH_RETURN_IF_ERROR(check_keys(k, "codec", {"kind", "scale", "fp8_center", "int8_clip_percent"}));
    if (k.contains("kind")) {
      std::string s;
      VECSTASH_RETURN_IF_ERROR(read_string(k, "kind", "codec.", &s));
      const auto kind = parse_code_kind(s);
      if (!kind)
        return Status::invalid_argument("codec.kind '" + s + "' is not one of f32, f16, bf16, e4m3, e5m2, i8, b1");
      c.codec.kind = *kind;
    }
    if (k.contains("scale")) {
      std::string s;
      VECSTASH_RETURN_IF_ERROR(read_string(k, "scale", "codec.", &s));
      const auto mode = parse_scale_mode(s);
      if (!mode) return Status::invalid_argument("codec.scale '" + s + "' is not one of none, vector, dim");
      c.codec.scale = *mode;
    }
    VECSTASH_RETURN_IF_ERROR(read_bool(k, "fp8_center", "codec.", &c.codec.fp8_center));
    VECSTASH_RETURN_IF_ERROR(read_double(k, "int8_clip_percent", "codec.", &c.codec.int8_clip_percent));
  }
  VECSTASH_RETURN_IF_ERROR(read_bool(j, "keep_originals", "", &c.keep_originals));
  VECSTASH_RETURN_IF_ERROR(read_bool(j, "originals_in_ram", "", &c.originals_in_ram));
  VECSTASH_RETURN_IF_ERROR(read_bool(j, "payloads_in_ram", "", &c.payloads_in_ram));
  VECSTASH_RETURN_IF_ERROR(read_uint(j, "calibration_sample", "", &c.calibration_sample));
  VECSTASH_RETURN_IF_ERROR(read_string(j, "index", "", &c.index));
  VECSTASH_RETURN_IF_ERROR(read_int(j, "hnsw_ef_construction", "", &c.hnsw_ef_construction));
  if (j.contains("vector_name") && !j.at("vector_name").is_null()) {
    std::string name;
    VECSTASH_RETURN_IF_ERROR(read_string(j, "vector_name", "", &name));
    c.vector_name = std::move(name);
  }
  if (j.contains("search")) {
    const json& s = j.at("search");
    VECSTASH_RETURN_IF_ERROR(check_keys(s, "search", {"oversampling", "rescore", "hnsw_ef", "ivf_nprobe"}));
    VECSTASH_RETURN_IF_ERROR(read_double(s, "oversampling", "search.", &c.search.oversampling));
    VECSTASH_RETURN_IF_ERROR(read_bool(s, "rescore", "search.", &c.search.rescore));
    VECSTASH_RETURN_IF_ERROR(read_int(s, "hnsw_ef", "search.", &c.search.hnsw_ef));
    VECSTASH_RETURN_IF_ERROR(read_int(s, "ivf_nprobe", "search.", &c.search.ivf_nprobe));
  }
  VECSTASH_RETURN_IF_ERROR(c.validate());
  return c;
}

json config_to_json(const CollectionConfig& c) {
  json j;
  j["dim"] = c.dim;
  j["metric"] = std::string(to_string(c.metric));
  if (c.pca.enabled()) {
    j["pca"] = {{"components", c.pca.components}, {"variance_fraction", c.pca.variance_fraction}};
  } else {
    j["pca"] = nullptr;
  }
  j["codec"] = {{"kind", std::string(to_string(c.codec.kind))},
                {"scale", std::string(to_string(c.codec.scale))},
                {"fp8_center", c.codec.fp8_center},
                {"int8_clip_percent", c.codec.int8_clip_percent}};
  j["keep_originals"] = c.keep_originals;
  j["originals_in_ram"] = c.originals_in_ram;
  j["payloads_in_ram"] = c.payloads_in_ram;
  j["calibration_sample"] = c.calibration_sample;
  j["index"] = c.index;
  j["hnsw_ef_construction"] = c.hnsw_ef_construction;
  j["vector_name"] = c.vector_name ? json(*c.vector_name) : json(nullptr);
  j["search"] = {{"oversampling", c.search.oversampling},
                 {"rescore", c.search.rescore},
                 {"hnsw_ef", c.search.hnsw_ef},
                 {"ivf_nprobe", c.search.ivf_nprobe}};
  return j;
}

Status validate_collection_name(const std::string& name) {
  if (name.empty() || name.size() > 255)
    return Status::invalid_argument("collection name must have 1 to 255 characters");
  if (name[0] == '.') return Status::invalid_argument("collection name must not start with '.'");
  for (const char ch : name) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
                    ch == '-' || ch == '.';
    if (!ok) {
      return Status::invalid_argument("collection name '" + name + "' may only use letters, digits, '_', '-' and '.'");
    }
  }
  return Status::ok();
}

}  // namespace vecstash::engine
