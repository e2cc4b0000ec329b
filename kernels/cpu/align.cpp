#include "vecstash/kernels/align.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
#include "cpu/row_products.h"
#include "vecstash/common/blob.h"
#include "vecstash/kernels/codec.h"

#if defined(VECSTASH_HAVE_LAPACK)
#include <cblas.h>
#include <lapacke.h>
#endif

namespace vecstash::kernels {

namespace {
constexpr char kMagic[] = "VSAL";
constexpr std::uint16_t kFormatVersion = 1;
constexpr double kMaxLambda = 1e6;
// Smallest ridge of the affine fit, relative to trace(X^T X) / dim_in: keeps X^T X + lam' I positive
// definite when the anchors do not determine W (m < dim_in, collinear anchors).
constexpr double kMinRidge = 1e-9;

Status check_lambda(double lambda, const char* what) {
  if (!(std::isfinite(lambda) && lambda >= 0.0 && lambda <= kMaxLambda))
    return Status::invalid_argument(std::string(what) + ": lambda must be in [0, 1e6], got " + std::to_string(lambda));
  return Status::ok();
}

Status check_method(AlignMethod method, const char* what) {
  if (method != AlignMethod::kProcrustes && method != AlignMethod::kAffine)
    return Status::invalid_argument(std::string(what) + ": method must be procrustes (0) or affine (1), got " +
                                    std::to_string(static_cast<int>(method)));
  return Status::ok();
}

/// ||G - I||_F / sqrt(k) for the Gram matrix G (k x k) of the k rows of `padded` (from pad_matrix,
/// leading dimension ld), in float products summed in double. Deterministic (fixed blocks).
double gram_gap(const float* padded, std::size_t k, std::size_t ld) {
  const cpu::KernelTable& t = cpu::kernels();
  const std::size_t blocks = (k + cpu::kProductBlockRows - 1) / cpu::kProductBlockRows;
  std::vector<double> block_sums(blocks, 0.0);
  const int threads = cpu::resolve_threads(0, std::min(blocks, std::max<std::size_t>(1, k * k * ld >> 18)));
  cpu::parallel_chunks(blocks, threads, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> g(cpu::kProductBlockRows * k), scratch(cpu::product_scratch_size(ld));
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = blk * cpu::kProductBlockRows, nq = std::min(cpu::kProductBlockRows, k - r0);
      // The padded rows are zero past k (a multiple of 4 rows), so an odd tail has its zero partner.
      cpu::multiply_block(t, padded + r0 * ld, nq, padded, k, ld, g.data(), k, scratch.data());
      double s = 0.0;
      for (std::size_t q = 0; q < nq; ++q)
        for (std::size_t c = 0; c < k; ++c) {
          const double e = static_cast<double>(g[q * k + c]) - (r0 + q == c ? 1.0 : 0.0);
          s += e * e;
        }
      block_sums[blk] = s;
    }
  });
  double total = 0.0;
  for (double s : block_sums) total += s;
  return std::sqrt(total / static_cast<double>(k));
}

}  // namespace

Result<Alignment> Alignment::fit(MatrixView<const float> source, MatrixView<const float> target,
                                 const AlignOptions& options) {
  const char* what = "alignment fit";
  VECSTASH_RETURN_IF_ERROR(check_method(options.method, what));
  VECSTASH_RETURN_IF_ERROR(check_lambda(options.lambda, what));
  const std::size_t m = source.rows, din = source.cols, dout = target.cols;
  if (target.rows != m)
    return Status::invalid_argument("alignment fit: source has " + std::to_string(m) + " anchor rows but target has " +
                                    std::to_string(target.rows) + " (they must pair up)");
  if (m < 2) return Status::invalid_argument("alignment fit: needs at least 2 anchor pairs, got " + std::to_string(m));
  if (din == 0 || din > kMaxAlignDim)
    return Status::invalid_argument("alignment fit: source dimension must be in [1, 65536], got " +
                                    std::to_string(din));
  if (dout == 0 || dout > kMaxAlignDim)
    return Status::invalid_argument("alignment fit: target dimension must be in [1, 65536], got " +
                                    std::to_string(dout));
  VECSTASH_RETURN_IF_ERROR(validate_rows(source, din, "alignment fit source"));
  VECSTASH_RETURN_IF_ERROR(validate_rows(target, dout, "alignment fit target"));
#if !defined(VECSTASH_HAVE_LAPACK)
  return Status::unavailable("alignment fit: this build has no BLAS/LAPACK (install liblapacke-dev)");
#else
  AlignmentParams p;
  p.method = options.method;
  p.center = options.center;
  p.lambda = options.lambda;
  p.dim_in = static_cast<std::uint32_t>(din);
  p.dim_out = static_cast<std::uint32_t>(dout);
  p.mean_in.assign(din, 0.0f);
  p.mean_out.assign(dout, 0.0f);
  const auto column_means = [m](MatrixView<const float> a, std::vector<float>* out) {
    std::vector<double> sum(a.cols, 0.0);
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < a.cols; ++j) sum[j] += a.row(i)[j];
    for (std::size_t j = 0; j < a.cols; ++j) (*out)[j] = static_cast<float>(sum[j] / static_cast<double>(m));
  };
  if (options.center) {
    column_means(source, &p.mean_in);
    column_means(target, &p.mean_out);
  }
  // Centred with the stored float means, as apply() will centre.
  std::vector<double> x(m * din), y(m * dout);
  for (std::size_t i = 0; i < m; ++i) {
    for (std::size_t j = 0; j < din; ++j) {
      x[i * din + j] = static_cast<double>(source.row(i)[j]) - static_cast<double>(p.mean_in[j]);
    }
    for (std::size_t j = 0; j < dout; ++j)
      y[i * dout + j] = static_cast<double>(target.row(i)[j]) - static_cast<double>(p.mean_out[j]);
  }
  const int mi = static_cast<int>(m), di = static_cast<int>(din), dO = static_cast<int>(dout);

  // Procrustes: M = X^T Y = U S V^T, W_P = U V^T.
  std::vector<double> xty(din * dout);
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, di, dO, mi, 1.0, x.data(), di, y.data(), dO, 0.0, xty.data(),
              dO);
  const std::size_t k = std::min(din, dout);
  std::vector<double> svd_in = xty, sv(k), u(din * k), vt(k * dout);
  const lapack_int info =
      LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', static_cast<lapack_int>(din), static_cast<lapack_int>(dout), svd_in.data(),
                     static_cast<lapack_int>(dout), sv.data(), u.data(), static_cast<lapack_int>(k), vt.data(),
                     static_cast<lapack_int>(dout));
  if (info != 0) return Status::internal("alignment fit: LAPACK dgesdd failed (info " + std::to_string(info) + ")");
  std::vector<double> w(din * dout);
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, di, dO, static_cast<int>(k), 1.0, u.data(),
              static_cast<int>(k), vt.data(), dO, 0.0, w.data(), dO);
  // Not rescaled: the optimal scale trace(S) / ||X||^2 is below 1 whenever the spaces disagree, and
  // shrinking the mapped query towards mean_out measurably hurt retrieval (docs/BENCHMARKS.md).

  if (options.method == AlignMethod::kAffine) {
    // (X^T X + lam' I) W = X^T Y + lam' W_P, upper triangle of the row-major X^T X.
    std::vector<double> a(din * din, 0.0);
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, di, mi, 1.0, x.data(), di, 0.0, a.data(), di);
    double trace = 0.0;
    for (std::size_t j = 0; j < din; ++j) trace += a[j * din + j];
    const double mean_eig = trace / static_cast<double>(din);
    double lam = std::max(options.lambda, kMinRidge) * mean_eig;
    if (!(lam > 0.0)) lam = 1.0;  // X is zero: any ridge gives W = W_P
    for (std::size_t j = 0; j < din; ++j) a[j * din + j] += lam;
    for (std::size_t e = 0; e < w.size(); ++e) w[e] = xty[e] + lam * w[e];
    const lapack_int pinfo =
        LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', static_cast<lapack_int>(din), static_cast<lapack_int>(dout), a.data(),
                      static_cast<lapack_int>(din), w.data(), static_cast<lapack_int>(dout));
    if (pinfo != 0)
      return Status::internal("alignment fit: LAPACK dposv failed (info " + std::to_string(pinfo) +
                              "): X^T X + lambda I is not positive definite in floating point");
  }
  p.matrix.resize(din * dout);
  for (std::size_t e = 0; e < w.size(); ++e) {
    if (!std::isfinite(w[e]) || std::fabs(w[e]) > std::numeric_limits<float>::max())
      return Status::invalid_argument("alignment fit: the fitted matrix is not finite in float (degenerate anchors?)");
    p.matrix[e] = static_cast<float>(w[e]);
  }
  auto result = from_params(std::move(p));
  if (!result.is_ok()) return result;
  Alignment al = std::move(result).value();

  // The fit cosine: the anchors mapped exactly as apply() maps rows.
  std::vector<float> mapped(m * dout);
  VECSTASH_RETURN_IF_ERROR(al.apply(source, MatrixView<float>(mapped.data(), m, dout)));
  al.fit_cosine_ = cpu::mean_row_cosine(mapped.data(), target.row(0), target.stride, m, dout);
  return al;
#endif
}

Result<Alignment> Alignment::from_params(AlignmentParams p) {
  const char* what = "alignment parameters";
  const auto bad = [](const std::string& why) { return Status::invalid_argument("alignment parameters: " + why); };
  VECSTASH_RETURN_IF_ERROR(check_method(p.method, what));
  VECSTASH_RETURN_IF_ERROR(check_lambda(p.lambda, what));
  if (p.dim_in == 0 || p.dim_in > kMaxAlignDim) return bad("dim_in must be in [1, 65536]");
  if (p.dim_out == 0 || p.dim_out > kMaxAlignDim) return bad("dim_out must be in [1, 65536]");
  if (p.mean_in.size() != p.dim_in) return bad("mean_in must hold dim_in values");
  if (p.mean_out.size() != p.dim_out) return bad("mean_out must hold dim_out values");
  if (p.matrix.size() != std::size_t{p.dim_in} * p.dim_out) return bad("matrix must hold dim_in x dim_out values");
  for (float v : p.mean_in)
    if (!std::isfinite(v) || (!p.center && v != 0.0f)) return bad("mean_in must be finite (and zero without center)");
  for (float v : p.mean_out)
    if (!std::isfinite(v) || (!p.center && v != 0.0f)) return bad("mean_out must be finite (and zero without center)");
  for (float v : p.matrix)
    if (!std::isfinite(v)) return bad("matrix is not finite");

  Alignment al;
  const std::size_t din = p.dim_in, dout = p.dim_out;
  // W^T (dim_out rows of dim_in) for apply(); the gap on the smaller side of W.
  std::vector<float> wt(dout * din);
  for (std::size_t i = 0; i < din; ++i)
    for (std::size_t o = 0; o < dout; ++o) wt[o * din + i] = p.matrix[i * dout + o];
  al.padded_t_ = cpu::pad_matrix(wt.data(), dout, din, din);
  if (din >= dout) {
    al.orthogonality_gap_ = gram_gap(al.padded_t_.data(), dout, cpu::product_ld(din));  // W^T W
  } else {
    const std::vector<float> pw = cpu::pad_matrix(p.matrix.data(), din, dout, dout);
    al.orthogonality_gap_ = gram_gap(pw.data(), din, cpu::product_ld(dout));  // W W^T
  }
  al.fit_cosine_ = std::numeric_limits<double>::quiet_NaN();
  al.params_ = std::move(p);
  al.fitted_ = true;
  return al;
}

std::vector<std::uint8_t> Alignment::serialize() const {
  BlobWriter w(kMagic, kFormatVersion);
  w.u8(static_cast<std::uint8_t>(params_.method));
  w.u8(params_.center ? 1 : 0);
  w.u64(std::bit_cast<std::uint64_t>(params_.lambda));
  w.u32(params_.dim_in);
  w.u32(params_.dim_out);
  w.f32s(params_.mean_in);
  w.f32s(params_.mean_out);
  w.f32s(params_.matrix);
  w.u64(std::bit_cast<std::uint64_t>(fit_cosine_));
  return w.finish();
}

Result<Alignment> Alignment::deserialize(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "alignment parameters");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open(kMagic, kFormatVersion, &version));
  AlignmentParams p;
  std::uint8_t method = 0, center = 0;
  std::uint64_t lambda_bits = 0, cosine_bits = 0;
  VECSTASH_RETURN_IF_ERROR(r.u8(&method));
  VECSTASH_RETURN_IF_ERROR(r.u8(&center));
  VECSTASH_RETURN_IF_ERROR(r.u64(&lambda_bits));
  VECSTASH_RETURN_IF_ERROR(r.u32(&p.dim_in));
  VECSTASH_RETURN_IF_ERROR(r.u32(&p.dim_out));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.mean_in, kMaxAlignDim));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.mean_out, kMaxAlignDim));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.matrix, kMaxAlignDim * kMaxAlignDim));
  VECSTASH_RETURN_IF_ERROR(r.u64(&cosine_bits));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  if (method > 1 || center > 1) return Status::corruption("alignment parameters: unknown method or center flag");
  p.method = static_cast<AlignMethod>(method);
  p.center = center != 0;
  p.lambda = std::bit_cast<double>(lambda_bits);
  auto al = from_params(std::move(p));
  if (!al) return Status::corruption(al.status().message());
  al->fit_cosine_ = std::bit_cast<double>(cosine_bits);
  return al;
}

Status Alignment::apply(MatrixView<const float> rows, MatrixView<float> out, int threads) const {
  if (!fitted_) return Status::failed_precondition("alignment apply: the alignment is not fitted");
  const std::size_t din = params_.dim_in, dout = params_.dim_out, n = rows.rows;
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, din, "alignment apply"));
  if (n == 0) return Status::ok();
  if (out.rows != n || out.cols != dout || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("alignment apply: output must be " + std::to_string(n) + " x " +
                                    std::to_string(dout));
  const cpu::KernelTable& t = cpu::kernels();
  const std::size_t ld = cpu::product_ld(din);
  const std::size_t blocks = (n + cpu::kProductBlockRows - 1) / cpu::kProductBlockRows;
  const int nt = cpu::resolve_threads(threads, std::min(blocks, std::max<std::size_t>(1, n * din * dout >> 18)));
  cpu::parallel_chunks(blocks, nt, [&](std::size_t b0, std::size_t b1) {
    std::vector<float> a(cpu::kProductBlockRows * ld, 0.0f), scratch(cpu::product_scratch_size(ld));
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = blk * cpu::kProductBlockRows, nq = std::min(cpu::kProductBlockRows, n - r0);
      for (std::size_t q = 0; q < nq; ++q) {
        const float* x = rows.row(r0 + q);
        float* xc = a.data() + q * ld;
        for (std::size_t j = 0; j < din; ++j) xc[j] = x[j] - params_.mean_in[j];
      }
      if (nq % 2 != 0) std::fill_n(a.data() + nq * ld, ld, 0.0f);
      cpu::multiply_block(t, a.data(), nq, padded_t_.data(), dout, ld, out.row(r0), out.stride, scratch.data());
      for (std::size_t q = 0; q < nq; ++q) {
        float* y = out.row(r0 + q);
        for (std::size_t o = 0; o < dout; ++o) y[o] = y[o] + params_.mean_out[o];
      }
    }
  });
  return Status::ok();
}

}  // namespace vecstash::kernels
