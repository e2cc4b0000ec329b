// PCA: fit on a sample (mean, covariance accumulated in double, symmetric eigendecomposition),
// keep k components given as a count or as a fraction of explained variance, transform and
// inverse-transform rows. CPU fit uses BLAS (dsyrk) and LAPACK (dsyevr); the GPU fit (gpu.h) uses
// cuBLAS and cuSOLVER and produces the same parameters.
//
// Transforming queries consistently with the metric:
//   data rows are centred:  y = W (x - mean)
//   L2 queries are centred as well (distances between centred points equal the originals'),
//   inner-product (and cosine, which vecstash scores as inner product of normalised rows) queries are
//   NOT centred: q . x ~= q . mean + (W q) . y, and q . mean is the same for every x, so ranking by
//   (W q) . y is exact in the retained subspace. Use transform_queries() to get this right.
//
// Thread safety: a Pca is immutable after fit()/deserialize(); const methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"

namespace vecstash::kernels {

struct PcaOptions {
  /// Components to keep; 0 = choose by variance_fraction.
  std::size_t components = 0;
  /// With components == 0: the smallest k whose explained variance is >= this fraction, in (0, 1].
  double variance_fraction = 1.0;
};

struct PcaParams {
  std::uint32_t dim_in = 0;
  std::uint32_t dim_out = 0;
  std::vector<float> mean;         ///< dim_in
  std::vector<float> components;   ///< dim_out x dim_in, row-major, orthonormal rows, by decreasing variance
  std::vector<double> eigenvalues; ///< all dim_in eigenvalues of the sample covariance, decreasing
  bool operator==(const PcaParams&) const = default;
};

/// Choose k for a variance fraction from decreasing eigenvalues (at least 1 when any exist).
std::size_t components_for_fraction(std::span<const double> eigenvalues, double fraction) noexcept;

class Pca;

/// Assemble a Pca from an eigendecomposition of the sample covariance, as LAPACK and cuSOLVER return
/// it: `ascending` eigenvalues, and element j of eigenvector c at vectors[c * col_stride + j * row_stride].
/// Shared by the CPU and GPU fits, so both order components by decreasing eigenvalue, clamp negative
/// round-off to 0, pick k the same way and make each component's largest-magnitude entry positive.
Result<Pca> pca_from_eigen(std::span<const double> mean, std::span<const double> ascending,
                           std::span<const double> vectors, std::size_t row_stride, std::size_t col_stride,
                           const PcaOptions& options);

class Pca {
 public:
  Pca() = default;

  /// Fit on `sample` (n x d, n >= 2, finite). CPU implementation (BLAS + LAPACK).
  static Result<Pca> fit(MatrixView<const float> sample, const PcaOptions& options, int threads = 0);
  /// Build from explicit parameters (validated: shapes, finite values).
  static Result<Pca> from_params(PcaParams params);
  static Result<Pca> deserialize(std::span<const std::uint8_t> blob);
  /// Versioned blob: magic "VSPC", format version, dims, mean, components, eigenvalues.
  std::vector<std::uint8_t> serialize() const;

  bool fitted() const noexcept { return fitted_; }
  const PcaParams& params() const noexcept { return params_; }
  std::size_t dim_in() const noexcept { return params_.dim_in; }
  std::size_t dim_out() const noexcept { return params_.dim_out; }
  /// Fraction of the total variance kept by the retained components, in [0, 1].
  double explained_variance_ratio() const noexcept;

  /// y = W (x - mean) if `center`, else y = W x. rows: n x dim_in; out: n x dim_out.
  Status transform(MatrixView<const float> rows, MatrixView<float> out, bool center = true,
                   int threads = 0) const;
  /// Queries for `metric`: centred for kL2, not centred for kIp / kCos (see the header comment).
  Status transform_queries(MatrixView<const float> queries, MatrixView<float> out, Metric metric,
                           int threads = 0) const;
  /// x = W^T y + mean. rows: n x dim_out; out: n x dim_in.
  Status inverse_transform(MatrixView<const float> rows, MatrixView<float> out, int threads = 0) const;

 private:
  PcaParams params_;
  bool fitted_ = false;
};

}  // namespace vecstash::kernels
