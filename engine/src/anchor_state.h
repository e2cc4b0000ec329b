// Private to engine/: the immutable anchor set of a collection and its registered models.
//
// Storage (meta column family, next to the layout in engine_shared.h):
//   "anchors/" cid          -> blob VSAN: version, strategy, seed, options, ids, vectors, relative codec
//   "model/" cid name       -> blob VSMO: name, dim, method, lambda, anchors version, the model's anchor
//                              embeddings, the fitted Procrustes and affine maps, the local correction's
//                              parameters (its residuals are recomputed from the anchors when loaded),
//                              and (format 2) the hubness correction's neighbours and weight
// The points' relative vectors and hubness terms are not stored: they are derived from the stored
// vectors and rebuilt on open (see anchors.h).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/anchors.h"
#include "vecstash/engine/collection.h"
#include "vecstash/engine/point_id.h"
#include "vecstash/kernels/align.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/relative.h"
#include "vecstash/storage/keys.h"

namespace vecstash::engine {

struct ModelState {
  ModelInfo info;
  std::vector<float> vectors;     // anchors x dim (normalised for cosine collections)
  kernels::RelativeBasis basis;   // the model's own anchors, for kRelative
  kernels::Alignment procrustes;  // model space -> collection space
  kernels::Alignment affine;
  kernels::LocalCorrection local;  // on top of `procrustes`; fitted with the collection's anchors
  // The anchors mapped by `procrustes` (anchors x collection dim, unit rows for cosine collections):
  // the reference set of the hubness term. Empty when info.hubness_weight is 0.
  std::vector<float> mapped_anchors;

  std::vector<std::uint8_t> serialize() const;
  /// The blob without `local` (it needs the collection's anchor vectors): call fit_local() next.
  static Result<ModelState> parse(std::span<const std::uint8_t> blob, bool center);
  /// info's fit figures (cosines, orthogonality gap) from the fitted maps.
  void fill_fit_info();
  /// Fit `local` on (vectors, anchor_vectors) with `options`; fills info.local_*.
  Status fit_local(MatrixView<const float> anchor_vectors, const kernels::LocalCorrectionOptions& options, int threads);
  /// Fill mapped_anchors (when info.hubness_weight > 0); `cosine` normalises them.
  Status map_anchors(bool cosine, int threads);
};

struct Collection::AnchorState {
  std::uint64_t version = 0;
  AnchorStrategy strategy = AnchorStrategy::kKMeans;
  std::uint64_t seed = 0;
  std::vector<PointId> ids;
  std::vector<float> vectors;  // count x dim, in the collection's space
  std::size_t dim = 0;
  bool center = true;
  bool store_relative = true;
  CodeKind relative_kind = CodeKind::kF16;
  std::string relative_name;
  kernels::RelativeBasis basis;  // from `vectors`
  kernels::Codec codec;          // for the relative vectors (dim = count), trained on a sample of them
  std::map<std::string, std::shared_ptr<const ModelState>> models;

  std::size_t count() const { return ids.size(); }
  std::vector<std::uint8_t> serialize() const;  // without the models
  static Result<AnchorState> parse(std::span<const std::uint8_t> blob);
};

namespace keys {
inline std::string anchors(std::uint32_t c) {
  std::string k = "anchors/";
  storage::append_u32_be(k, c);
  return k;
}
inline std::string model_prefix(std::uint32_t c) {
  std::string k = "model/";
  storage::append_u32_be(k, c);
  return k;
}
inline std::string model(std::uint32_t c, const std::string& name) { return model_prefix(c) + name; }
}  // namespace keys

}  // namespace vecstash::engine
