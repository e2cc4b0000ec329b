// Exact scoring of float32 queries against encoded rows, with top-k selection.
//
// Scores are in the metric's natural form: kIp and kCos similarities (higher is better), kL2 the
// squared Euclidean distance and kHamming the number of differing bits (lower is better).
// Order within a result row is best first; ties are broken by the smaller row index, so results are
// deterministic whatever the thread count or backend.
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
};

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

/// Scores of every (query, row) pair, nq x rows, computed with the same kernels as search_cpu.
/// For tests and rescoring of small candidate sets.
Status score_all_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                     Metric metric, MatrixView<float> out, int threads = 0);

/// Exact float32 search over uncompressed rows (the ground truth and the rescoring step).
/// `base` is rows x dim. Same ordering rules as search_cpu.
Status search_f32(MatrixView<const float> queries, MatrixView<const float> base,
                  const SearchParams& params, TopK* out);

/// Rescore candidates (e.g. the top r from a code scan) against float32 rows and keep the best k.
/// `candidates` ids index `base`; -1 entries are skipped.
Status rescore_f32(MatrixView<const float> queries, MatrixView<const float> base, const TopK& candidates,
                   const SearchParams& params, TopK* out);

}  // namespace vecstash::kernels
