// Exact scoring of float32 queries against encoded rows, with top-k selection.
//
// Scores are in the metric's natural form: kIp and kCos similarities (higher is better), kL2 the
// squared Euclidean distance and kHamming the number of differing bits (lower is better).
// Order within a result row is best first; ties are broken by the smaller row index, so results are
// deterministic whatever the thread count or backend.
//
// Row eligibility: a search may be restricted to a subset of the rows with a bitset `allow` of
// ceil(rows / 64) little-endian 64-bit words: row r may be returned iff bit r % 64 of word r / 64 is
// set (bits past the last row are ignored). Null means every row. A restricted search returns
// min(k, allowed rows) real results per query, then pads as described at TopK.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::kernels {

/// Encoded rows in host memory: rows * codec.code_size() bytes, row-major.
struct CodeView {
  const std::uint8_t* codes = nullptr;
  std::size_t rows = 0;
  /// ||x_hat||^2 per row (from Codec::encode or Codec::squared_norms). Required for kCos, and for kL2
  /// except with b1 codes (whose reconstruction norm follows from the code); may be null otherwise.
  const float* sq_norms = nullptr;
  /// Row eligibility bitset (see the top of this file): ceil(rows / 64) words, or null for all rows.
  /// Honoured by the searches (search_cpu, search_i8_candidates_cpu); score_all_cpu ignores it.
  const std::uint64_t* allow = nullptr;
  /// Per-row additive term, rows floats, or null: row r is ranked and reported by its score (natural
  /// form) plus row_bias[r], e.g. a hubness penalty (engine/anchors.h). Honoured by search_cpu and
  /// score_all_cpu; search_i8_candidates_cpu rejects it (InvalidArgument), and the GPU backend takes
  /// it per call (GpuContext::search(..., row_bias, ...)) and rejects it in upload_codes.
  const float* row_bias = nullptr;
};

/// True when row `r` may be returned under the eligibility bitset `allow` (null = every row).
inline bool row_allowed(const std::uint64_t* allow, std::size_t r) noexcept {
  return allow == nullptr || ((allow[r / 64] >> (r % 64)) & 1u) != 0;
}

struct SearchParams {
  Metric metric = Metric::kIp;
  std::size_t k = 10;
  int threads = 0;  ///< 0 = all available
};

/// nq x k results, row-major. Where fewer than k rows exist, the tail of a row has id -1 and the
/// worst possible score (-inf for similarities, +inf for distances).
struct TopK {
  std::size_t nq = 0;
  std::size_t k = 0;
  std::vector<std::int64_t> ids;
  std::vector<float> scores;
  void resize(std::size_t nq_, std::size_t k_, Metric metric);
  std::span<const std::int64_t> ids_of(std::size_t q) const { return {ids.data() + q * k, k}; }
  std::span<const float> scores_of(std::size_t q) const { return {scores.data() + q * k, k}; }
};

/// Largest k accepted by search().
inline constexpr std::size_t kMaxK = 4096;

/// Validate the inputs of a search (shared by the CPU and GPU backends).
Status validate_search(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                       const SearchParams& params);

/// CPU exact search (SIMD, multi-threaded). The reference for every other backend.
Status search_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                  const SearchParams& params, TopK* out);

/// Approximate scan of int8 codes (codec kind kI8) for candidate generation: the top-k of each query
/// under approximate scores, meant to be rescored (rescore_f32 against the float32 rows, or exact int8
/// scores of the candidates) with k = oversampling x the final k (e.g. 4 x 10).
/// Metrics kIp, kCos and kL2 (kCos and kL2 need codes.sq_norms); codes.allow is honoured. Ordering,
/// tie-breaking and padding as search_cpu; results do not depend on the thread count or the ISA.
/// On AVX2 it is several times faster than search_cpu over the same codes (integer SIMD instead of
/// decoding to float32; see kernels/cpu/i8_scan.cpp).
///
/// How: each query (for kCos the unit query q / ||q||) is quantised once: w[j] = q[j] * scale[j] is
/// approximated by b * qi[j], qi[j] integer in [-64, 64], b = max_j |w[j]| / 64. The codes are then
/// scored with exact integer dot products (AVX2 vpmaddubsw / vpmaddwd; the portable kernel computes
/// the same integers):  ip~ = q . offset + b * sum_j qi[j] * c[j]  (c[j] the signed int8 code).
/// Error bound, per (query, row), against the exact int8 score of search_cpu:
///   |ip~ - ip| <= (b / 2) * sum_j |c[j]|  <=  64 * b * dim  =  dim * max_j |q[j] * scale[j]|,
/// plus float rounding (about 1e-6 relative). kL2 distances differ by at most twice that bound, kCos
/// similarities by that bound divided by ||q|| ||x_hat||. The returned scores are these approximations
/// (natural form), not exact scores. Typical errors are far below the bound: the rounding errors of
/// qi are independent, so they grow like sqrt(dim), not dim.
Status search_i8_candidates_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                                const SearchParams& params, TopK* out);

/// Scores of every (query, row) pair, nq x rows, computed with the same kernels as search_cpu.
/// For tests and rescoring of small candidate sets. `codes.allow` is ignored (every row is scored).
Status score_all_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                     Metric metric, MatrixView<float> out, int threads = 0);

/// Exact float32 search over uncompressed rows (the ground truth, the rescoring step, and rows not yet
/// encoded). `base` is rows x dim. Same ordering rules as search_cpu. `allow` restricts the rows that
/// may be returned (eligibility bitset of ceil(base.rows / 64) words, see above; null = all rows);
/// `row_bias` (base.rows floats or null) is added to each row's score as CodeView::row_bias.
Status search_f32(MatrixView<const float> queries, MatrixView<const float> base, const SearchParams& params, TopK* out,
                  const std::uint64_t* allow = nullptr, const float* row_bias = nullptr);

/// Rescore candidates (e.g. the top r from a code scan) against float32 rows and keep the best k.
/// `candidates` ids index `base`; -1 entries are skipped. `row_bias` (base.rows floats or null) is
/// added to each candidate's float32 score as CodeView::row_bias.
Status rescore_f32(MatrixView<const float> queries, MatrixView<const float> base, const TopK& candidates,
                   const SearchParams& params, TopK* out, const float* row_bias = nullptr);

}  // namespace vecstash::kernels
