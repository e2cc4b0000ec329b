// Encode and decode on the GPU, bit-identical to the CPU codec (codec.h gives the rules).
// One warp per row: lanes stride over the dimensions, the per-vector scale is a warp max and the
// squared norm a warp sum (accumulated in double, as the CPU does). Compiled with --fmad=false and
// written with explicit _rn intrinsics, so no multiply-add is contracted into an FMA.
#include <algorithm>
#include <cstring>
#include <string>

#include "cuda/context.cuh"

namespace vecstash::kernels::cuda {
namespace {

constexpr unsigned kThreads = 256;  // 8 warps = 8 rows per block iteration

/// Warp-per-row grid-stride loop bounds.
struct WarpRows {
  std::size_t first, step;
  unsigned lane;
  __device__ WarpRows()
      : first((static_cast<std::size_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5),
        step((static_cast<std::size_t>(gridDim.x) * blockDim.x) >> 5),
        lane(threadIdx.x & 31u) {}
};

template <CodeKind K>
__device__ __forceinline__ std::uint8_t to_fp8(float x) {
  if constexpr (K == CodeKind::kE4M3)
    return numeric::float_to_e4m3(x);
  else
    return numeric::float_to_e5m2(x);
}
template <CodeKind K>
__device__ __forceinline__ float from_fp8(std::uint8_t c) {
  if constexpr (K == CodeKind::kE4M3)
    return numeric::e4m3_to_float(c);
  else
    return numeric::e5m2_to_float(c);
}

/// rows: n x dim floats (dense). codes: n x code_size bytes. sq_norms: n floats or null.
template <CodeKind K>
__global__ void __launch_bounds__(kThreads)
    encode_kernel(const float* __restrict__ rows, std::size_t n, CodecArgs a, std::uint8_t* __restrict__ codes,
                  float* __restrict__ sq_norms) {
  const WarpRows w;
  const std::uint32_t dim = a.dim;
  for (std::size_t i = w.first; i < n; i += w.step) {  // uniform within a warp
    const float* x = rows + i * dim;
    std::uint8_t* c = codes + i * a.code_size;
    double acc = 0.0;
    if constexpr (K == CodeKind::kB1) {
      // 32 dimensions per ballot: the mask is the little-endian 32-bit half-word of the uint64 word.
      const std::size_t halves = a.code_size / 4;       // includes the zero padding bits
      auto* out = reinterpret_cast<std::uint32_t*>(c);  // code_size is a multiple of 8: aligned
      for (std::size_t h = 0; h < halves; ++h) {
        const std::size_t j = h * 32 + w.lane;
        bool bit = false;
        if (j < dim) {
          const float th = a.offset != nullptr ? a.offset[j] : 0.0f;
          bit = x[j] > th;
          const float xh = decode_affine(bit ? 1.0f : -1.0f, static_cast<std::uint32_t>(j), 1.0f, a);
          acc += static_cast<double>(xh) * static_cast<double>(xh);
        }
        const unsigned mask = __ballot_sync(0xffffffffu, bit);
        if (w.lane == 0) out[h] = mask;
      }
    } else {
      float s_row = 1.0f, inv_row = 1.0f;
      if constexpr (is_fp8(K)) {
        if (a.per_vector) {
          float m = 0.0f;
          for (std::uint32_t j = w.lane; j < dim; j += 32)
            m = fmaxf(m, fabsf(a.offset != nullptr ? __fsub_rn(x[j], a.offset[j]) : x[j]));
          m = warp_max(m);  // exact: max does not round
          s_row = m > 0.0f ? __fdiv_rn(m, a.fp8_max) : 1.0f;
          inv_row = __fdiv_rn(1.0f, s_row);
        }
      }
      for (std::uint32_t j = w.lane; j < dim; j += 32) {
        const float xv = x[j];
        float v;
        if constexpr (K == CodeKind::kF32) {
          reinterpret_cast<float*>(c)[j] = xv;
          v = xv;
        } else if constexpr (K == CodeKind::kF16) {
          const std::uint16_t h = numeric::float_to_f16(xv);
          reinterpret_cast<std::uint16_t*>(c)[j] = h;
          v = numeric::f16_to_float(h);
        } else if constexpr (K == CodeKind::kBF16) {
          const std::uint16_t h = numeric::float_to_bf16(xv);
          reinterpret_cast<std::uint16_t*>(c)[j] = h;
          v = numeric::bf16_to_float(h);
        } else if constexpr (is_fp8(K)) {
          // Scaled float8 may be centred (offset = sample mean): y = x - offset, then scale.
          float t = xv;
          if ((a.per_vector || a.per_dim) && a.offset != nullptr) t = __fsub_rn(t, a.offset[j]);
          if (a.per_vector)
            t = __fmul_rn(t, inv_row);
          else if (a.per_dim && a.inv_scale != nullptr)
            t = __fmul_rn(t, a.inv_scale[j]);
          const std::uint8_t q = to_fp8<K>(t);
          c[j] = q;
          v = from_fp8<K>(q);
        } else {  // kI8
          float t = xv;
          if (a.offset != nullptr) t = __fsub_rn(t, a.offset[j]);
          if (a.inv_scale != nullptr) t = __fmul_rn(t, a.inv_scale[j]);
          t = fminf(127.0f, fmaxf(-128.0f, rintf(t)));
          const auto q = static_cast<std::int8_t>(static_cast<int>(t));
          c[j] = static_cast<std::uint8_t>(q);
          v = static_cast<float>(q);
        }
        const float xh = decode_affine(v, j, s_row, a);
        acc += static_cast<double>(xh) * static_cast<double>(xh);
      }
      if constexpr (is_fp8(K)) {
        if (a.per_vector && w.lane == 0) store_le_float(c + dim, s_row);
      }
    }
    acc = warp_sum(acc);
    if (sq_norms != nullptr && w.lane == 0) sq_norms[i] = static_cast<float>(acc);
  }
}

/// codes: n x code_size bytes. out: n x dim floats (dense).
template <CodeKind K>
__global__ void __launch_bounds__(kThreads)
    decode_kernel(const std::uint8_t* __restrict__ codes, std::size_t n, CodecArgs a, float* __restrict__ out) {
  const WarpRows w;
  const std::uint32_t dim = a.dim;
  for (std::size_t i = w.first; i < n; i += w.step) {
    const std::uint8_t* c = codes + i * a.code_size;
    float* o = out + i * dim;
    const float s_row = a.per_vector ? load_le_float(c + dim) : 1.0f;
    for (std::uint32_t j = w.lane; j < dim; j += 32) {
      float v;
      if constexpr (K == CodeKind::kF32)
        v = reinterpret_cast<const float*>(c)[j];
      else if constexpr (K == CodeKind::kF16)
        v = numeric::f16_to_float(reinterpret_cast<const std::uint16_t*>(c)[j]);
      else if constexpr (K == CodeKind::kBF16)
        v = numeric::bf16_to_float(reinterpret_cast<const std::uint16_t*>(c)[j]);
      else if constexpr (is_fp8(K))
        v = from_fp8<K>(c[j]);
      else if constexpr (K == CodeKind::kI8)
        v = static_cast<float>(static_cast<std::int8_t>(c[j]));
      else
        v = ((c[j >> 3] >> (j & 7u)) & 1u) ? 1.0f : -1.0f;  // kB1
      o[j] = decode_affine(v, j, s_row, a);
    }
  }
}

template <template <CodeKind> class Launcher, typename... Args>
Status dispatch_kind(CodeKind kind, Args&&... args) {
  switch (kind) {
    case CodeKind::kF32:
      return Launcher<CodeKind::kF32>::run(args...);
    case CodeKind::kF16:
      return Launcher<CodeKind::kF16>::run(args...);
    case CodeKind::kBF16:
      return Launcher<CodeKind::kBF16>::run(args...);
    case CodeKind::kE4M3:
      return Launcher<CodeKind::kE4M3>::run(args...);
    case CodeKind::kE5M2:
      return Launcher<CodeKind::kE5M2>::run(args...);
    case CodeKind::kI8:
      return Launcher<CodeKind::kI8>::run(args...);
    case CodeKind::kB1:
      return Launcher<CodeKind::kB1>::run(args...);
  }
  return Status::invalid_argument("GPU codec: unknown code kind");
}

template <CodeKind K>
struct EncodeLauncher {
  static Status run(cudaStream_t stream, const float* rows, std::size_t n, const CodecArgs& a, std::uint8_t* codes,
                    float* sq_norms) {
    encode_kernel<K><<<grid_for(n * 32, kThreads), kThreads, 0, stream>>>(rows, n, a, codes, sq_norms);
    VECSTASH_CUDA_CHECK_LAUNCH();
    return Status::ok();
  }
};

template <CodeKind K>
struct DecodeLauncher {
  static Status run(cudaStream_t stream, const std::uint8_t* codes, std::size_t n, const CodecArgs& a, float* out) {
    decode_kernel<K><<<grid_for(n * 32, kThreads), kThreads, 0, stream>>>(codes, n, a, out);
    VECSTASH_CUDA_CHECK_LAUNCH();
    return Status::ok();
  }
};

}  // namespace

Status launch_encode(cudaStream_t stream, const float* rows, std::size_t n, const CodecArgs& a, std::uint8_t* codes,
                     float* sq_norms) {
  if (n == 0) return Status::ok();
  return dispatch_kind<EncodeLauncher>(a.kind, stream, rows, n, a, codes, sq_norms);
}

Status CudaContext::encode(const Codec& codec, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                           std::span<float> sq_norms) {
  if (!codec.trained()) return Status::failed_precondition("GPU encode: codec is not trained");
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, codec.dim(), "GPU encode"));
  const std::size_t n = rows.rows, d = codec.dim(), cs = codec.code_size();
  if (codes.size() != n * cs)
    return Status::invalid_argument("GPU encode: codes buffer has " + std::to_string(codes.size()) + " bytes, need " +
                                    std::to_string(n * cs));
  if (!sq_norms.empty() && sq_norms.size() != n)
    return Status::invalid_argument("GPU encode: sq_norms must be empty or hold one float per row");
  if (n == 0) return Status::ok();

  VECSTASH_RETURN_IF_ERROR(activate());
  CodecArgs a;
  VECSTASH_RETURN_IF_ERROR(upload_codec_params(codec, &codec_params_, &a));
  const bool want_norms = !sq_norms.empty();
  const std::size_t per_row = d * sizeof(float) + cs + sizeof(float);
  const std::size_t chunk = std::min(n, std::max<std::size_t>(1, kChunkBytes / per_row));
  Layout layout;
  const std::size_t off_x = layout.add(chunk * d * sizeof(float));
  const std::size_t off_c = layout.add(chunk * cs);
  const std::size_t off_n = layout.add(chunk * sizeof(float));
  VECSTASH_RETURN_IF_ERROR(scratch_.reserve(layout.total()));
  float* dx = scratch_.as<float>(off_x);
  std::uint8_t* dc = scratch_.as<std::uint8_t>(off_c);
  float* dn = want_norms ? scratch_.as<float>(off_n) : nullptr;

  for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
    const std::size_t m = std::min(chunk, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(dx, d * sizeof(float), rows.row(r0), rows.stride * sizeof(float),
                                        d * sizeof(float), m, cudaMemcpyHostToDevice, stream_));
    VECSTASH_RETURN_IF_ERROR(launch_encode(stream_, dx, m, a, dc, dn));
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(codes.data() + r0 * cs, dc, m * cs, cudaMemcpyDeviceToHost, stream_));
    if (want_norms)
      VECSTASH_CUDA_TRY(cudaMemcpyAsync(sq_norms.data() + r0, dn, m * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  }
  return sync();
}

Status CudaContext::decode(const Codec& codec, std::span<const std::uint8_t> codes, MatrixView<float> out) {
  if (!codec.trained()) return Status::failed_precondition("GPU decode: codec is not trained");
  const std::size_t d = codec.dim(), cs = codec.code_size();
  if (codes.size() % cs != 0)
    return Status::invalid_argument("GPU decode: " + std::to_string(codes.size()) +
                                    " bytes is not a multiple of the code size " + std::to_string(cs));
  const std::size_t n = codes.size() / cs;
  if (n == 0) return Status::ok();
  if (out.rows != n || out.cols != d || out.stride < out.cols || out.data == nullptr)
    return Status::invalid_argument("GPU decode: output must be " + std::to_string(n) + " x " + std::to_string(d));

  VECSTASH_RETURN_IF_ERROR(activate());
  CodecArgs a;
  VECSTASH_RETURN_IF_ERROR(upload_codec_params(codec, &codec_params_, &a));
  const std::size_t per_row = d * sizeof(float) + cs;
  const std::size_t chunk = std::min(n, std::max<std::size_t>(1, kChunkBytes / per_row));
  Layout layout;
  const std::size_t off_c = layout.add(chunk * cs);
  const std::size_t off_x = layout.add(chunk * d * sizeof(float));
  VECSTASH_RETURN_IF_ERROR(scratch_.reserve(layout.total()));
  std::uint8_t* dc = scratch_.as<std::uint8_t>(off_c);
  float* dx = scratch_.as<float>(off_x);

  for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
    const std::size_t m = std::min(chunk, n - r0);
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(dc, codes.data() + r0 * cs, m * cs, cudaMemcpyHostToDevice, stream_));
    VECSTASH_RETURN_IF_ERROR(dispatch_kind<DecodeLauncher>(a.kind, stream_, dc, m, a, dx));
    VECSTASH_CUDA_TRY(cudaMemcpy2DAsync(out.row(r0), out.stride * sizeof(float), dx, d * sizeof(float),
                                        d * sizeof(float), m, cudaMemcpyDeviceToHost, stream_));
  }
  return sync();
}

}  // namespace vecstash::kernels::cuda
