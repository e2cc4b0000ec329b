// Relative representations on the GPU (relative.h): per tile of rows, a warp per row centres and
// normalises the row in double exactly as the CPU does (u = float((x - mu) / ||x - mu||), zeros for a
// zero row), cublasSgemm multiplies the tile with the unit anchors, and for relative_encode the codec's
// device encode (codec.cu) turns the relative values into codes without them leaving the device.
// The cosines differ from the CPU's only in the summation order of the dot products (gpu.h states the
// tolerance); the context's cuBLAS handle runs in pedantic FP32 (no TF32).
#include <algorithm>
#include <climits>
#include <cmath>
#include <string>

#include "cuda/context.cuh"

namespace vecstash::kernels::cuda {
namespace {

constexpr unsigned kThreads = 256;  // 8 warps = 8 rows per block iteration

/// x (n x d, dense) <- per row float((x - mean) / ||x - mean||), all zeros where the norm is 0.
/// mean may be null (no centring). The sum of squares is accumulated in double without contraction.
__global__ void __launch_bounds__(kThreads)
    normalize_rows(float* __restrict__ x, std::size_t n, std::uint32_t d, const float* __restrict__ mean) {
  const std::size_t first = (static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const std::size_t step = (static_cast<std::size_t>(gridDim.x) * blockDim.x) >> 5;
  const unsigned lane = threadIdx.x & 31u;
  for (std::size_t i = first; i < n; i += step) {  // uniform within a warp
    float* row = x + i * d;
    double ss = 0.0;
    for (std::uint32_t j = lane; j < d; j += 32) {
      const double c = __dsub_rn(static_cast<double>(row[j]), mean != nullptr ? static_cast<double>(mean[j]) : 0.0);
      ss = __dadd_rn(ss, __dmul_rn(c, c));
    }
    ss = warp_sum(ss);
    const double norm = sqrt(ss);
    for (std::uint32_t j = lane; j < d; j += 32) {
      const double c = __dsub_rn(static_cast<double>(row[j]), mean != nullptr ? static_cast<double>(mean[j]) : 0.0);
      row[j] = norm > 0.0 ? static_cast<float>(__ddiv_rn(c, norm)) : 0.0f;
    }
  }
}

Status check_basis(const RelativeBasis& basis, const char* what) {
  if (!basis.ready()) return Status::failed_precondition(std::string(what) + ": the basis is empty");
  return Status::ok();
}

}  // namespace

Status CudaContext::relative_transform(const RelativeBasis& basis, MatrixView<const float> rows,
                                       MatrixView<float> out) {
  VECSTASH_RETURN_IF_ERROR(check_basis(basis, "GPU relative transform"));
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, basis.dim(), "GPU relative transform"));
  const std::size_t n = rows.rows, m = basis.anchors();
  if (n == 0) return Status::ok();
  if (out.rows != n || out.cols != m || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("GPU relative transform: output must be " + std::to_string(n) + " x " +
                                    std::to_string(m));
  return relative_run(basis, nullptr, rows, out, {}, {});
}

Status CudaContext::relative_encode(const RelativeBasis& basis, const Codec& codec, MatrixView<const float> rows,
                                    std::span<std::uint8_t> codes, std::span<float> sq_norms) {
  VECSTASH_RETURN_IF_ERROR(check_basis(basis, "GPU relative encode"));
  if (!codec.trained()) return Status::failed_precondition("GPU relative encode: codec is not trained");
  if (codec.dim() != basis.anchors())
    return Status::invalid_argument("GPU relative encode: codec dimension " + std::to_string(codec.dim()) +
                                    " != number of anchors " + std::to_string(basis.anchors()));
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, basis.dim(), "GPU relative encode"));
  const std::size_t n = rows.rows, cs = codec.code_size();
  if (codes.size() != n * cs)
    return Status::invalid_argument("GPU relative encode: codes buffer has " + std::to_string(codes.size()) +
                                    " bytes, need " + std::to_string(n * cs));
  if (!sq_norms.empty() && sq_norms.size() != n)
    return Status::invalid_argument("GPU relative encode: sq_norms must be empty or hold one float per row");
  if (n == 0) return Status::ok();
  return relative_run(basis, &codec, rows, MatrixView<float>(), codes, sq_norms);
}

Status CudaContext::relative_run(const RelativeBasis& basis, const Codec* codec, MatrixView<const float> rows,
                                 MatrixView<float> out, std::span<std::uint8_t> codes, std::span<float> sq_norms) {
  VECSTASH_RETURN_IF_ERROR(activate());
  const std::size_t n = rows.rows, d = basis.dim(), m = basis.anchors();
  const bool center = basis.options().center;
  const std::size_t cs = codec != nullptr ? codec->code_size() : 0;
  const bool want_norms = codec != nullptr && !sq_norms.empty();
  CodecArgs a;
  if (codec != nullptr) VECSTASH_RETURN_IF_ERROR(upload_codec_params(*codec, &codec_params_, &a));

  // Device memory per tile row: the row, its relative vector, its code and its norm.
  const std::size_t per_row = (d + m) * sizeof(float) + cs + sizeof(float);
  const std::size_t tile =
      std::min({n, std::max<std::size_t>(1, kChunkBytes / per_row), static_cast<std::size_t>(INT_MAX / m)});
  Layout layout;
  const std::size_t off_a = layout.add(m * d * sizeof(float));
  const std::size_t off_mean = layout.add(center ? d * sizeof(float) : 0);
  const std::size_t off_x = layout.add(tile * d * sizeof(float));
  const std::size_t off_y = layout.add(tile * m * sizeof(float));
  const std::size_t off_c = layout.add(tile * cs);
  const std::size_t off_n = layout.add(want_norms ? tile * sizeof(float) : 0);
  VECSTASH_RETURN_IF_ERROR(scratch_.reserve(layout.total()));
  float* da = scratch_.as<float>(off_a);
  float* dmean = center ? scratch_.as<float>(off_mean) : nullptr;
  float* dx = scratch_.as<float>(off_x);
  float* dy = scratch_.as<float>(off_y);
  std::uint8_t* dc = scratch_.as<std::uint8_t>(off_c);
  float* dn = want_norms ? scratch_.as<float>(off_n) : nullptr;
  // The anchors travel with every call (m x d floats; small next to a batch of rows).
  VECSTASH_CUDA_TRY(
      cudaMemcpyAsync(da, basis.unit_anchors().data(), m * d * sizeof(float), cudaMemcpyHostToDevice, stream_));
  if (center)
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(dmean, basis.mean().data(), d * sizeof(float), cudaMemcpyHostToDevice, stream_));

  // Column-major view (as in pca.cu): the unit anchors (m x d row-major) are the d x m matrix A^T with
  // ld d; a tile U (t x d) is U^T (d x t, ld d); Y^T (m x t, ld m) = (A^T)^T U^T is the row-major t x m tile.
  const float one = 1.0f, zero = 0.0f;
  const int mi = static_cast<int>(m), di = static_cast<int>(d);
  for (std::size_t r0 = 0; r0 < n; r0 += tile) {
    const std::size_t t = std::min(tile, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(dx, d * sizeof(float), rows.row(r0), rows.stride * sizeof(float),
                                        d * sizeof(float), t, cudaMemcpyHostToDevice, stream_));
    normalize_rows<<<grid_for(t * 32, kThreads), kThreads, 0, stream_>>>(dx, t, static_cast<std::uint32_t>(d), dmean);
    VECSTASH_CUDA_CHECK_LAUNCH();
    VECSTASH_CUBLAS_TRY(cublasSgemm(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, mi, static_cast<int>(t), di, &one, da, di, dx,
                                    di, &zero, dy, mi));
    if (codec == nullptr) {
      VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(out.row(r0), out.stride * sizeof(float), dy, m * sizeof(float),
                                          m * sizeof(float), t, cudaMemcpyDeviceToHost, stream_));
      continue;
    }
    VECSTASH_RETURN_IF_ERROR(launch_encode(stream_, dy, t, a, dc, dn));
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(codes.data() + r0 * cs, dc, t * cs, cudaMemcpyDeviceToHost, stream_));
    if (want_norms)
      VECSTASH_CUDA_TRY(cudaMemcpyAsync(sq_norms.data() + r0, dn, t * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  }
  return sync();
}

}  // namespace vecstash::kernels::cuda
