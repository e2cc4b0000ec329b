// Anchors, relative representations and cross-model queries of a collection.
//
// An anchor set is a fixed list of items (ids) with their vectors in the collection's own embedding
// space. It is chosen from the collection's points (random, k-means or farthest-point sampling) or
// supplied by the user, persisted with the collection and versioned: replacing it increments the
// version and removes the registered models (they embedded the old anchors).
//
// With an anchor set, a collection can
//   - keep a *relative vector* per point (Moschella et al., ICLR 2023): its cosine similarity to each
//     anchor (after subtracting the anchors' mean when `center` is set), stored as codes of
//     `relative_kind` and searchable as an additional named vector. The relative vectors are derived
//     data: they are recomputed from the stored vectors (originals when kept, else the decoded codes)
//     when the anchors change, when the collection is (re)calibrated and when it is opened;
//   - answer queries embedded by another model: a user registers the model by sending its embeddings
//     of the anchor items. Queries in that model's space are then answered by
//       kRelative:   the query's relative vector against the model's own anchor embeddings, searched
//                    against the points' relative vectors;
//       kProcrustes: the query mapped by the semi-orthogonal map fitted on the anchor pairs
//                    (kernels::Alignment), then searched like a native query (codes, index, rescoring);
//       kAffine:     the same with the ridge-regularised affine map shrunk towards the Procrustes map;
//       kLocal:      the Procrustes map plus the residuals of the query's nearest anchors (in the
//                    model's space), weighted by similarity (kernels::LocalCorrection); its parameters
//                    are chosen by leave-one-out on the anchor pairs unless the request fixes them.
//     The maps are fitted when the model is registered and persisted with it.
//   The mapped methods (all but kRelative) rank with a hubness correction by default: a mapped query
//   lands nearer the anchors' mean than a native query would, so points close to many mapped vectors
//   ("hubs") come up for every query. As CSLS (Conneau et al., "Word translation without parallel
//   data", ICLR 2018), a point's score is lowered by `hubness_weight` x r(point), where r is the mean of
//   its `hubness_neighbours` highest similarities to the model's anchors mapped by its Procrustes map
//   (CSLS ranks by 2 cos - r; halved: weight 0.5, the default from 40 anchors up, with 10 neighbours). r is derived
//   data like the relative vectors: computed at registration, for every written point, and again when the stored
//   vectors change or the collection is opened. Cosine and dot collections only (the returned score is the corrected
//   similarity); `QuerySpace::hubness_weight` overrides the weight per query (0 switches it off).
//
// Thread safety: as Collection (these are Collection methods).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/engine/point_id.h"

namespace vecstash::engine {

enum class AnchorStrategy : std::uint8_t {
  kRandom = 0,    ///< a seeded uniform sample of the live points
  kKMeans = 1,    ///< k-means (cosine for cosine collections) on the live points; each centroid's nearest point
  kFarthest = 2,  ///< farthest-point sampling from a seeded first point
  kIds = 3,       ///< the points the user names (their stored vectors)
  kVectors = 4,   ///< items the user supplies with ids and vectors (need not be points of the collection)
};
std::string_view anchor_strategy_name(AnchorStrategy s) noexcept;
Result<AnchorStrategy> parse_anchor_strategy(std::string_view name);

enum class CrossMethod : std::uint8_t { kRelative = 0, kProcrustes = 1, kAffine = 2, kLocal = 3 };
std::string_view cross_method_name(CrossMethod m) noexcept;
Result<CrossMethod> parse_cross_method(std::string_view name);
/// The names of every method, in enum order (for command-line choices and messages).
std::vector<std::string> cross_method_names();

/// Largest anchor set.
inline constexpr std::size_t kMaxAnchors = 8192;
/// Hubness correction defaults (CSLS) and limits.
inline constexpr float kDefaultHubnessWeight = 0.5f;
inline constexpr float kMaxHubnessWeight = 2.0f;
inline constexpr std::uint32_t kDefaultHubnessNeighbours = 10;
inline constexpr std::uint32_t kMaxHubnessNeighbours = 256;
/// Without an explicit weight, the correction is on (kDefaultHubnessWeight) only with at least this many
/// anchors (4 x the default neighbours): with fewer, a point's nearest mapped anchors are a large share
/// of the set, and the term mostly measures closeness to their mean rather than to a neighbourhood.
inline constexpr std::size_t kHubnessDefaultMinAnchors = 4 * kDefaultHubnessNeighbours;
/// Name of the relative vector when a request gives none.
inline constexpr std::string_view kDefaultRelativeName = "relative";

struct AnchorRequest {
  AnchorStrategy strategy = AnchorStrategy::kKMeans;
  /// Anchors to choose (random, kmeans, farthest), in [2, kMaxAnchors] and at most the live points.
  std::size_t count = 256;
  std::uint64_t seed = 42;
  /// kIds: the points; kVectors: the ids of the supplied items (unique).
  std::vector<PointId> ids;
  /// kVectors: ids.size() x dim floats (normalised for cosine collections).
  std::vector<float> vectors;
  /// Relative vectors: subtract the anchors' mean before the cosine (default true).
  bool center = true;
  /// Keep and index the points' relative vectors (needed for kRelative queries). Default true.
  bool store_relative = true;
  /// Code kind of the stored relative vectors: f32, f16, bf16, e4m3, e5m2 or i8. Default f16.
  CodeKind relative_kind = CodeKind::kF16;
  /// Name under which queries reach the relative vectors (`using`). Default "relative".
  std::string relative_name = std::string(kDefaultRelativeName);
};

struct ModelRequest {
  std::string name;  ///< 1..64 characters [A-Za-z0-9_.-], not the collection's vector name or the relative name
  std::size_t dim = 0;
  /// anchors x dim floats: the model's embeddings of the anchor items, in the anchor set's order.
  std::vector<float> vectors;
  CrossMethod default_method = CrossMethod::kLocal;
  /// Affine map: weight of the pull towards the Procrustes map, relative to trace(X^T X) / dim. [0, 1e6].
  double lambda = 1.0;
  /// kLocal: neighbours, temperature and weight of the correction (unset: chosen by leave-one-out).
  std::optional<std::uint32_t> local_neighbours;
  std::optional<float> local_temperature;
  std::optional<float> local_weight;
  /// Hubness correction of the mapped methods: weight in [0, 2] (0 = none; unset: 0.5 on cosine and
  /// dot collections with at least kHubnessDefaultMinAnchors anchors, else 0; Euclidean collections
  /// do not offer it) and neighbours in [1, min(256, anchors)] (unset: 10).
  std::optional<float> hubness_weight;
  std::optional<std::uint32_t> hubness_neighbours;
  /// The anchor set version the vectors were made for; FailedPrecondition when the collection's
  /// anchor set has changed since (nullopt = the current set).
  std::optional<std::uint64_t> anchors_version;
};

struct ModelInfo {
  std::string name;
  std::size_t dim = 0;
  CrossMethod default_method = CrossMethod::kLocal;
  double lambda = 1.0;
  std::uint64_t anchors_version = 0;
  double procrustes_fit_cosine = 0;  ///< mean cosine of mapped and target anchors
  double affine_fit_cosine = 0;
  double affine_orthogonality_gap = 0;
  std::uint32_t local_neighbours = 0;  ///< the local correction's parameters (chosen or given)
  float local_temperature = 0;
  float local_weight = 0;
  double local_fit_cosine = 0;  ///< leave-one-out mean cosine of corrected and target anchors
  float hubness_weight = 0;     ///< 0: no hubness correction (and no per-point term kept)
  std::uint32_t hubness_neighbours = 0;
  /// Advice about the fit, e.g. fewer anchors than dimensions (the maps are then under-determined).
  std::vector<std::string> warnings;
};

struct AnchorInfo {
  std::uint64_t version = 0;
  AnchorStrategy strategy = AnchorStrategy::kKMeans;
  std::size_t count = 0;
  std::uint64_t seed = 0;
  std::vector<PointId> ids;
  bool center = true;
  bool store_relative = true;
  CodeKind relative_kind = CodeKind::kF16;
  std::string relative_name;
  std::size_t relative_rows = 0;   ///< rows with a relative vector
  std::size_t relative_bytes = 0;  ///< memory of the relative codes and norms
  std::vector<ModelInfo> models;
};

/// Cross-model and relative-vector part of a search (SearchRequest::space).
struct QuerySpace {
  /// "" = the collection's own vectors; the relative vector's name; or a registered model's name.
  std::string name;
  /// Registered models: how to answer (nullopt = the model's default).
  std::optional<CrossMethod> method;
  /// Relative vector: the queries are relative vectors (anchors values each) instead of vectors of
  /// the collection's space (converted with the anchors).
  bool relative_input = false;
  /// Mapped methods: the hubness correction's weight for this query, in [0, 2] (0 = none); nullopt =
  /// the model's. A weight above 0 needs a model registered with one.
  std::optional<float> hubness_weight;
};

}  // namespace vecstash::engine
