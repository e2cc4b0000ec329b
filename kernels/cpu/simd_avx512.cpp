// AVX-512 (F, BW, VL, VPOPCNTDQ) overrides of the AVX2 table: 16-wide dot-product blocks and
// popcount of eight words at a time. Compiled with AVX-512 flags and called only after
// cpu_features() confirmed them. Until these kernels have been validated on AVX-512 hardware (see
// docs/ARCHITECTURE.md) the dispatcher uses them only when VECSTASH_ISA=avx512 asks for them.
#include <immintrin.h>

#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/dot_block.h"

namespace vecstash::kernels::cpu {
namespace {

// Lanes [0, ld - j) of a 16-float chunk (ld is a multiple of 8, so the mask is all or the low half).
inline __mmask16 tail_mask(std::size_t remaining) noexcept {
  return remaining >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << remaining) - 1u);
}

template <int QB, int RB>
inline void dot_micro(const float* q, const float* t, std::size_t ld, std::size_t nrows, float* out) noexcept {
  // Unrolled so that GCC keeps the accumulators in registers at -O2 as well (see simd_avx2.cpp).
  __m512 acc[QB][RB];
#pragma GCC unroll 4
  for (int a = 0; a < QB; ++a)
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b) acc[a][b] = _mm512_setzero_ps();
  for (std::size_t j = 0; j < ld; j += 16) {
    const __mmask16 m = tail_mask(ld - j);
    __m512 tv[RB];
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b) tv[b] = _mm512_maskz_loadu_ps(m, t + b * ld + j);
#pragma GCC unroll 4
    for (int a = 0; a < QB; ++a) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + a * ld + j);
#pragma GCC unroll 4
      for (int b = 0; b < RB; ++b) acc[a][b] = _mm512_fmadd_ps(qv, tv[b], acc[a][b]);
    }
  }
  for (int a = 0; a < QB; ++a)
    for (int b = 0; b < RB; ++b) out[a * nrows + b] = _mm512_reduce_add_ps(acc[a][b]);
}

struct Micro {
  template <int QB, int RB>
  static void run(const float* q, const float* t, std::size_t ld, std::size_t nrows, float* out) noexcept {
    dot_micro<QB, RB>(q, t, ld, nrows, out);
  }
};

void dot_block(const float* queries, std::size_t nq, const float* tile, std::size_t nrows, std::size_t ld,
               float* out) noexcept {
  blocked_dot<Micro>(queries, nq, tile, nrows, ld, out);
}

std::uint64_t hamming(const std::uint64_t* a, const std::uint8_t* b, std::size_t words) noexcept {
  __m512i acc = _mm512_setzero_si512();
  for (std::size_t w = 0; w < words; w += 8) {
    const std::size_t left = words - w;
    const __mmask8 m = left >= 8 ? static_cast<__mmask8>(0xFF) : static_cast<__mmask8>((1u << left) - 1u);
    const __m512i x = _mm512_maskz_loadu_epi64(m, a + w);
    const __m512i y = _mm512_maskz_loadu_epi64(m, b + 8 * w);
    acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(_mm512_xor_si512(x, y)));
  }
  return static_cast<std::uint64_t>(_mm512_reduce_add_epi64(acc));
}

}  // namespace

KernelTable make_avx512_table() noexcept {
  KernelTable t = make_avx2_table();
  t.isa = "avx512";
  t.dot_block = dot_block;
  t.hamming = hamming;
  return t;
}

}  // namespace vecstash::kernels::cpu
