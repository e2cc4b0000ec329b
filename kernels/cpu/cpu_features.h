// Run-time CPU feature detection and the per-ISA kernel table (resolved once per process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vecstash/common/types.h"

namespace vecstash::kernels::cpu {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, popcnt = false;
  bool avx512f = false, avx512bw = false, avx512vnni = false, avx512vpopcntdq = false, avx512fp16 = false;
};
const CpuFeatures& cpu_features() noexcept;

/// sum_j q[j] * v(code[j]) for one row payload (not b1), exactly as documented in codec.h.
using DotFn = float (*)(const float* q, const std::uint8_t* code, std::size_t dim) noexcept;
/// Elementwise f32 -> f16 with saturation (numeric::float_to_f16 semantics for finite input).
using F16EncodeFn = void (*)(const float* x, std::uint16_t* out, std::size_t n) noexcept;

struct KernelTable {
  const char* isa = "generic";
  DotFn dot[kCodeKindCount] = {};
  F16EncodeFn encode_f16 = nullptr;
};

/// The table for the best ISA this processor supports (VECSTASH_ISA=generic forces the portable one).
const KernelTable& kernels() noexcept;
/// Tables by name, for tests that compare ISAs: "generic", "avx2". Null if unsupported here.
const KernelTable* kernels_for(const std::string& isa) noexcept;

// Per-ISA factories (simd_*.cpp).
KernelTable make_generic_table() noexcept;
KernelTable make_avx2_table() noexcept;

}  // namespace vecstash::kernels::cpu
