// Internal to kernels/cuda: the codec parameters as device pointers, and the per-element decode rule
// of codec.h written so that nvcc cannot fuse it into an FMA (explicit _rn intrinsics), which keeps
// GPU codes and decoded values bit-identical to the CPU reference.
#pragma once

#include <cstddef>
#include <cstdint>

#include "vecstash/common/numeric.h"
#include "vecstash/common/types.h"

namespace vecstash::kernels::cuda {

/// Codec state on the device. Pointers are null where the codec's vector is empty (the factor or
/// term is then skipped, as codec.h requires).
struct CodecArgs {
  CodeKind kind = CodeKind::kF32;
  std::uint32_t dim = 0;
  std::size_t code_size = 0;  ///< bytes per host row
  std::size_t payload = 0;    ///< bytes of the element codes (code_size less the per-vector scale)
  const float* scale = nullptr;
  const float* offset = nullptr;
  const float* inv_scale = nullptr;  ///< 1.0f / scale[j] computed on the host (0 where scale is 0)
  float fp8_max = 0.0f;
  bool per_vector = false;  ///< float8 with ScaleMode::kPerVector
  bool per_dim = false;     ///< float8 with ScaleMode::kPerDim
};

#if defined(__CUDACC__)
#define VECSTASH_CONSTEXPR_HD __host__ __device__ constexpr
#else
#define VECSTASH_CONSTEXPR_HD constexpr
#endif

VECSTASH_CONSTEXPR_HD bool is_fp8(CodeKind k) noexcept { return k == CodeKind::kE4M3 || k == CodeKind::kE5M2; }

/// Bits per stored element of a kind.
VECSTASH_CONSTEXPR_HD unsigned element_bits(CodeKind k) noexcept {
  switch (k) {
    case CodeKind::kF32:
      return 32;
    case CodeKind::kF16:
    case CodeKind::kBF16:
      return 16;
    case CodeKind::kE4M3:
    case CodeKind::kE5M2:
    case CodeKind::kI8:
      return 8;
    case CodeKind::kB1:
      return 1;
  }
  return 8;
}

#if defined(__CUDACC__)
/// x_hat[j] = offset[j] + scale[j] * (s_row * v), absent factors and terms skipped.
__device__ __forceinline__ float decode_affine(float v, std::uint32_t j, float s_row, const CodecArgs& a) {
  if (a.per_vector) v = __fmul_rn(s_row, v);
  if (a.scale != nullptr) v = __fmul_rn(a.scale[j], v);
  if (a.offset != nullptr) v = __fadd_rn(a.offset[j], v);
  return v;
}

/// Read a little-endian float32 from any byte address.
__device__ __forceinline__ float load_le_float(const std::uint8_t* p) {
  const std::uint32_t u = static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
                          (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
  return __uint_as_float(u);
}
__device__ __forceinline__ void store_le_float(std::uint8_t* p, float f) {
  const std::uint32_t u = __float_as_uint(f);
  p[0] = static_cast<std::uint8_t>(u);
  p[1] = static_cast<std::uint8_t>(u >> 8);
  p[2] = static_cast<std::uint8_t>(u >> 16);
  p[3] = static_cast<std::uint8_t>(u >> 24);
}
#endif

}  // namespace vecstash::kernels::cuda
