// Closed-form alignment of two embedding spaces from paired anchors: the m anchors embedded by a second
// model (source, m x dim_in) and by the collection's model (target, m x dim_out) give a linear map
//   y = (x - mean_in) W + mean_out,   W: dim_in x dim_out,
// that takes the second model's vectors into the collection's space (then searched as usual).
//
// With X = source - mean_in and Y = target - mean_out (no subtraction without `center`; the means are
// then zero), in double precision:
//   kProcrustes (orthogonal Procrustes, semi-orthogonal when the dimensions differ): M = X^T Y = U S V^T
//     (thin SVD, LAPACKE_dgesdd), W = U V^T (orthonormal columns when dim_in >= dim_out, orthonormal rows
//     otherwise). Not rescaled by trace(S) / ||X||_F^2: on real embeddings that scale is well below 1
//     and pulls mapped queries towards mean_out, which cost nDCG@10 (docs/BENCHMARKS.md).
//   kAffine (ridge regression pulled towards the Procrustes map W_P above, closed form):
//     W = argmin ||X W - Y||_F^2 + lam' ||W - W_P||_F^2 = (X^T X + lam' I)^-1 (X^T Y + lam' W_P),
//     lam' = lambda * trace(X^T X) / dim_in, solved by Cholesky (LAPACKE_dposv). lambda = 0 is least
//     squares; where X^T X is singular (m < dim_in, collinear anchors) it is regularised by
//     1e-9 * trace(X^T X) / dim_in, which picks the least-squares solution nearest W_P. A huge lambda
//     gives W_P.
// The fit needs BLAS + LAPACK (as Pca::fit) and returns Unavailable in a build without them; from_params,
// deserialize and apply work everywhere.
//
// Thread safety: an Alignment is immutable after fit()/from_params()/deserialize(); const methods are
// thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>


#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/relative.h"

namespace vecstash::kernels {

enum class AlignMethod : std::uint8_t { kProcrustes = 0, kAffine = 1 };

struct AlignOptions {
  AlignMethod method = AlignMethod::kProcrustes;
  /// Subtract each side's anchor mean before fitting (and add the target mean back in apply()).
  bool center = true;
  /// kAffine: strength of the pull towards the Procrustes map, relative to the mean eigenvalue of
  /// X^T X; in [0, 1e6]. Stored (and validated) for kProcrustes too, where it has no effect.
  double lambda = 1.0;
};

/// Largest dim_in / dim_out accepted.
inline constexpr std::size_t kMaxAlignDim = std::size_t{1} << 16;

struct AlignmentParams {
  AlignMethod method = AlignMethod::kProcrustes;
  bool center = true;
  double lambda = 1.0;
  std::uint32_t dim_in = 0, dim_out = 0;
  std::vector<float> mean_in;   ///< dim_in (all zeros without center)
  std::vector<float> mean_out;  ///< dim_out (all zeros without center)
  std::vector<float> matrix;    ///< W, dim_in x dim_out, row-major
  bool operator==(const AlignmentParams&) const = default;
};

class Alignment {
 public:
  /// An empty alignment: apply() returns FailedPrecondition.
  Alignment() = default;

  /// source: m x dim_in (the second model's embeddings of the anchors), target: m x dim_out (the
  /// collection model's), the same m >= 2 anchors in the same order, finite; dims in [1, 65536].
  /// InvalidArgument naming the offending field; Unavailable without BLAS/LAPACK; Internal when LAPACK
  /// fails.
  static Result<Alignment> fit(MatrixView<const float> source, MatrixView<const float> target,
                               const AlignOptions& options);
  /// Build from explicit parameters (validated: method, lambda, shapes, finite values).
  static Result<Alignment> from_params(AlignmentParams params);
  /// Parse a blob written by serialize(). Damaged or future-version blobs give Corruption.
  static Result<Alignment> deserialize(std::span<const std::uint8_t> blob);
  /// Versioned blob: magic "VSAL", format version, method, center, lambda, dims, means, matrix, and
  /// the fit cosine.
  std::vector<std::uint8_t> serialize() const;

  bool fitted() const noexcept { return fitted_; }
  const AlignmentParams& params() const noexcept { return params_; }
  std::size_t dim_in() const noexcept { return params_.dim_in; }
  std::size_t dim_out() const noexcept { return params_.dim_out; }

  /// y = (x - mean_in) W + mean_out for each row (float arithmetic, a fixed summation order: the result
  /// does not depend on the thread count). rows: n x dim_in, finite; out: n x dim_out (may be strided);
  /// n = 0 is valid. threads: 0 = all.
  Status apply(MatrixView<const float> rows, MatrixView<float> out, int threads = 0) const;

  /// Mean over the fit's anchors of cos(apply(source_i), target_i) (a pair with a zero vector counts 0).
  /// Kept by serialize(); NaN for an alignment built by from_params() (no anchors to measure on).
  double fit_cosine() const noexcept { return fit_cosine_; }
  /// ||G - I||_F / sqrt(k) with k = min(dim_in, dim_out) and G the k x k Gram matrix of W on its
  /// smaller side (W^T W when dim_in >= dim_out, else W W^T): 0 for a semi-orthogonal W. A scaled
  /// Procrustes map s W0 gives |s^2 - 1|. Computed from the matrix (also after from_params()).
  double orthogonality_gap() const noexcept { return orthogonality_gap_; }

 private:
  AlignmentParams params_;
  std::vector<float> padded_t_;  // W^T laid out for the CPU's SIMD product (kernels/cpu/row_products.h)
  double fit_cosine_ = 0.0;
  double orthogonality_gap_ = 0.0;
  bool fitted_ = false;
};

// ---- local correction ----------------------------------------------------------------------------
//
// A linear map leaves each anchor with a residual r_a = target_a - base(source_a). Where the two spaces
// are not linearly related, nearby inputs tend to share residuals, so a row x is corrected by the
// residuals of its nearest anchors in the source space (a Nadaraya-Watson estimate on top of the map):
//   y = base(x) + weight * sum_{a in N_k(x)} w_a r_a,   w_a = softmax_a(cos(x, source_a) / temperature)
// over the k anchors with the highest cosine (ties: lower anchor index first). With weight 0 it is the
// base map. Parameters left unset in LocalCorrectionOptions are chosen by leave-one-out on the anchors:
// each anchor is predicted from the others' residuals, and the grid point (k in {4, 8, 16, 32, 64},
// temperature in {0.02, 0.05, 0.1, 0.2}, weight in {0, 0.25, 0.5, 0.75, 1}) with the highest mean
// cos(prediction, target) wins (the first one on ties). Nothing is fitted on the rows that are
// later corrected. The cosines use RelativeBasis (uncentred), so the correction works without BLAS.
//
// Thread safety: immutable after fit(); const methods are thread-safe.

/// Largest number of neighbours of the local correction.
inline constexpr std::size_t kMaxLocalNeighbours = 256;

struct LocalCorrectionParams {
  std::uint32_t neighbours = 16;  ///< k, in [1, min(kMaxLocalNeighbours, anchors)]
  float temperature = 0.05f;      ///< softmax temperature over cosines, in [0.001, 10]
  float weight = 0.75f;           ///< share of the residual added, in [0, 2]
  bool operator==(const LocalCorrectionParams&) const = default;
};

struct LocalCorrectionOptions {
  std::optional<std::uint32_t> neighbours;  ///< unset: chosen by leave-one-out
  std::optional<float> temperature;         ///< unset: chosen by leave-one-out
  std::optional<float> weight;              ///< unset: chosen by leave-one-out
  /// With all three parameters given: false skips the leave-one-out measurement (loo_cosine() is then
  /// NaN), which costs m^2 cosines; used when reloading parameters chosen earlier.
  bool measure = true;
};

class LocalCorrection {
 public:
  /// An empty correction: apply() returns FailedPrecondition.
  LocalCorrection() = default;

  /// base: the fitted map being corrected; source (m x dim_in) and target (m x dim_out): the anchor
  /// pairs base was fitted on, finite, no zero source row; 2 <= m <= kMaxRelativeAnchors.
  /// InvalidArgument for bad shapes, values or options.
  static Result<LocalCorrection> fit(const Alignment& base, MatrixView<const float> source,
                                     MatrixView<const float> target, const LocalCorrectionOptions& options,
                                     int threads = 0);

  bool fitted() const noexcept { return fitted_; }
  const LocalCorrectionParams& params() const noexcept { return params_; }
  /// Leave-one-out mean cos(prediction, target) over the anchors with params(); base_cosine() is the
  /// same mean for the base map alone (weight 0, equal to base.fit_cosine() up to rounding).
  double loo_cosine() const noexcept { return loo_cosine_; }
  double base_cosine() const noexcept { return base_cosine_; }

  /// rows: n x dim_in, finite (the unmapped inputs); out: n x dim_out holding base.apply(rows), to which
  /// the correction is added. The result does not depend on the thread count.
  Status apply(MatrixView<const float> rows, MatrixView<float> out, int threads = 0) const;

 private:
  LocalCorrectionParams params_;
  RelativeBasis basis_;           // the source anchors, uncentred: cosines of rows to them
  std::vector<float> residuals_;  // m x dim_out
  std::size_t dim_out_ = 0;
  double loo_cosine_ = 0.0;
  double base_cosine_ = 0.0;
  bool fitted_ = false;
};

}  // namespace vecstash::kernels
