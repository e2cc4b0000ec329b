// The storage-versus-accuracy sweep: every code variant x PCA level on one data set, measured
// against exact float32 search.
//
// Per data set: cosine rows are L2-normalised and scored as inner product (kIp); L2 sets use kL2.
// The exact float32 top-k_large (kernels::search_f32) is the ground truth; with shipped ground truth
// its recall@k is reported as a sanity check.
// Per PCA level p (percent of the dimensions kept, or "none"): fit kernels::Pca with that many
// components on a sample of the base, transform the base (centred) and the queries
// (Pca::transform_queries for the metric). p = 100 keeps every dimension but still centres and
// rotates the data; "none" (kNoPca) leaves the original coordinates, the paper's plain baseline.
// Per code variant: train the codec on the sample of the transformed base, encode the whole base
// (timed), search the queries exactly with kernels::search_cpu at k_large (timed), and also rescore
// the top r = rescore_factor * k candidates from the codes with float32 originals in the original
// space (kernels::rescore_f32), for k and for k_large.
//
// Thread safety: run_compression_sweep is reentrant; it uses `threads` kernel threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "benchmarks/datasets.h"
#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/gpu.h"

namespace vecstash::bench {

/// One way of storing vectors: a codec configuration and how its codes are scored.
struct CodeVariant {
  std::string name;  ///< e.g. "e4m3:dim", "i8:clip0.1", "b1:hamming"
  kernels::CodecOptions codec;
  bool hamming = false;  ///< b1 only: score by Hamming distance instead of asymmetrically
};

/// The standard variants: f32, f16, bf16, e4m3 and e5m2 with scale none / vector / dim,
/// i8 with min/max and 0.1% percentile clipping, b1 asymmetric and Hamming.
std::vector<CodeVariant> standard_code_variants();

/// Parse a comma-separated selection: a full name ("e4m3:dim") or a kind ("e4m3" = all its
/// variants), or "all". InvalidArgument names the unknown entry and lists the known ones.
Result<std::vector<CodeVariant>> parse_code_variants(std::string_view list);

/// The PCA level "none": the original coordinates, no projection.
inline constexpr int kNoPca = 0;

/// Parse "none,100,75,50,25": "none" or integers in [1, 100]; returned as "none" first, then
/// decreasing. InvalidArgument otherwise.
Result<std::vector<int>> parse_pca_levels(std::string_view list);

/// "none" or "75%".
std::string pca_label(int percent);

struct SweepOptions {
  std::vector<CodeVariant> variants = standard_code_variants();
  std::vector<int> pca_percents = {kNoPca, 100, 75, 50, 25};
  std::size_t k = 10;                 ///< the small k (recall@k, nDCG@k); rescoring reads rescore_factor * k
  std::size_t k_large = 100;          ///< the large k (recall@k_large); raised to k when smaller
  std::size_t rescore_factor = 4;     ///< 0 = no rescoring
  std::size_t train_sample = 100000;  ///< rows used to fit PCA and train codecs (fixed-seed sample)
  std::uint64_t seed = 42;
  int threads = 0;  ///< kernel threads, 0 = all
  /// When set, codes are encoded and scanned on this GPU context (the CPU still fits PCA, trains
  /// codecs, computes ground truth and rescores). Null = the CPU kernels.
  kernels::GpuContext* gpu = nullptr;
  /// Encode and scan are repeated until this many seconds have passed (at most 20 runs); the fastest
  /// run is reported. 0 = one run each.
  double min_timing_s = 0.2;
  /// Called with a line of progress after each configuration (may be empty).
  std::function<void(std::string_view)> progress;
};

/// One configuration's measurements. Optional values are absent when not measured.
struct SweepRow {
  std::string variant;  ///< CodeVariant::name
  CodeKind kind = CodeKind::kF32;
  ScaleMode scale = ScaleMode::kNone;
  double int8_clip_percent = 0.0;
  bool hamming = false;
  int pca_percent = kNoPca;           ///< percent of dimensions kept, or kNoPca
  std::size_t dim = 0;                ///< dimensions after PCA
  double explained_variance = 1.0;    ///< fraction of variance kept by PCA (1 without)
  std::size_t bytes_per_vector = 0;   ///< code bytes + 4 when the scoring needs a stored norm
  double compression_ratio = 1.0;     ///< 4 * original dim / bytes_per_vector
  double recall_k = 0.0;              ///< recall@k
  double recall_k_large = 0.0;        ///< recall@k_large
  std::optional<double> ndcg;         ///< nDCG@10 with qrels
  double encode_vectors_per_s = 0.0;  ///< fastest of the timed runs
  double scan_queries_per_s = 0.0;    ///< search_cpu at k_large, fastest of the timed runs
  double scan_vectors_per_s = 0.0;    ///< scan_queries_per_s * base rows
  // Codes for candidates, float32 originals for rescoring (absent when rescore_factor is 0).
  std::optional<double> rescore_recall_k;        ///< top rescore_factor * k rescored, recall@k
  std::optional<double> rescore_ndcg;            ///< the same list's nDCG@10
  std::optional<double> rescore_recall_k_large;  ///< top rescore_factor * k_large rescored, recall@k_large
};

struct SweepReport {
  std::string dataset;
  Metric dataset_metric = Metric::kL2;  ///< as loaded (kCos is normalised and scored as kIp)
  Metric search_metric = Metric::kL2;
  std::size_t base_rows = 0;
  std::size_t dim = 0;
  std::size_t queries = 0;
  std::size_t k = 10;
  std::size_t k_large = 100;
  std::size_t rescore_factor = 4;
  std::size_t train_rows = 0;
  int threads = 0;
  std::string backend = "cpu";       ///< where codes were encoded and scanned
  std::optional<double> exact_ndcg;  ///< nDCG@10 of exact float32 search, with qrels
  std::size_t ndcg_queries = 0;      ///< queries with judgments
  std::vector<std::string> notes;    ///< data set notes, sanity checks, skipped configurations
  std::vector<SweepRow> rows;
};

/// Run the sweep on one data set. Errors from the kernels are returned with the configuration named.
Result<SweepReport> run_compression_sweep(const Dataset& dataset, const SweepOptions& options);

/// The metric the codes of `variant` are scanned with: Hamming for the hamming variant; L2 for other
/// b1 codes of unit-normalised (cosine) data; otherwise `search_metric`.
Metric code_scoring_metric(const CodeVariant& variant, Metric search_metric, bool unit_rows);

/// True when scanning `variant` with `scoring_metric` needs a stored squared norm per row.
bool needs_stored_norm(const CodeVariant& variant, Metric scoring_metric);

}  // namespace vecstash::bench
