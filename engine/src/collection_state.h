// Private to engine/: a collection's calibration (PCA, codec) and the search plan fixed with it, the
// storage keys of its small records, and helpers shared by the collection's source files.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine_shared.h"
#include "vecstash/common/blob.h"
#include "vecstash/engine/collection.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/pca.h"

namespace vecstash::engine {

/// How a calibrated collection searches its codes: decided once per calibration from the config and
/// the code kind, not per query or per tile.
struct SearchPlan {
  Metric final_metric = Metric::kIp;  ///< results: kIp (cosine and inner product) or kL2
  Metric scan_metric = Metric::kIp;   ///< what the code scan ranks by (CollectionConfig::scan_metric)
  bool needs_norms = false;           ///< the scan needs per-row squared norms of the codes
  bool int8_scan = false;             ///< int8 codes: the integer candidate scan, then exact code scores
  bool cos_by_l2 = false;             ///< b1 rows of a cosine collection: ranked by L2, cos = 1 - d^2 / 2
  bool ip_shift = false;              ///< PCA-centred inner products: add q . mean to code scores
};

/// The metric of the final scores: cosine collections rank by the inner product of unit vectors.
inline Metric final_metric(const CollectionConfig& c) { return c.metric == Metric::kL2 ? Metric::kL2 : Metric::kIp; }

/// Whether the code scan of this config needs per-row squared norms.
inline bool scan_needs_norms(const CollectionConfig& c) {
  const Metric m = c.scan_metric();
  if (m == Metric::kCos) return true;
  return m == Metric::kL2 && c.codec.kind != CodeKind::kB1;
}

// Calibration: immutable once built, shared by searches through a shared_ptr.
struct Collection::State {
  static constexpr std::uint16_t kVersion = 1;
  std::uint32_t generation = 0;
  bool has_pca = false;
  kernels::Pca pca;
  kernels::Codec codec;
  SearchPlan plan;
  std::size_t code_dim() const { return codec.dim(); }

  /// Fix the search plan for `config` (after pca and codec are set).
  void make_plan(const CollectionConfig& config) {
    plan.final_metric = final_metric(config);
    plan.scan_metric = config.scan_metric();
    plan.needs_norms = scan_needs_norms(config);
    plan.int8_scan = codec.kind() == CodeKind::kI8;
    plan.cos_by_l2 = config.metric == Metric::kCos && plan.scan_metric == Metric::kL2;
    plan.ip_shift = has_pca && plan.scan_metric == Metric::kIp;
  }

  std::vector<std::uint8_t> serialize() const {
    BlobWriter w("VSCA", kVersion);
    w.u8(has_pca ? 1 : 0);
    if (has_pca) w.bytes(pca.serialize());
    w.bytes(codec.serialize());
    return w.finish();
  }
  static Result<State> parse(std::span<const std::uint8_t> blob) {
    BlobReader r(blob, "calibration");
    std::uint16_t version = 0;
    VECSTASH_RETURN_IF_ERROR(r.open("VSCA", kVersion, &version));
    State s;
    std::uint8_t has_pca = 0;
    VECSTASH_RETURN_IF_ERROR(r.u8(&has_pca));
    std::vector<std::uint8_t> bytes;
    if (has_pca) {
      VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
      auto pca = kernels::Pca::deserialize(bytes);
      if (!pca.is_ok()) return pca.status();
      s.has_pca = true;
      s.pca = std::move(*pca);
    }
    VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
    auto codec = kernels::Codec::deserialize(bytes);
    if (!codec.is_ok()) return codec.status();
    s.codec = std::move(*codec);
    VECSTASH_RETURN_IF_ERROR(r.finish());
    return s;
  }
};

/// Rows projected (when PCA is configured) and encoded with a calibration.
struct Encoded {
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
};
Status encode_rows(const Collection::State& state, bool norms, MatrixView<const float> rows, int threads, Encoded* out);

namespace keys {

/// Row marks (column rowmarks): cid, a type byte, the row epoch, the row (all big-endian).
inline constexpr char kDeadMark = 'D';     // the row's point was deleted or replaced
inline constexpr char kPayloadMark = 'P';  // the row's payload changed after the payload-index snapshot
inline std::string mark_prefix(std::uint32_t c, char type, std::uint64_t epoch) {
  std::string k = cid(c);
  k.push_back(type);
  storage::append_u64_be(k, epoch);
  return k;
}
inline std::string mark(std::uint32_t c, char type, std::uint64_t epoch, std::uint64_t row) {
  std::string k = mark_prefix(c, type, epoch);
  storage::append_u64_be(k, row);
  return k;
}
inline std::string payload_schema(std::uint32_t c) { return "payload_schema/" + cid(c); }

}  // namespace keys

}  // namespace vecstash::engine
