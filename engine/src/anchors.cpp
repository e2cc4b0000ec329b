// Anchors, relative vectors and cross-model queries: the Collection methods declared in anchors.h and
// collection.h, and the persisted forms of anchor_state.h.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <unordered_set>

#include "anchor_state.h"
#include "collection_state.h"
#include "engine_shared.h"
#include "row_store.h"
#include "vecstash/common/blob.h"
#include "vecstash/common/log.h"
#include "vecstash/kernels/search.h"

namespace vecstash::engine {

namespace {

using storage::Column;
using storage::Durability;

constexpr std::uint16_t kAnchorsVersion = 1;
constexpr std::uint16_t kModelVersion = 2;  // 2: + hubness neighbours and weight
// Rows per block when computing relative vectors (bounds the float32 scratch memory).
constexpr std::size_t kRelativeChunk = 4096;
// Anchor selection by k-means or farthest-point sampling looks at most this many live points.
constexpr std::size_t kSelectionSample = 20000;
// Relative vectors used to train the relative codec.
constexpr std::size_t kRelativeTrainRows = 4096;
constexpr int kKMeansIterations = 20;

std::string_view as_chars(const std::vector<std::uint8_t>& b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool valid_model_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
           c == '-';
  });
}

// A hubness weight, at registration or per query (NaN fails too).
Status check_hubness_weight(float w) {
  if (w >= 0.0f && w <= kMaxHubnessWeight) return Status::ok();
  return Status::invalid_argument("hubness weight must be in [0, 2]");
}

bool relative_kind_ok(CodeKind k) {
  return k == CodeKind::kF32 || k == CodeKind::kF16 || k == CodeKind::kBF16 || k == CodeKind::kE4M3 ||
         k == CodeKind::kE5M2 || k == CodeKind::kI8;
}

// Deterministic Fisher-Yates (independent of the standard library's distributions).
void shuffle(std::vector<std::size_t>& v, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng() % i]);
}

// An evenly spaced subset of at most `cap` entries.
std::vector<std::size_t> spaced(const std::vector<std::size_t>& rows, std::size_t cap) {
  if (rows.size() <= cap) return rows;
  std::vector<std::size_t> out(cap);
  for (std::size_t i = 0; i < cap; ++i) out[i] = rows[i * rows.size() / cap];
  return out;
}

// Squared distance used by the selection strategies: 1 - cos for cosine collections (rows are unit),
// squared L2 otherwise.
float select_distance(const float* a, const float* b, std::size_t dim, bool cosine) {
  if (cosine) {
    double dot = 0.0;
    for (std::size_t j = 0; j < dim; ++j) dot += static_cast<double>(a[j]) * b[j];
    return static_cast<float>(1.0 - dot);
  }
  double d = 0.0;
  for (std::size_t j = 0; j < dim; ++j) {
    const double t = static_cast<double>(a[j]) - b[j];
    d += t * t;
  }
  return static_cast<float>(d);
}

// Lloyd's k-means over `x` (n x dim) with `k` centroids, seeded from a random sample of the rows.
// Cosine: centroids are renormalised and assignment is by inner product. Returns k x dim centroids.
Result<std::vector<float>> kmeans(const std::vector<float>& x, std::size_t n, std::size_t dim, std::size_t k,
                                  bool cosine, std::uint64_t seed, int threads) {
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  shuffle(order, seed);
  std::vector<float> c(k * dim);
  for (std::size_t i = 0; i < k; ++i) std::copy_n(x.data() + order[i] * dim, dim, c.data() + i * dim);
  const Metric metric = cosine ? Metric::kIp : Metric::kL2;
  std::vector<double> sum(k * dim);
  std::vector<std::size_t> members(k);
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  for (int it = 0; it < kKMeansIterations; ++it) {
    kernels::TopK nearest;
    VECSTASH_RETURN_IF_ERROR(kernels::search_f32(MatrixView<const float>(x.data(), n, dim),
                                                 MatrixView<const float>(c.data(), k, dim),
                                                 kernels::SearchParams{metric, 1, threads}, &nearest));
    std::fill(sum.begin(), sum.end(), 0.0);
    std::fill(members.begin(), members.end(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const auto a = static_cast<std::size_t>(nearest.ids[i]);
      ++members[a];
      for (std::size_t j = 0; j < dim; ++j) sum[a * dim + j] += x[i * dim + j];
    }
    for (std::size_t a = 0; a < k; ++a) {
      float* ca = c.data() + a * dim;
      if (members[a] == 0) {  // empty cluster: restart it at a random row
        std::copy_n(x.data() + (rng() % n) * dim, dim, ca);
        continue;
      }
      for (std::size_t j = 0; j < dim; ++j) ca[j] = static_cast<float>(sum[a * dim + j] / members[a]);
      if (cosine) normalize(ca, dim);
    }
  }
  return c;
}

}  // namespace

std::string_view anchor_strategy_name(AnchorStrategy s) noexcept {
  switch (s) {
    case AnchorStrategy::kRandom:
      return "random";
    case AnchorStrategy::kKMeans:
      return "kmeans";
    case AnchorStrategy::kFarthest:
      return "farthest";
    case AnchorStrategy::kIds:
      return "ids";
    case AnchorStrategy::kVectors:
      return "vectors";
  }
  return "?";
}

Result<AnchorStrategy> parse_anchor_strategy(std::string_view name) {
  for (auto s : {AnchorStrategy::kRandom, AnchorStrategy::kKMeans, AnchorStrategy::kFarthest, AnchorStrategy::kIds,
                 AnchorStrategy::kVectors}) {
    if (anchor_strategy_name(s) == name) return s;
  }
  return Status::invalid_argument("unknown anchor strategy '" + std::string(name) +
                                  "' (random, kmeans, farthest, ids or vectors)");
}

std::string_view cross_method_name(CrossMethod m) noexcept {
  switch (m) {
    case CrossMethod::kRelative:
      return "relative";
    case CrossMethod::kProcrustes:
      return "procrustes";
    case CrossMethod::kAffine:
      return "affine";
    case CrossMethod::kLocal:
      return "local";
  }
  return "?";
}

namespace {
constexpr std::array<CrossMethod, 4> kCrossMethods = {CrossMethod::kRelative, CrossMethod::kProcrustes,
                                                      CrossMethod::kAffine, CrossMethod::kLocal};
}  // namespace

std::vector<std::string> cross_method_names() {
  std::vector<std::string> out;
  for (CrossMethod m : kCrossMethods) out.emplace_back(cross_method_name(m));
  return out;
}

Result<CrossMethod> parse_cross_method(std::string_view name) {
  for (CrossMethod m : kCrossMethods) {
    if (cross_method_name(m) == name) return m;
  }
  std::string all;
  for (const std::string& n : cross_method_names()) all += (all.empty() ? "" : ", ") + n;
  return Status::invalid_argument("unknown cross-model method '" + std::string(name) + "' (" + all + ")");
}

// ---- persisted forms -----------------------------------------------------------------------------

std::vector<std::uint8_t> Collection::AnchorState::serialize() const {
  BlobWriter w("VSAN", kAnchorsVersion);
  w.u64(version);
  w.u8(static_cast<std::uint8_t>(strategy));
  w.u64(seed);
  w.u8(center ? 1 : 0);
  w.u8(store_relative ? 1 : 0);
  w.u8(static_cast<std::uint8_t>(relative_kind));
  w.bytes(
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(relative_name.data()), relative_name.size()));
  w.u32(static_cast<std::uint32_t>(dim));
  w.u32(static_cast<std::uint32_t>(ids.size()));
  for (const PointId& id : ids) {
    const std::string k = id.key();
    w.bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(k.data()), k.size()));
  }
  w.f32s(vectors);
  w.bytes(codec.serialize());
  return w.finish();
}

Result<Collection::AnchorState> Collection::AnchorState::parse(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "anchor set");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open("VSAN", kAnchorsVersion, &version));
  AnchorState a;
  std::uint8_t strategy = 0, center = 0, store = 0, kind = 0;
  VECSTASH_RETURN_IF_ERROR(r.u64(&a.version));
  VECSTASH_RETURN_IF_ERROR(r.u8(&strategy));
  VECSTASH_RETURN_IF_ERROR(r.u64(&a.seed));
  VECSTASH_RETURN_IF_ERROR(r.u8(&center));
  VECSTASH_RETURN_IF_ERROR(r.u8(&store));
  VECSTASH_RETURN_IF_ERROR(r.u8(&kind));
  VECSTASH_RETURN_IF_ERROR(r.string(&a.relative_name, 255));
  if (strategy > static_cast<std::uint8_t>(AnchorStrategy::kVectors) || kind >= kCodeKindCount) {
    return Status::corruption("anchor set: bad strategy or code kind");
  }
  a.strategy = static_cast<AnchorStrategy>(strategy);
  a.center = center != 0;
  a.store_relative = store != 0;
  a.relative_kind = static_cast<CodeKind>(kind);
  std::uint32_t dim = 0, count = 0;
  VECSTASH_RETURN_IF_ERROR(r.u32(&dim));
  VECSTASH_RETURN_IF_ERROR(r.u32(&count));
  if (count > kMaxAnchors || dim == 0 || dim > kMaxDim) return Status::corruption("anchor set: bad sizes");
  a.dim = dim;
  std::vector<std::uint8_t> bytes;
  for (std::uint32_t i = 0; i < count; ++i) {
    VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, 64));
    auto id = PointId::from_key(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    if (!id.is_ok()) return Status::corruption("anchor set: bad id: " + id.status().message());
    a.ids.push_back(*id);
  }
  VECSTASH_RETURN_IF_ERROR(r.f32s(&a.vectors, std::uint64_t{count} * dim));
  if (a.vectors.size() != std::size_t{count} * dim) return Status::corruption("anchor set: vector count");
  VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
  auto codec = kernels::Codec::deserialize(bytes);
  if (!codec.is_ok()) return codec.status();
  a.codec = std::move(*codec);
  VECSTASH_RETURN_IF_ERROR(r.finish());
  auto basis = kernels::RelativeBasis::make(MatrixView<const float>(a.vectors.data(), count, dim),
                                            kernels::RelativeOptions{a.center});
  if (!basis.is_ok()) return Status::corruption("anchor set: " + basis.status().message());
  a.basis = std::move(*basis);
  return a;
}

std::vector<std::uint8_t> ModelState::serialize() const {
  BlobWriter w("VSMO", kModelVersion);
  w.bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(info.name.data()), info.name.size()));
  w.u32(static_cast<std::uint32_t>(info.dim));
  w.u8(static_cast<std::uint8_t>(info.default_method));
  w.f64s(std::span<const double>(&info.lambda, 1));
  w.u64(info.anchors_version);
  w.f32s(vectors);
  w.bytes(procrustes.serialize());
  w.bytes(affine.serialize());
  const kernels::LocalCorrectionParams& lp = local.params();
  w.u32(lp.neighbours);
  w.f32s(std::span<const float>(std::array<float, 2>{lp.temperature, lp.weight}));
  w.f64s(std::span<const double>(&info.local_fit_cosine, 1));
  w.u32(info.hubness_neighbours);
  w.f32s(std::span<const float>(&info.hubness_weight, 1));
  return w.finish();
}

Result<ModelState> ModelState::parse(std::span<const std::uint8_t> blob, bool center) {
  BlobReader r(blob, "model");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open("VSMO", kModelVersion, &version));
  ModelState m;
  VECSTASH_RETURN_IF_ERROR(r.string(&m.info.name, 64));
  std::uint32_t dim = 0;
  std::uint8_t method = 0;
  VECSTASH_RETURN_IF_ERROR(r.u32(&dim));
  VECSTASH_RETURN_IF_ERROR(r.u8(&method));
  std::vector<double> lambda;
  VECSTASH_RETURN_IF_ERROR(r.f64s(&lambda, 1));
  VECSTASH_RETURN_IF_ERROR(r.u64(&m.info.anchors_version));
  if (dim == 0 || dim > kMaxDim || method > static_cast<std::uint8_t>(CrossMethod::kLocal) || lambda.size() != 1) {
    return Status::corruption("model: bad header");
  }
  m.info.dim = dim;
  m.info.default_method = static_cast<CrossMethod>(method);
  m.info.lambda = lambda[0];
  VECSTASH_RETURN_IF_ERROR(r.f32s(&m.vectors, std::uint64_t{kMaxAnchors} * dim));
  if (m.vectors.empty() || m.vectors.size() % dim != 0) return Status::corruption("model: vector count");
  std::vector<std::uint8_t> bytes;
  VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
  auto p = kernels::Alignment::deserialize(bytes);
  if (!p.is_ok()) return p.status();
  VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
  auto a = kernels::Alignment::deserialize(bytes);
  if (!a.is_ok()) return a.status();
  std::uint32_t local_k = 0;
  std::vector<float> local_tw;
  VECSTASH_RETURN_IF_ERROR(r.u32(&local_k));
  std::vector<double> local_fit;
  VECSTASH_RETURN_IF_ERROR(r.f32s(&local_tw, 2));
  VECSTASH_RETURN_IF_ERROR(r.f64s(&local_fit, 1));
  if (version >= 2) {  // format 1 (before the hubness correction): none
    std::vector<float> hub_weight;
    VECSTASH_RETURN_IF_ERROR(r.u32(&m.info.hubness_neighbours));
    VECSTASH_RETURN_IF_ERROR(r.f32s(&hub_weight, 1));
    if (hub_weight.size() != 1 || !(hub_weight[0] >= 0.0f && hub_weight[0] <= kMaxHubnessWeight) ||
        m.info.hubness_neighbours > kMaxHubnessNeighbours || (hub_weight[0] > 0.0f && m.info.hubness_neighbours == 0)) {
      return Status::corruption("model: hubness parameters");
    }
    m.info.hubness_weight = hub_weight[0];
  }
  VECSTASH_RETURN_IF_ERROR(r.finish());
  if (local_tw.size() != 2 || local_fit.size() != 1) return Status::corruption("model: local correction parameters");
  m.info.local_fit_cosine = local_fit[0];
  m.info.local_neighbours = local_k;
  m.info.local_temperature = local_tw[0];
  m.info.local_weight = local_tw[1];
  m.procrustes = std::move(*p);
  m.affine = std::move(*a);
  auto basis = kernels::RelativeBasis::make(MatrixView<const float>(m.vectors.data(), m.vectors.size() / dim, dim),
                                            kernels::RelativeOptions{center});
  if (!basis.is_ok()) return Status::corruption("model: " + basis.status().message());
  m.basis = std::move(*basis);
  m.fill_fit_info();
  return m;
}

void ModelState::fill_fit_info() {
  info.procrustes_fit_cosine = procrustes.fit_cosine();
  info.affine_fit_cosine = affine.fit_cosine();
  info.affine_orthogonality_gap = affine.orthogonality_gap();
}

namespace {

// Fewer anchors than the model's or the collection's dimension leave the linear maps under-determined:
// they fit the anchors (nearly) exactly and say little about other vectors.
std::vector<std::string> model_warnings(std::size_t anchors, std::size_t model_dim, std::size_t collection_dim) {
  std::vector<std::string> out;
  const std::size_t need = std::max(model_dim, collection_dim);
  if (anchors < need) {
    out.push_back(std::to_string(anchors) + " anchors for " + std::to_string(model_dim) + " model and " +
                  std::to_string(collection_dim) +
                  " collection dimensions: the maps are under-determined (they fit the anchors almost exactly "
                  "and generalise poorly); use at least " +
                  std::to_string(need) + " anchors, preferably several times more");
  }
  return out;
}

}  // namespace

Status ModelState::fit_local(MatrixView<const float> anchor_vectors, const kernels::LocalCorrectionOptions& options,
                             int threads) {
  const std::size_t m = anchor_vectors.rows;
  auto lc = kernels::LocalCorrection::fit(procrustes, MatrixView<const float>(vectors.data(), m, info.dim),
                                          anchor_vectors, options, threads);
  if (!lc.is_ok()) return lc.status();
  local = std::move(lc).value();
  info.local_neighbours = local.params().neighbours;
  info.local_temperature = local.params().temperature;
  info.local_weight = local.params().weight;
  if (options.measure) info.local_fit_cosine = local.loo_cosine();  // else: as loaded
  return Status::ok();
}

Status ModelState::map_anchors(bool cosine, int threads) {
  mapped_anchors.clear();
  if (info.hubness_weight <= 0.0f) return Status::ok();
  const std::size_t m = vectors.size() / info.dim, out_dim = procrustes.params().dim_out;
  mapped_anchors.resize(m * out_dim);
  VECSTASH_RETURN_IF_ERROR(procrustes.apply(MatrixView<const float>(vectors.data(), m, info.dim),
                                            MatrixView<float>(mapped_anchors.data(), m, out_dim), threads));
  if (cosine) {
    for (std::size_t i = 0; i < m; ++i) normalize(mapped_anchors.data() + i * out_dim, out_dim);
  }
  return Status::ok();
}

// ---- relative vectors ----------------------------------------------------------------------------

Status Collection::relative_of(const AnchorState& a, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                               std::span<float> norms) const {
  EngineShared* shared = shared_;
  if (shared->gpu) {
    std::lock_guard lock(shared->gpu_mu);
    const Status s = shared->gpu->relative_encode(a.basis, a.codec, rows, codes, norms);
    if (s.is_ok()) return s;
    log_once(LogLevel::kWarn, "gpu-relative-failed",
             "GPU relative encode failed (" + s.to_string() + "); using the CPU");
  }
  return a.basis.encode(a.codec, rows, codes, norms, shared->options.threads);
}

Status Collection::for_stored_blocks(std::size_t first, std::size_t count,
                                     const std::function<Status(std::size_t, MatrixView<const float>)>& fn) const {
  for (std::size_t begin = 0; begin < count; begin += kRelativeChunk) {
    const std::size_t n = std::min(kRelativeChunk, count - begin);
    std::vector<std::size_t> rows(n);
    std::iota(rows.begin(), rows.end(), first + begin);
    auto x = stored_rows(rows);
    if (!x.is_ok()) return x.status();
    VECSTASH_RETURN_IF_ERROR(fn(begin, MatrixView<const float>(x->data(), n, config_.dim)));
  }
  return Status::ok();
}

Status Collection::compute_relative(const AnchorState& a, std::size_t first, std::size_t count,
                                    std::vector<std::uint8_t>* codes, std::vector<float>* norms) const {
  const std::size_t cs = a.codec.code_size();
  codes->assign(count * cs, 0);
  norms->assign(count, 0.0f);
  return for_stored_blocks(first, count, [&](std::size_t begin, MatrixView<const float> x) {
    return relative_of(a, x, std::span<std::uint8_t>(codes->data() + begin * cs, x.rows * cs),
                       std::span<float>(norms->data() + begin, x.rows));
  });
}

Status Collection::refresh_derived_locked() {
  const auto a = anchors_;
  if (!a) return Status::ok();
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
  if (a->store_relative) VECSTASH_RETURN_IF_ERROR(compute_relative(*a, 0, rows_->rows(), &codes, &norms));
  std::unordered_map<std::string, std::vector<float>> hubs;
  for (const auto& [model_name, model] : a->models) {
    if (model->info.hubness_weight <= 0.0f) continue;
    VECSTASH_RETURN_IF_ERROR(compute_hubness(*model, 0, rows_->rows(), &hubs[model_name]));
  }
  std::unique_lock lock(mu_);
  if (a->store_relative) {
    rel_codes_ = std::move(codes);
    rel_norms_ = std::move(norms);
  }
  hubs_ = std::move(hubs);
  return Status::ok();
}

Status Collection::hubness_of(const ModelState& model, MatrixView<const float> rows, std::span<float> out) const {
  const std::size_t k = model.info.hubness_neighbours, dim = config_.dim;
  const std::size_t m = model.mapped_anchors.size() / dim;
  if (rows.rows == 0) return Status::ok();
  if (m == 0 || k == 0 || k > m || out.size() != rows.rows) {
    return Status::internal("hubness: model '" + model.info.name + "' has no mapped anchors");
  }
  // Each row's k nearest mapped anchors, by the collection's similarity (cosine or inner product).
  kernels::TopK near;
  const Metric metric = config_.metric == Metric::kCos ? Metric::kCos : Metric::kIp;
  VECSTASH_RETURN_IF_ERROR(kernels::search_f32(rows, MatrixView<const float>(model.mapped_anchors.data(), m, dim),
                                               kernels::SearchParams{metric, k, shared_->options.threads}, &near));
  for (std::size_t i = 0; i < rows.rows; ++i) {
    double sum = 0.0;
    for (float v : near.scores_of(i)) sum += v;
    out[i] = static_cast<float>(sum / static_cast<double>(k));
  }
  return Status::ok();
}

Status Collection::compute_hubness(const ModelState& model, std::size_t first, std::size_t count,
                                   std::vector<float>* out) const {
  out->assign(count, 0.0f);
  return for_stored_blocks(first, count, [&](std::size_t begin, MatrixView<const float> x) {
    return hubness_of(model, x, std::span<float>(out->data() + begin, x.rows));
  });
}

// ---- anchor sets ---------------------------------------------------------------------------------

Result<AnchorInfo> Collection::set_anchors(const AnchorRequest& req) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const std::size_t dim = config_.dim;
  const bool cosine = config_.metric == Metric::kCos;
  const int threads = shared_->options.threads;
  if (!relative_kind_ok(req.relative_kind)) {
    return Status::invalid_argument("relative vectors: kind must be f32, f16, bf16, e4m3, e5m2 or i8");
  }
  if (req.relative_name.empty() || req.relative_name.size() > 255) {
    return Status::invalid_argument("relative vectors: name must have 1 to 255 characters");
  }
  if (config_.vector_name && req.relative_name == *config_.vector_name) {
    return Status::invalid_argument("relative vectors: name '" + req.relative_name +
                                    "' is the collection's vector name");
  }
  const std::vector<std::size_t> live = rows_->live_rows();
  auto a = std::make_shared<AnchorState>();
  a->version = (anchors_ ? anchors_->version : 0) + 1;
  a->strategy = req.strategy;
  a->seed = req.seed;
  a->dim = dim;
  a->center = req.center;
  a->store_relative = req.store_relative;
  a->relative_kind = req.relative_kind;
  a->relative_name = req.relative_name;

  std::vector<std::size_t> chosen;  // rows, for the strategies that pick points
  switch (req.strategy) {
    case AnchorStrategy::kRandom:
    case AnchorStrategy::kKMeans:
    case AnchorStrategy::kFarthest: {
      if (req.count < 2 || req.count > kMaxAnchors) {
        return Status::invalid_argument("anchors: count must be in [2, " + std::to_string(kMaxAnchors) + "]");
      }
      if (req.count > live.size()) {
        return Status::invalid_argument("anchors: count " + std::to_string(req.count) + " is more than the " +
                                        std::to_string(live.size()) + " points of the collection");
      }
      if (!req.ids.empty() || !req.vectors.empty()) {
        return Status::invalid_argument("anchors: ids and vectors are only for the 'ids' and 'vectors' strategies");
      }
      if (req.strategy == AnchorStrategy::kRandom) {
        std::vector<std::size_t> order = live;
        shuffle(order, req.seed);
        chosen.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(req.count));
        break;
      }
      // k-means and farthest-point sampling work on a seeded sample of the live points.
      std::vector<std::size_t> pool = live;
      if (pool.size() > kSelectionSample) {
        shuffle(pool, req.seed);
        pool.resize(kSelectionSample);
        std::sort(pool.begin(), pool.end());
      }
      auto pool_rows = stored_rows(pool);
      if (!pool_rows.is_ok()) return with_collection(pool_rows.status(), name_);
      const std::vector<float> x = std::move(*pool_rows);
      const std::size_t n = pool.size();
      if (req.strategy == AnchorStrategy::kFarthest) {
        std::mt19937_64 rng(req.seed);
        std::vector<float> nearest(n, std::numeric_limits<float>::infinity());
        std::vector<char> taken(n, 0);
        std::size_t next = rng() % n;
        for (std::size_t c = 0; c < req.count; ++c) {
          chosen.push_back(pool[next]);
          taken[next] = 1;
          const float* p = x.data() + next * dim;
          std::size_t best = n;
          float best_d = -1.0f;
          for (std::size_t i = 0; i < n; ++i) {
            if (taken[i]) continue;
            nearest[i] = std::min(nearest[i], select_distance(x.data() + i * dim, p, dim, cosine));
            if (nearest[i] > best_d) {
              best_d = nearest[i];
              best = i;
            }
          }
          if (best == n) break;
          next = best;
        }
      } else {
        auto centroids = kmeans(x, n, dim, req.count, cosine, req.seed, threads);
        if (!centroids.is_ok()) return centroids.status();
        // Each centroid's nearest point not taken yet (anchors must be items the second model can embed).
        const std::size_t probe = std::min<std::size_t>(n, 32);
        kernels::TopK near;
        VECSTASH_RETURN_IF_ERROR(kernels::search_f32(
            MatrixView<const float>(centroids->data(), req.count, dim), MatrixView<const float>(x.data(), n, dim),
            kernels::SearchParams{cosine ? Metric::kIp : Metric::kL2, probe, threads}, &near));
        std::vector<char> taken(n, 0);
        std::vector<std::size_t> order(n);
        std::iota(order.begin(), order.end(), std::size_t{0});
        shuffle(order, req.seed + 1);
        std::size_t fallback = 0;
        for (std::size_t c = 0; c < req.count; ++c) {
          std::size_t pick = n;
          for (std::int64_t id : near.ids_of(c)) {
            if (id >= 0 && !taken[static_cast<std::size_t>(id)]) {
              pick = static_cast<std::size_t>(id);
              break;
            }
          }
          while (pick == n && fallback < n) {
            if (!taken[order[fallback]]) pick = order[fallback];
            ++fallback;
          }
          taken[pick] = 1;
          chosen.push_back(pool[pick]);
        }
      }
      break;
    }
    case AnchorStrategy::kIds: {
      if (req.ids.size() < 2 || req.ids.size() > kMaxAnchors) {
        return Status::invalid_argument("anchors: give between 2 and " + std::to_string(kMaxAnchors) + " ids");
      }
      if (!req.vectors.empty()) return Status::invalid_argument("anchors: vectors are only for the 'vectors' strategy");
      std::unordered_set<PointId, PointIdHash> seen;
      std::shared_lock lock(mu_);
      for (const PointId& id : req.ids) {
        if (!seen.insert(id).second) return Status::invalid_argument("anchors: id " + id.to_string() + " given twice");
        const auto row = rows_->find(id);
        if (!row) return Status::not_found("anchors: point " + id.to_string() + " does not exist");
        chosen.push_back(*row);
      }
      break;
    }
    case AnchorStrategy::kVectors: {
      const std::size_t m = req.ids.size();
      if (m < 2 || m > kMaxAnchors) {
        return Status::invalid_argument("anchors: give between 2 and " + std::to_string(kMaxAnchors) +
                                        " anchors (ids with vectors)");
      }
      if (req.vectors.size() != m * dim) {
        return Status::invalid_argument("anchors: " + std::to_string(req.vectors.size()) + " vector values for " +
                                        std::to_string(m) + " anchors of dimension " + std::to_string(dim));
      }
      std::unordered_set<PointId, PointIdHash> seen;
      for (const PointId& id : req.ids) {
        if (!seen.insert(id).second) return Status::invalid_argument("anchors: id " + id.to_string() + " given twice");
      }
      for (std::size_t i = 0; i < req.vectors.size(); ++i) {
        if (!std::isfinite(req.vectors[i])) {
          return Status::invalid_argument("anchors: anchor " + std::to_string(i / dim) + ", element " +
                                          std::to_string(i % dim) + " is not a finite number");
        }
      }
      a->ids = req.ids;
      a->vectors = req.vectors;
      if (cosine) {
        for (std::size_t i = 0; i < m; ++i) normalize(a->vectors.data() + i * dim, dim);
      }
      break;
    }
  }
  if (req.strategy != AnchorStrategy::kVectors) {
    auto vectors = stored_rows(chosen);
    if (!vectors.is_ok()) return with_collection(vectors.status(), name_);
    a->vectors = std::move(*vectors);
    std::shared_lock lock(mu_);
    for (std::size_t row : chosen) a->ids.push_back(rows_->id(row));
  }
  const std::size_t m = a->ids.size();
  auto basis = kernels::RelativeBasis::make(MatrixView<const float>(a->vectors.data(), m, dim),
                                            kernels::RelativeOptions{a->center});
  if (!basis.is_ok()) return with_collection(basis.status(), name_);
  a->basis = std::move(*basis);

  // The relative codec learns from the relative vectors of a sample of the points (or of the anchors
  // themselves when the collection has too few points).
  {
    std::vector<float> x;
    std::size_t n = 0;
    if (live.size() >= 2) {
      const std::vector<std::size_t> sample = spaced(live, kRelativeTrainRows);
      auto sampled = stored_rows(sample);
      if (!sampled.is_ok()) return with_collection(sampled.status(), name_);
      x = std::move(*sampled);
      n = sample.size();
    } else {
      x = a->vectors;
      n = m;
    }
    std::vector<float> rel(n * m);
    VECSTASH_RETURN_IF_ERROR(
        a->basis.transform(MatrixView<const float>(x.data(), n, dim), MatrixView<float>(rel.data(), n, m), threads));
    kernels::CodecOptions co;
    co.kind = req.relative_kind;
    auto codec = kernels::Codec::train(co, MatrixView<const float>(rel.data(), n, m));
    if (!codec.is_ok()) return with_collection(codec.status(), name_);
    a->codec = std::move(*codec);
  }

  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
  if (a->store_relative)
    VECSTASH_RETURN_IF_ERROR(with_collection(compute_relative(*a, 0, rows_->rows(), &codes, &norms), name_));

  storage::WriteBatch batch;
  const auto blob = a->serialize();
  batch.put(Column::kMeta, keys::anchors(cid_), as_chars(blob));
  if (anchors_) {
    for (const auto& [model_name, model] : anchors_->models) batch.erase(Column::kMeta, keys::model(cid_, model_name));
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  {
    std::unique_lock lock(mu_);
    anchors_ = a;
    rel_codes_ = std::move(codes);
    rel_norms_ = std::move(norms);
    hubs_.clear();  // the models went with the old anchor set
  }
  log(LogLevel::kInfo, "collection '" + name_ + "': anchor set version " + std::to_string(a->version) + " (" +
                           std::string(anchor_strategy_name(a->strategy)) + ", " + std::to_string(m) + " anchors)");
  return *anchors();
}

std::optional<AnchorInfo> Collection::anchors() const {
  std::shared_lock lock(mu_);
  if (!anchors_) return std::nullopt;
  const AnchorState& a = *anchors_;
  AnchorInfo info;
  info.version = a.version;
  info.strategy = a.strategy;
  info.count = a.count();
  info.seed = a.seed;
  info.ids = a.ids;
  info.center = a.center;
  info.store_relative = a.store_relative;
  info.relative_kind = a.relative_kind;
  info.relative_name = a.relative_name;
  info.relative_rows = rel_norms_.size();
  info.relative_bytes = rel_codes_.capacity() + rel_norms_.capacity() * sizeof(float);
  for (const auto& [model_name, model] : a.models) info.models.push_back(model->info);
  return info;
}

Result<std::vector<float>> Collection::anchor_vectors() const {
  std::shared_lock lock(mu_);
  if (!anchors_) return Status::not_found("collection '" + name_ + "' has no anchors");
  return anchors_->vectors;
}

Status Collection::clear_anchors() {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (!anchors_) return Status::not_found("collection '" + name_ + "' has no anchors");
  storage::WriteBatch batch;
  batch.erase(Column::kMeta, keys::anchors(cid_));
  for (const auto& [model_name, model] : anchors_->models) batch.erase(Column::kMeta, keys::model(cid_, model_name));
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  std::unique_lock lock(mu_);
  anchors_.reset();
  rel_codes_ = {};
  rel_norms_ = {};
  hubs_.clear();
  return Status::ok();
}

Result<ModelInfo> Collection::register_model(const ModelRequest& req) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const auto a = anchors_;
  if (!a) {
    return Status::failed_precondition("collection '" + name_ + "' has no anchors: set an anchor set first");
  }
  if (req.anchors_version && *req.anchors_version != a->version) {
    return Status::failed_precondition("collection '" + name_ + "': the anchor set changed (version " +
                                       std::to_string(a->version) + ", the model's vectors are for version " +
                                       std::to_string(*req.anchors_version) + "); send them again");
  }
  if (!valid_model_name(req.name)) {
    return Status::invalid_argument("model name must have 1 to 64 characters from [A-Za-z0-9_.-]");
  }
  if (req.name == a->relative_name || (config_.vector_name && req.name == *config_.vector_name)) {
    return Status::invalid_argument("model name '" + req.name + "' is already the name of a vector of the collection");
  }
  if (req.dim < 1 || req.dim > kMaxDim) {
    return Status::invalid_argument("model dimension must be in [1, " + std::to_string(kMaxDim) + "]");
  }
  const std::size_t m = a->count();
  if (req.vectors.size() != m * req.dim) {
    return Status::invalid_argument("model '" + req.name + "': " + std::to_string(req.vectors.size()) +
                                    " values; expected the embeddings of all " + std::to_string(m) +
                                    " anchors, of dimension " + std::to_string(req.dim));
  }
  for (std::size_t i = 0; i < req.vectors.size(); ++i) {
    if (!std::isfinite(req.vectors[i])) {
      return Status::invalid_argument("model '" + req.name + "': anchor " + std::to_string(i / req.dim) + ", element " +
                                      std::to_string(i % req.dim) + " is not a finite number");
    }
  }
  if (!(req.lambda >= 0.0 && req.lambda <= 1e6)) return Status::invalid_argument("lambda must be in [0, 1e6]");
  const bool euclidean = config_.metric == Metric::kL2;
  const float hub_weight =
      req.hubness_weight.value_or(euclidean || m < kHubnessDefaultMinAnchors ? 0.0f : kDefaultHubnessWeight);
  VECSTASH_RETURN_IF_ERROR(check_hubness_weight(hub_weight));
  if (euclidean && hub_weight > 0.0f) {
    return Status::invalid_argument("the hubness correction needs a cosine or dot collection; '" + name_ +
                                    "' is Euclidean (set its weight to 0)");
  }
  const std::uint32_t hub_cap = static_cast<std::uint32_t>(std::min<std::size_t>(kMaxHubnessNeighbours, m));
  if (req.hubness_neighbours && (*req.hubness_neighbours < 1 || *req.hubness_neighbours > hub_cap)) {
    return Status::invalid_argument("hubness neighbours must be in [1, " + std::to_string(hub_cap) +
                                    "] (at most 256 and the anchor count)");
  }
  if (req.hubness_neighbours && hub_weight <= 0.0f) {
    return Status::invalid_argument("hubness neighbours given with a weight of 0 (no correction): give a weight too");
  }
  auto model = std::make_shared<ModelState>();
  model->vectors = req.vectors;
  if (config_.metric == Metric::kCos) {
    for (std::size_t i = 0; i < m; ++i) normalize(model->vectors.data() + i * req.dim, req.dim);
  }
  const MatrixView<const float> src(model->vectors.data(), m, req.dim);
  const MatrixView<const float> dst(a->vectors.data(), m, a->dim);
  auto basis = kernels::RelativeBasis::make(src, kernels::RelativeOptions{a->center});
  if (!basis.is_ok()) return with_collection(basis.status(), name_);
  model->basis = std::move(*basis);
  auto procrustes =
      kernels::Alignment::fit(src, dst, kernels::AlignOptions{kernels::AlignMethod::kProcrustes, true, 0.0});
  if (!procrustes.is_ok()) return with_collection(procrustes.status(), name_);
  auto affine =
      kernels::Alignment::fit(src, dst, kernels::AlignOptions{kernels::AlignMethod::kAffine, true, req.lambda});
  if (!affine.is_ok()) return with_collection(affine.status(), name_);
  model->procrustes = std::move(*procrustes);
  model->affine = std::move(*affine);
  model->info.name = req.name;
  model->info.dim = req.dim;
  model->info.default_method = req.default_method;
  model->info.lambda = req.lambda;
  model->info.anchors_version = a->version;
  model->fill_fit_info();
  model->info.warnings = model_warnings(m, req.dim, a->dim);
  model->info.hubness_weight = hub_weight;
  model->info.hubness_neighbours =
      hub_weight > 0.0f ? req.hubness_neighbours.value_or(std::min(kDefaultHubnessNeighbours, hub_cap)) : 0;
  VECSTASH_RETURN_IF_ERROR(with_collection(
      model->fit_local(
          dst, kernels::LocalCorrectionOptions{req.local_neighbours, req.local_temperature, req.local_weight, true},
          shared_->options.threads),
      name_));
  VECSTASH_RETURN_IF_ERROR(
      with_collection(model->map_anchors(config_.metric == Metric::kCos, shared_->options.threads), name_));
  std::vector<float> hub;
  if (hub_weight > 0.0f)
    VECSTASH_RETURN_IF_ERROR(with_collection(compute_hubness(*model, 0, rows_->rows(), &hub), name_));

  const auto blob = model->serialize();
  VECSTASH_RETURN_IF_ERROR(
      with_collection(shared_->store->put(Column::kMeta, keys::model(cid_, req.name), as_chars(blob)), name_));
  auto next = std::make_shared<AnchorState>(*a);
  next->models[req.name] = model;
  std::unique_lock lock(mu_);
  anchors_ = next;
  if (hub_weight > 0.0f) {
    hubs_[req.name] = std::move(hub);
  } else {
    hubs_.erase(req.name);
  }
  return model->info;
}

Status Collection::remove_model(const std::string& name) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const auto a = anchors_;
  if (!a || !a->models.contains(name)) {
    return Status::not_found("collection '" + name_ + "' has no model '" + name + "'");
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->erase(Column::kMeta, keys::model(cid_, name)), name_));
  auto next = std::make_shared<AnchorState>(*a);
  next->models.erase(name);
  std::unique_lock lock(mu_);
  anchors_ = next;
  hubs_.erase(name);
  return Status::ok();
}

Status Collection::load_anchors() {
  storage::Store& store = *shared_->store;
  auto blob = store.get(Column::kMeta, keys::anchors(cid_));
  if (!blob.is_ok()) return blob.status();
  if (!blob->has_value()) return Status::ok();
  auto parsed = AnchorState::parse(to_bytes(**blob));
  if (!parsed.is_ok()) return parsed.status();
  auto a = std::make_shared<AnchorState>(std::move(*parsed));
  if (a->dim != config_.dim) return Status::corruption("anchor set: dimension differs from the collection's");
  Status model_status;
  VECSTASH_RETURN_IF_ERROR(
      store.scan(Column::kMeta, keys::model_prefix(cid_), [&](std::string_view, std::string_view v) {
        auto model = ModelState::parse(to_bytes(v), a->center);
        if (!model.is_ok()) {
          model_status = model.status();
          return false;
        }
        if (model->info.anchors_version != a->version || model->vectors.size() != a->count() * model->info.dim) {
          log(LogLevel::kWarn,
              "collection '" + name_ + "': model '" + model->info.name + "' belongs to another anchor set; ignored");
          return true;
        }
        // The parameters chosen at registration, without measuring them again.
        const kernels::LocalCorrectionOptions stored{model->info.local_neighbours, model->info.local_temperature,
                                                     model->info.local_weight, /*measure=*/false};
        const Status fitted = model->fit_local(MatrixView<const float>(a->vectors.data(), a->count(), a->dim), stored,
                                               shared_->options.threads);
        if (!fitted.is_ok()) {
          model_status = Status::corruption("model '" + model->info.name + "': " + fitted.message());
          return false;
        }
        const Status mapped = model->map_anchors(config_.metric == Metric::kCos, shared_->options.threads);
        if (!mapped.is_ok()) {
          model_status = Status::corruption("model '" + model->info.name + "': " + mapped.message());
          return false;
        }
        std::string model_name = model->info.name;  // before the move below
        model->info.warnings = model_warnings(a->count(), model->info.dim, a->dim);
        a->models[model_name] = std::make_shared<ModelState>(std::move(*model));
        return true;
      }));
  VECSTASH_RETURN_IF_ERROR(model_status);
  anchors_ = a;
  return refresh_derived_locked();
}

// ---- searches ------------------------------------------------------------------------------------

Result<std::vector<std::vector<ScoredPoint>>> Collection::search_space(const SearchRequest& req) const {
  std::shared_ptr<const AnchorState> a;
  {
    std::shared_lock lock(mu_);
    a = anchors_;
  }
  const std::string& name = req.space.name;
  if (!a) {
    return Status::invalid_argument("collection '" + name_ + "' has no vector named '" + name +
                                    "' (it has no anchors, so no relative vectors or models)");
  }
  const bool cosine = config_.metric == Metric::kCos;
  const int threads = shared_->options.threads;
  const std::size_t nq = req.nq;
  const std::size_t m = a->count();
  auto check_queries = [&](std::size_t dim) -> Status {
    if (req.queries.size() != nq * dim) {
      return Status::invalid_argument("collection '" + name_ + "': " + std::to_string(req.queries.size()) +
                                      " query values for " + std::to_string(nq) + " queries of dimension " +
                                      std::to_string(dim) + " ('" + name + "')");
    }
    for (std::size_t i = 0; i < req.queries.size(); ++i) {
      if (!std::isfinite(req.queries[i])) {
        return Status::invalid_argument("query " + std::to_string(i / dim) + ": element " + std::to_string(i % dim) +
                                        " is not a finite number");
      }
    }
    return Status::ok();
  };
  if (name == a->relative_name) {
    if (req.space.hubness_weight)
      return Status::invalid_argument("the hubness correction applies to models, not to '" + name + "'");
    if (req.space.method)
      return Status::invalid_argument("a cross-model method applies to models, not to '" + name + "'");
    if (req.space.relative_input) {
      VECSTASH_RETURN_IF_ERROR(check_queries(m));
      return search_relative(*a, MatrixView<const float>(req.queries.data(), nq, m), req);
    }
    VECSTASH_RETURN_IF_ERROR(check_queries(config_.dim));
    std::vector<float> q(req.queries.begin(), req.queries.end());
    if (cosine) {
      for (std::size_t i = 0; i < nq; ++i) normalize(q.data() + i * config_.dim, config_.dim);
    }
    std::vector<float> rel(nq * m);
    VECSTASH_RETURN_IF_ERROR(a->basis.transform(MatrixView<const float>(q.data(), nq, config_.dim),
                                                MatrixView<float>(rel.data(), nq, m), threads));
    return search_relative(*a, MatrixView<const float>(rel.data(), nq, m), req);
  }
  const auto it = a->models.find(name);
  if (it == a->models.end()) {
    return Status::invalid_argument("collection '" + name_ + "' has no vector or model named '" + name + "'");
  }
  if (req.space.relative_input) {
    return Status::invalid_argument("relative queries go to '" + a->relative_name + "', not to a model");
  }
  const ModelState& model = *it->second;
  const std::size_t dim = model.info.dim;
  VECSTASH_RETURN_IF_ERROR(check_queries(dim));
  std::vector<float> q(req.queries.begin(), req.queries.end());
  if (cosine) {
    for (std::size_t i = 0; i < nq; ++i) normalize(q.data() + i * dim, dim);
  }
  const CrossMethod method = req.space.method.value_or(model.info.default_method);
  if (method == CrossMethod::kRelative) {
    if (req.space.hubness_weight && *req.space.hubness_weight != 0.0f)
      return Status::invalid_argument("the hubness correction applies to the mapped methods, not to 'relative'");
    std::vector<float> rel(nq * m);
    VECSTASH_RETURN_IF_ERROR(model.basis.transform(MatrixView<const float>(q.data(), nq, dim),
                                                   MatrixView<float>(rel.data(), nq, m), threads));
    return search_relative(*a, MatrixView<const float>(rel.data(), nq, m), req);
  }
  const kernels::Alignment& map = method == CrossMethod::kAffine ? model.affine : model.procrustes;
  std::vector<float> mapped(nq * config_.dim);
  const MatrixView<const float> qv(q.data(), nq, dim);
  VECSTASH_RETURN_IF_ERROR(map.apply(qv, MatrixView<float>(mapped.data(), nq, config_.dim), threads));
  if (method == CrossMethod::kLocal) {
    VECSTASH_RETURN_IF_ERROR(model.local.apply(qv, MatrixView<float>(mapped.data(), nq, config_.dim), threads));
  }
  const float hub_weight = req.space.hubness_weight.value_or(model.info.hubness_weight);
  VECSTASH_RETURN_IF_ERROR(check_hubness_weight(hub_weight));
  if (hub_weight > 0.0f && model.info.hubness_weight <= 0.0f) {
    return Status::invalid_argument("model '" + name +
                                    "' was registered without the hubness correction (weight 0); register it "
                                    "with a weight to use one");
  }
  SearchRequest native = req;
  native.space = QuerySpace{};
  native.queries = std::move(mapped);
  if (hub_weight <= 0.0f) return search_impl(native, nullptr);
  const HubBias hub{name, hub_weight};
  return search_impl(native, &hub);
}

Result<std::vector<std::vector<ScoredPoint>>> Collection::search_relative(const AnchorState& a,
                                                                          MatrixView<const float> rel,
                                                                          const SearchRequest& req) const {
  if (!a.store_relative) {
    return Status::failed_precondition(
        "collection '" + name_ + "' keeps no relative vectors (its anchor set was made with relative.store false)");
  }
  if (req.limit == 0) return Status::invalid_argument("limit must be at least 1");
  if (req.offset + req.limit > kernels::kMaxK) {
    return Status::invalid_argument("offset + limit must be at most " + std::to_string(kernels::kMaxK));
  }
  if (req.score_threshold && !std::isfinite(*req.score_threshold)) {
    return Status::invalid_argument("score_threshold must be a finite number");
  }
  if (rel.rows == 0) return std::vector<std::vector<ScoredPoint>>{};
  std::shared_lock lock(mu_);
  if (!anchors_ || anchors_->version != a.version) {
    return Status::unavailable("collection '" + name_ + "': the anchor set changed during the search; retry");
  }
  auto allowed = allow_bits(req.filter);
  if (!allowed.is_ok()) return with_collection(allowed.status(), name_);
  const std::vector<std::uint64_t>& allow = *allowed;
  const std::size_t rows = rel_norms_.size();
  kernels::CodeView view{rel_codes_.data(), rows, rel_norms_.data(), allow.data()};
  kernels::TopK found;
  VECSTASH_RETURN_IF_ERROR(kernels::search_cpu(
      a.codec, rel, view, kernels::SearchParams{Metric::kCos, req.offset + req.limit, shared_->options.threads},
      &found));
  return collect_results(found, req, false);
}

}  // namespace vecstash::engine
