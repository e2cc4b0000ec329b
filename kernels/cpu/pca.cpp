#include "vecstash/kernels/pca.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
#include "vecstash/common/blob.h"
#include "vecstash/kernels/codec.h"

#if defined(VECSTASH_HAVE_LAPACK)
#include <cblas.h>
#include <lapacke.h>
#endif

namespace vecstash::kernels {

namespace {
constexpr char kMagic[] = "VSPC";
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::size_t kMaxDim = 1u << 16;
}  // namespace

std::size_t components_for_fraction(std::span<const double> eigenvalues, double fraction) noexcept {
  if (eigenvalues.empty()) return 0;
  double total = 0;
  for (double e : eigenvalues) total += std::max(e, 0.0);
  if (total <= 0) return 1;
  double acc = 0;
  for (std::size_t i = 0; i < eigenvalues.size(); ++i) {
    acc += std::max(eigenvalues[i], 0.0);
    // A small relative slack so that fraction 1.0 is reached despite rounding in the sum.
    if (acc >= fraction * total * (1.0 - 1e-12)) return i + 1;
  }
  return eigenvalues.size();
}

Result<Pca> Pca::fit(MatrixView<const float> sample, const PcaOptions& options, int threads) {
  const std::size_t n = sample.rows, d = sample.cols;
  if (d == 0 || d > kMaxDim) return Status::invalid_argument("PCA fit: dimension must be in [1, 65536]");
  if (n < 2) return Status::invalid_argument("PCA fit: needs at least 2 rows, got " + std::to_string(n));
  if (options.components > d)
    return Status::invalid_argument("PCA fit: " + std::to_string(options.components) + " components requested but the dimension is " +
                                    std::to_string(d));
  if (options.components == 0 && !(options.variance_fraction > 0.0 && options.variance_fraction <= 1.0))
    return Status::invalid_argument("PCA fit: variance fraction must be in (0, 1]");
  VECSTASH_RETURN_IF_ERROR(validate_rows(sample, d, "PCA sample"));
#if !defined(VECSTASH_HAVE_LAPACK)
  (void)threads;
  return Status::unavailable("PCA fit: this build has no BLAS/LAPACK (use the GPU fit or install liblapacke-dev)");
#else
  (void)threads;  // OpenBLAS threads itself
  std::vector<double> mean(d, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < d; ++j) mean[j] += sample.row(i)[j];
  for (auto& m : mean) m /= static_cast<double>(n);

  // Covariance accumulated in double, chunk by chunk: C += X_c^T X_c (upper triangle, row-major).
  std::vector<double> cov(d * d, 0.0);
  const std::size_t chunk = std::max<std::size_t>(1, (1u << 22) / d);  // ~32 MB of doubles
  std::vector<double> xc(std::min(n, chunk) * d);
  for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
    const std::size_t rows = std::min(chunk, n - r0);
    for (std::size_t i = 0; i < rows; ++i)
      for (std::size_t j = 0; j < d; ++j) xc[i * d + j] = sample.row(r0 + i)[j] - mean[j];
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(rows), 1.0, xc.data(),
                static_cast<int>(d), 1.0, cov.data(), static_cast<int>(d));
  }
  const double inv = 1.0 / static_cast<double>(n - 1);
  for (auto& c : cov) c *= inv;

  std::vector<double> w(d), z(d * d);
  std::vector<lapack_int> support(2 * d);
  lapack_int found = 0;
  const lapack_int info = LAPACKE_dsyevr(LAPACK_ROW_MAJOR, 'V', 'A', 'U', static_cast<lapack_int>(d), cov.data(),
                                         static_cast<lapack_int>(d), 0.0, 0.0, 0, 0, 0.0, &found, w.data(), z.data(),
                                         static_cast<lapack_int>(d), support.data());
  if (info != 0 || static_cast<std::size_t>(found) != d)
    return Status::internal("PCA fit: LAPACK dsyevr failed (info " + std::to_string(info) + ")");

  // Row-major z holds eigenvector c in column c.
  return pca_from_eigen(mean, w, z, d, 1, options);
#endif
}

Result<Pca> pca_from_eigen(std::span<const double> mean, std::span<const double> ascending,
                           std::span<const double> vectors, std::size_t row_stride, std::size_t col_stride,
                           const PcaOptions& options) {
  const std::size_t d = mean.size();
  if (ascending.size() != d || vectors.size() != d * d || d == 0)
    return Status::invalid_argument("PCA: eigendecomposition has the wrong shape");
  PcaParams p;
  p.dim_in = static_cast<std::uint32_t>(d);
  p.eigenvalues.resize(d);
  for (std::size_t i = 0; i < d; ++i) p.eigenvalues[i] = std::max(0.0, ascending[d - 1 - i]);  // decreasing
  const std::size_t k =
      options.components > 0 ? options.components : components_for_fraction(p.eigenvalues, options.variance_fraction);
  p.dim_out = static_cast<std::uint32_t>(k);
  p.mean.assign(mean.begin(), mean.end());
  p.components.resize(k * d);
  for (std::size_t r = 0; r < k; ++r) {
    const double* v = vectors.data() + (d - 1 - r) * col_stride;  // the r-th largest eigenvalue's vector
    // Deterministic sign: the entry of largest magnitude is positive.
    std::size_t arg = 0;
    for (std::size_t j = 1; j < d; ++j)
      if (std::fabs(v[j * row_stride]) > std::fabs(v[arg * row_stride])) arg = j;
    const double sign = v[arg * row_stride] < 0 ? -1.0 : 1.0;
    for (std::size_t j = 0; j < d; ++j) p.components[r * d + j] = static_cast<float>(sign * v[j * row_stride]);
  }
  return Pca::from_params(std::move(p));
}

Result<Pca> Pca::from_params(PcaParams p) {
  const auto bad = [](const std::string& why) { return Status::invalid_argument("PCA parameters: " + why); };
  if (p.dim_in == 0 || p.dim_in > kMaxDim) return bad("input dimension must be in [1, 65536]");
  if (p.dim_out == 0 || p.dim_out > p.dim_in) return bad("output dimension must be in [1, input dimension]");
  if (p.mean.size() != p.dim_in) return bad("mean has the wrong length");
  if (p.components.size() != std::size_t{p.dim_out} * p.dim_in) return bad("components have the wrong shape");
  if (!p.eigenvalues.empty() && p.eigenvalues.size() != p.dim_in) return bad("eigenvalues have the wrong length");
  for (float v : p.mean)
    if (!std::isfinite(v)) return bad("mean is not finite");
  for (float v : p.components)
    if (!std::isfinite(v)) return bad("components are not finite");
  for (double v : p.eigenvalues)
    if (!std::isfinite(v) || v < 0) return bad("eigenvalues must be finite and non-negative");
  Pca pca;
  pca.params_ = std::move(p);
  pca.fitted_ = true;
  return pca;
}

std::vector<std::uint8_t> Pca::serialize() const {
  BlobWriter w(kMagic, kFormatVersion);
  w.u32(params_.dim_in);
  w.u32(params_.dim_out);
  w.f32s(params_.mean);
  w.f32s(params_.components);
  w.f64s(params_.eigenvalues);
  return w.finish();
}

Result<Pca> Pca::deserialize(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "PCA parameters");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open(kMagic, kFormatVersion, &version));
  PcaParams p;
  VECSTASH_RETURN_IF_ERROR(r.u32(&p.dim_in));
  VECSTASH_RETURN_IF_ERROR(r.u32(&p.dim_out));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.mean, kMaxDim));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.components, kMaxDim * kMaxDim));
  VECSTASH_RETURN_IF_ERROR(r.f64s(&p.eigenvalues, kMaxDim));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  auto pca = from_params(std::move(p));
  if (!pca) return Status::corruption(pca.status().message());
  return pca;
}

double Pca::explained_variance_ratio() const noexcept {
  double total = 0, kept = 0;
  for (std::size_t i = 0; i < params_.eigenvalues.size(); ++i) {
    total += params_.eigenvalues[i];
    if (i < params_.dim_out) kept += params_.eigenvalues[i];
  }
  return total > 0 ? kept / total : 0.0;
}

namespace {
Status check_out(MatrixView<float> out, std::size_t rows, std::size_t cols, const char* what) {
  if (rows == 0) return Status::ok();
  if (out.rows != rows || out.cols != cols || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument(std::string(what) + ": output must be " + std::to_string(rows) + " x " +
                                    std::to_string(cols));
  return Status::ok();
}
}  // namespace

Status Pca::transform(MatrixView<const float> rows, MatrixView<float> out, bool center, int threads) const {
  if (!fitted_) return Status::failed_precondition("PCA is not fitted");
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, params_.dim_in, "PCA transform"));
  VECSTASH_RETURN_IF_ERROR(check_out(out, rows.rows, params_.dim_out, "PCA transform"));
  const std::size_t d = params_.dim_in, k = params_.dim_out;
  const auto dot = cpu::kernels().dot_f32;
  const int t = cpu::resolve_threads(threads, rows.rows * k * d / 65536);
  cpu::parallel_chunks(rows.rows, t, [&](std::size_t b, std::size_t e) {
    std::vector<float> xc(d);
    for (std::size_t i = b; i < e; ++i) {
      const float* x = rows.row(i);
      for (std::size_t j = 0; j < d; ++j) xc[j] = center ? x[j] - params_.mean[j] : x[j];
      for (std::size_t r = 0; r < k; ++r) out.row(i)[r] = dot(params_.components.data() + r * d, xc.data(), d);
    }
  });
  return Status::ok();
}

Status Pca::transform_queries(MatrixView<const float> queries, MatrixView<float> out, Metric metric,
                              int threads) const {
  if (metric == Metric::kHamming) return Status::invalid_argument("PCA: hamming queries are not projected");
  return transform(queries, out, metric == Metric::kL2, threads);
}

Status Pca::inverse_transform(MatrixView<const float> rows, MatrixView<float> out, int threads) const {
  if (!fitted_) return Status::failed_precondition("PCA is not fitted");
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, params_.dim_out, "PCA inverse transform"));
  VECSTASH_RETURN_IF_ERROR(check_out(out, rows.rows, params_.dim_in, "PCA inverse transform"));
  const std::size_t d = params_.dim_in, k = params_.dim_out;
  const int t = cpu::resolve_threads(threads, rows.rows * k * d / 65536);
  cpu::parallel_chunks(rows.rows, t, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) {
      float* o = out.row(i);
      for (std::size_t j = 0; j < d; ++j) o[j] = params_.mean[j];
      for (std::size_t r = 0; r < k; ++r) {
        const float y = rows.row(i)[r];
        const float* w = params_.components.data() + r * d;
        for (std::size_t j = 0; j < d; ++j) o[j] += y * w[j];
      }
    }
  });
  return Status::ok();
}

}  // namespace vecstash::kernels
