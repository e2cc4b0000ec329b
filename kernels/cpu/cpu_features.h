// Run-time CPU feature detection and the per-ISA kernel table (resolved once per process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vecstash/common/types.h"

namespace vecstash::kernels::cpu {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, popcnt = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512vpopcntdq = false, avx512fp16 = false;
};
const CpuFeatures& cpu_features() noexcept;

/// sum_j a[j] * b[j] over float32 vectors (PCA projection, rescoring).
using DotF32Fn = float (*)(const float* a, const float* b, std::size_t dim) noexcept;
/// Elementwise f32 -> f16 with saturation (numeric::float_to_f16 semantics for finite input).
using F16EncodeFn = void (*)(const float* x, std::uint16_t* out, std::size_t n) noexcept;

/// Decode the raw values v(c) of `rows` code rows (not b1) into a row-major float tile with leading
/// dimension `ld` (>= dim, multiple of 8); columns dim..ld-1 are set to zero.
using DecodeTileFn = void (*)(CodeKind kind, const std::uint8_t* codes, std::size_t code_size, std::size_t rows,
                              std::size_t dim, std::size_t ld, float* tile) noexcept;
/// out[q * nrows + r] = sum_j queries[q * ld + j] * tile[r * ld + j] (ld a multiple of 8, zero padded).
using DotBlockFn = void (*)(const float* queries, std::size_t nq, const float* tile, std::size_t nrows,
                            std::size_t ld, float* out) noexcept;
/// popcount(a XOR b) over `words` 64-bit words (b may be unaligned).
using HammingFn = std::uint64_t (*)(const std::uint64_t* a, const std::uint8_t* b, std::size_t words) noexcept;

/// int8 encode: out[j] = clamp(rint((x[j] - offset[j]) * inv_scale[j]), -128, 127).
using I8EncodeFn = void (*)(const float* x, const float* offset, const float* inv_scale, std::uint8_t* out,
                            std::size_t dim) noexcept;

/// float -> float8 of n values (numeric::float_to_e4m3 / float_to_e5m2 semantics, bit for bit).
using Fp8ConvertFn = void (*)(bool e4m3, const float* x, std::uint8_t* out, std::size_t n) noexcept;

struct KernelTable {
  const char* isa = "generic";
  DotF32Fn dot_f32 = nullptr;
  F16EncodeFn encode_f16 = nullptr;
  DecodeTileFn decode_tile = nullptr;
  DotBlockFn dot_block = nullptr;
  HammingFn hamming = nullptr;
  I8EncodeFn encode_i8 = nullptr;
  Fp8ConvertFn convert_fp8 = nullptr;
};

/// The table for the best ISA this processor supports. VECSTASH_ISA=generic forces the portable one;
/// VECSTASH_ISA=avx512 opts in to the AVX-512 kernels (not chosen by default until validated on
/// AVX-512 hardware).
const KernelTable& kernels() noexcept;
/// Tables by name, for tests that compare ISAs: "generic", "avx2", "avx512". Null if unsupported here.
const KernelTable* kernels_for(const std::string& isa) noexcept;

// Per-ISA factories (simd_*.cpp).
KernelTable make_generic_table() noexcept;
KernelTable make_avx2_table() noexcept;
KernelTable make_avx512_table() noexcept;  // AVX2 table with AVX-512 overrides

}  // namespace vecstash::kernels::cpu
