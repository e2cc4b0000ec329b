// PCA on the GPU: column means and covariance in double (cublasDsyrk over centred double tiles),
// eigendecomposition with cusolverDnDsyevd, projection with cublasSgemm. The parameters follow the
// CPU fit (pca.cpp): covariance / (n - 1), eigenvalues decreasing and clamped at 0, components as
// rows with the entry of largest magnitude positive.
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <vector>

#include "cuda/context.cuh"

namespace vecstash::kernels::cuda {
namespace {

constexpr unsigned kThreads = 256;
constexpr std::size_t kMaxDim = std::size_t{1} << 16;

constexpr unsigned kSumParts = 64;  // row slices summed in parallel, then added in a fixed order

/// partial[p * d + j] = sum of x[i * d + j] over the rows of slice p (grid.y = slices), in double.
__global__ void __launch_bounds__(kThreads)
    column_partial_sums(const float* __restrict__ x, std::size_t m, std::size_t d, double* __restrict__ partial) {
  const std::size_t p = blockIdx.y, parts = gridDim.y;
  const std::size_t i0 = m * p / parts, i1 = m * (p + 1) / parts;
  for (std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < d;
       j += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (std::size_t i = i0; i < i1; ++i) s += x[i * d + j];
    partial[p * d + j] = s;
  }
}

/// sums[j] += sum_p partial[p * d + j] (fixed order, so the result is deterministic).
__global__ void __launch_bounds__(kThreads)
    add_partial_sums(const double* __restrict__ partial, unsigned parts, std::size_t d, double* __restrict__ sums) {
  for (std::size_t j = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; j < d;
       j += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    double s = 0.0;
    for (unsigned p = 0; p < parts; ++p) s += partial[p * d + j];
    sums[j] += s;
  }
}

/// xc[i, j] = double(x[i, j]) - mean[j].
__global__ void __launch_bounds__(kThreads) center_to_double(const float* __restrict__ x, std::size_t m, std::size_t d,
                                                             const double* __restrict__ mean, double* __restrict__ xc) {
  const std::size_t total = m * d;
  for (std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    xc[idx] = static_cast<double>(x[idx]) - mean[idx % d];
}

/// x[i, j] -= mean[j] in float (as Pca::transform does on the CPU).
__global__ void __launch_bounds__(kThreads)
    center_float(float* __restrict__ x, std::size_t m, std::size_t d, const float* __restrict__ mean) {
  const std::size_t total = m * d;
  for (std::size_t idx = static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total;
       idx += static_cast<std::size_t>(gridDim.x) * blockDim.x)
    x[idx] = x[idx] - mean[idx % d];
}

Status check_out(MatrixView<float> out, std::size_t rows, std::size_t cols) {
  if (rows == 0) return Status::ok();
  if (out.rows != rows || out.cols != cols || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("GPU PCA transform: output must be " + std::to_string(rows) + " x " +
                                    std::to_string(cols));
  return Status::ok();
}

}  // namespace

Result<Pca> CudaContext::pca_fit(MatrixView<const float> sample, const PcaOptions& options) {
  const std::size_t n = sample.rows, d = sample.cols;
  if (d == 0 || d > kMaxDim) return Status::invalid_argument("GPU PCA fit: dimension must be in [1, 65536]");
  if (n < 2) return Status::invalid_argument("GPU PCA fit: needs at least 2 rows, got " + std::to_string(n));
  if (options.components > d)
    return Status::invalid_argument("GPU PCA fit: " + std::to_string(options.components) +
                                    " components requested but the dimension is " + std::to_string(d));
  if (options.components == 0 && !(options.variance_fraction > 0.0 && options.variance_fraction <= 1.0))
    return Status::invalid_argument("GPU PCA fit: variance fraction must be in (0, 1]");
  VECSTASH_RETURN_IF_ERROR(validate_rows(sample, d, "GPU PCA sample"));
  VECSTASH_RETURN_IF_ERROR(activate());

  const int di = static_cast<int>(d);
  // Rows per tile: a float tile and its centred double copy, about kChunkBytes together.
  const std::size_t tile = std::min(n, std::max<std::size_t>(1, kChunkBytes / (d * (sizeof(float) + sizeof(double)))));
  if (tile > static_cast<std::size_t>(INT_MAX)) return Status::invalid_argument("GPU PCA fit: tile too large");

  Layout layout;
  const std::size_t off_x = layout.add(tile * d * sizeof(float));
  const std::size_t off_xc = layout.add(tile * d * sizeof(double));
  const std::size_t off_part = layout.add(kSumParts * d * sizeof(double));
  const std::size_t off_sum = layout.add(d * sizeof(double));
  const std::size_t off_mean = layout.add(d * sizeof(double));
  const std::size_t off_cov = layout.add(d * d * sizeof(double));
  const std::size_t off_w = layout.add(d * sizeof(double));
  const std::size_t off_info = layout.add(sizeof(int));
  VECSTASH_RETURN_IF_ERROR(scratch_.reserve(layout.total()));
  float* dx = scratch_.as<float>(off_x);
  double* dxc = scratch_.as<double>(off_xc);
  double* dpart = scratch_.as<double>(off_part);
  double* dsum = scratch_.as<double>(off_sum);
  double* dmean = scratch_.as<double>(off_mean);
  double* dcov = scratch_.as<double>(off_cov);
  double* dw = scratch_.as<double>(off_w);
  int* dinfo = scratch_.as<int>(off_info);
  int lwork = 0;
  VECSTASH_CUSOLVER_TRY(cusolverDnDsyevd_bufferSize(cusolver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, di,
                                                    dcov, di, dw, &lwork));
  VECSTASH_RETURN_IF_ERROR(solver_ws_.reserve(static_cast<std::size_t>(std::max(lwork, 1)) * sizeof(double)));
  double* dwork = solver_ws_.as<double>();

  // Pass 1: column means in double.
  VECSTASH_CUDA_TRY(cudaMemsetAsync(dsum, 0, d * sizeof(double), stream_));
  for (std::size_t r0 = 0; r0 < n; r0 += tile) {
    const std::size_t m = std::min(tile, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(dx, d * sizeof(float), sample.row(r0), sample.stride * sizeof(float),
                                        d * sizeof(float), m, cudaMemcpyHostToDevice, stream_));
    const unsigned parts = static_cast<unsigned>(std::min<std::size_t>(m, kSumParts));
    column_partial_sums<<<dim3(grid_for(d, kThreads), parts), kThreads, 0, stream_>>>(dx, m, d, dpart);
    VECSTASH_CUDA_CHECK_LAUNCH();
    add_partial_sums<<<grid_for(d, kThreads), kThreads, 0, stream_>>>(dpart, parts, d, dsum);
    VECSTASH_CUDA_CHECK_LAUNCH();
  }
  std::vector<double> mean(d);
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(mean.data(), dsum, d * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  VECSTASH_RETURN_IF_ERROR(sync());
  for (auto& v : mean) v /= static_cast<double>(n);
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(dmean, mean.data(), d * sizeof(double), cudaMemcpyHostToDevice, stream_));

  // Pass 2: covariance (lower triangle, column-major d x d) = sum of centred outer products / (n - 1).
  // A row-major tile (m x d) is the column-major d x m matrix A; syrk computes C += alpha A A^T.
  const double alpha = 1.0 / static_cast<double>(n - 1);
  for (std::size_t r0 = 0; r0 < n; r0 += tile) {
    const std::size_t m = std::min(tile, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(dx, d * sizeof(float), sample.row(r0), sample.stride * sizeof(float),
                                        d * sizeof(float), m, cudaMemcpyHostToDevice, stream_));
    center_to_double<<<grid_for(m * d, kThreads), kThreads, 0, stream_>>>(dx, m, d, dmean, dxc);
    VECSTASH_CUDA_CHECK_LAUNCH();
    const double beta = r0 == 0 ? 0.0 : 1.0;
    VECSTASH_CUBLAS_TRY(cublasDsyrk(cublas_, CUBLAS_FILL_MODE_LOWER, CUBLAS_OP_N, di, static_cast<int>(m), &alpha, dxc,
                                    di, &beta, dcov, di));
  }

  // Eigenvectors overwrite dcov: column c (contiguous d doubles) for eigenvalue dw[c], ascending.
  VECSTASH_CUSOLVER_TRY(cusolverDnDsyevd(cusolver_, CUSOLVER_EIG_MODE_VECTOR, CUBLAS_FILL_MODE_LOWER, di, dcov, di, dw,
                                         dwork, std::max(lwork, 1), dinfo));
  int info = 0;
  std::vector<double> w(d), z(d * d);
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(&info, dinfo, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(w.data(), dw, d * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(z.data(), dcov, d * d * sizeof(double), cudaMemcpyDeviceToHost, stream_));
  VECSTASH_RETURN_IF_ERROR(sync());
  if (info != 0) return Status::internal("GPU PCA fit: cusolverDnDsyevd failed (info " + std::to_string(info) + ")");

  // Column-major z holds eigenvector c contiguously from z[c * d].
  return pca_from_eigen(mean, w, z, 1, d, options);
}

Status CudaContext::pca_transform(const Pca& pca, MatrixView<const float> rows, MatrixView<float> out, bool center) {
  if (!pca.fitted()) return Status::failed_precondition("GPU PCA transform: PCA is not fitted");
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, pca.dim_in(), "GPU PCA transform"));
  const std::size_t n = rows.rows, d = pca.dim_in(), k = pca.dim_out();
  VECSTASH_RETURN_IF_ERROR(check_out(out, n, k));
  if (n == 0) return Status::ok();
  VECSTASH_RETURN_IF_ERROR(activate());

  const std::size_t tile = std::min(
      {n, std::max<std::size_t>(1, kChunkBytes / ((d + k) * sizeof(float))), static_cast<std::size_t>(INT_MAX)});
  Layout layout;
  const std::size_t off_w = layout.add(k * d * sizeof(float));
  const std::size_t off_mean = layout.add(d * sizeof(float));
  const std::size_t off_x = layout.add(tile * d * sizeof(float));
  const std::size_t off_y = layout.add(tile * k * sizeof(float));
  VECSTASH_RETURN_IF_ERROR(scratch_.reserve(layout.total()));
  float* dw = scratch_.as<float>(off_w);
  float* dmean = scratch_.as<float>(off_mean);
  float* dx = scratch_.as<float>(off_x);
  float* dy = scratch_.as<float>(off_y);
  const PcaParams& p = pca.params();
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(dw, p.components.data(), k * d * sizeof(float), cudaMemcpyHostToDevice, stream_));
  VECSTASH_CUDA_TRY(cudaMemcpyAsync(dmean, p.mean.data(), d * sizeof(float), cudaMemcpyHostToDevice, stream_));

  // Column-major view: W (k x d row-major) is the d x k matrix W^T with ld d; a row tile X (m x d) is
  // X^T (d x m, ld d). Y^T (k x m, ld k) = (W^T)^T X^T is the row-major tile Y (m x k).
  const float one = 1.0f, zero = 0.0f;
  for (std::size_t r0 = 0; r0 < n; r0 += tile) {
    const std::size_t m = std::min(tile, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(dx, d * sizeof(float), rows.row(r0), rows.stride * sizeof(float),
                                        d * sizeof(float), m, cudaMemcpyHostToDevice, stream_));
    if (center) {
      center_float<<<grid_for(m * d, kThreads), kThreads, 0, stream_>>>(dx, m, d, dmean);
      VECSTASH_CUDA_CHECK_LAUNCH();
    }
    VECSTASH_CUBLAS_TRY(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(k), static_cast<int>(m),
                                    static_cast<int>(d), &one, dw, static_cast<int>(d), dx, static_cast<int>(d), &zero,
                                    dy, static_cast<int>(k)));
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(out.row(r0), out.stride * sizeof(float), dy, k * sizeof(float),
                                        k * sizeof(float), m, cudaMemcpyDeviceToHost, stream_));
  }
  return sync();
}

}  // namespace vecstash::kernels::cuda
