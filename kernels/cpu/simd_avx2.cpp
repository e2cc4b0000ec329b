// AVX2 + FMA + F16C kernels. This file is compiled with -mavx2 -mfma -mf16c and only called after
// cpu_features() confirmed those instructions.
#include <immintrin.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

#include "cpu/cpu_features.h"
#include "cpu/dot_block.h"
#include "vecstash/common/numeric.h"

namespace vecstash::kernels::cpu {
namespace {

inline float hsum(__m256 v) noexcept {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  __m128 sh = _mm_movehdup_ps(lo);
  __m128 s = _mm_add_ps(lo, sh);
  sh = _mm_movehl_ps(sh, s);
  s = _mm_add_ss(s, sh);
  return _mm_cvtss_f32(s);
}

// Loaders: 8 consecutive code elements starting at element j, widened to float32.
struct LoadF32 {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    return _mm256_loadu_ps(reinterpret_cast<const float*>(c) + j);
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept {
    float x;
    std::memcpy(&x, c + 4 * j, 4);
    return x;
  }
};
struct LoadF16 {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * j)));
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept {
    std::uint16_t h;
    std::memcpy(&h, c + 2 * j, 2);
    return numeric::f16_to_float(h);
  }
};
struct LoadBF16 {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 2 * j)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept {
    std::uint16_t h;
    std::memcpy(&h, c + 2 * j, 2);
    return numeric::bf16_to_float(h);
  }
};
inline __m128i load8(const std::uint8_t* p) noexcept { return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)); }
// E5M2 is the high byte of a binary16.
struct LoadE5M2 {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    return _mm256_cvtph_ps(_mm_slli_epi16(_mm_cvtepu8_epi16(load8(c + j)), 8));
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept { return numeric::e5m2_to_float(c[j]); }
};
// E4M3 bits moved into a binary16 (sign to bit 15, exponent+mantissa to bits 13..7) read as
// value * 2^-8, subnormals included; the caller multiplies the sum by 256. Code 0x7F (NaN) is never stored.
struct LoadE4M3Scaled {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    const __m128i x = _mm_cvtepu8_epi16(load8(c + j));
    const __m128i sign = _mm_slli_epi16(_mm_and_si128(x, _mm_set1_epi16(0x80)), 8);
    const __m128i mag = _mm_slli_epi16(_mm_and_si128(x, _mm_set1_epi16(0x7F)), 7);
    return _mm256_cvtph_ps(_mm_or_si128(sign, mag));
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept {
    return numeric::e4m3_to_float(c[j]) * 0.00390625f;
  }
};
struct LoadI8 {
  static __m256 load(const std::uint8_t* c, std::size_t j) noexcept {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(load8(c + j)));
  }
  static float scalar(const std::uint8_t* c, std::size_t j) noexcept {
    return static_cast<float>(static_cast<std::int8_t>(c[j]));
  }
};

float dot_f32(const float* a, const float* b, std::size_t dim) noexcept {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
  std::size_t j = 0;
  for (; j + 32 <= dim; j += 32) {
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 8), _mm256_loadu_ps(b + j + 8), a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 16), _mm256_loadu_ps(b + j + 16), a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j + 24), _mm256_loadu_ps(b + j + 24), a3);
  }
  for (; j + 8 <= dim; j += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), _mm256_loadu_ps(b + j), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; j < dim; ++j) s += a[j] * b[j];
  return s;
}

void encode_f16(const float* x, std::uint16_t* out, std::size_t n) noexcept {
  const __m256 hi = _mm256_set1_ps(numeric::kF16Max);
  const __m256 lo = _mm256_set1_ps(-numeric::kF16Max);
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_max_ps(_mm256_min_ps(_mm256_loadu_ps(x + i), hi), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  for (; i < n; ++i) out[i] = numeric::float_to_f16(x[i]);
}

template <typename L>
void decode_rows(const std::uint8_t* codes, std::size_t cs, std::size_t rows, std::size_t dim, std::size_t ld,
                 float* tile, float mul) noexcept {
  const __m256 m = _mm256_set1_ps(mul);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* c = codes + r * cs;
    float* t = tile + r * ld;
    std::size_t j = 0;
    for (; j + 8 <= dim; j += 8) _mm256_storeu_ps(t + j, _mm256_mul_ps(L::load(c, j), m));
    for (; j < dim; ++j) t[j] = L::scalar(c, j) * mul;
    for (; j < ld; ++j) t[j] = 0.0f;
  }
}

void decode_tile(CodeKind kind, const std::uint8_t* codes, std::size_t cs, std::size_t rows, std::size_t dim,
                 std::size_t ld, float* tile) noexcept {
  switch (kind) {
    case CodeKind::kF32: return decode_rows<LoadF32>(codes, cs, rows, dim, ld, tile, 1.0f);
    case CodeKind::kF16: return decode_rows<LoadF16>(codes, cs, rows, dim, ld, tile, 1.0f);
    case CodeKind::kBF16: return decode_rows<LoadBF16>(codes, cs, rows, dim, ld, tile, 1.0f);
    case CodeKind::kE4M3: return decode_rows<LoadE4M3Scaled>(codes, cs, rows, dim, ld, tile, 256.0f);
    case CodeKind::kE5M2: return decode_rows<LoadE5M2>(codes, cs, rows, dim, ld, tile, 1.0f);
    case CodeKind::kI8: return decode_rows<LoadI8>(codes, cs, rows, dim, ld, tile, 1.0f);
    case CodeKind::kB1: return;  // scored through lookup tables
  }
}

// QB queries x RB rows of dot products, accumulated over the zero-padded leading dimension.
template <int QB, int RB>
inline void dot_micro(const float* q, const float* t, std::size_t ld, std::size_t nrows, float* out) noexcept {
  // The unroll pragmas keep the accumulators in registers at -O2 too (without them GCC 12 keeps the
  // arrays in memory and the kernel runs several times slower in RelWithDebInfo builds).
  __m256 acc[QB][RB];
#pragma GCC unroll 4
  for (int a = 0; a < QB; ++a)
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b) acc[a][b] = _mm256_setzero_ps();
  for (std::size_t j = 0; j < ld; j += 8) {
    __m256 tv[RB];
#pragma GCC unroll 4
    for (int b = 0; b < RB; ++b) tv[b] = _mm256_loadu_ps(t + b * ld + j);
#pragma GCC unroll 4
    for (int a = 0; a < QB; ++a) {
      const __m256 qv = _mm256_loadu_ps(q + a * ld + j);
#pragma GCC unroll 4
      for (int b = 0; b < RB; ++b) acc[a][b] = _mm256_fmadd_ps(qv, tv[b], acc[a][b]);
    }
  }
  if constexpr (QB == 2 && RB == 4) {
    // Reduce the 8 accumulators at once: lanes of `res` are the sums (q0 r0..r3, q1 r0..r3).
    const __m256 t0 = _mm256_hadd_ps(acc[0][0], acc[0][1]), t1 = _mm256_hadd_ps(acc[0][2], acc[0][3]);
    const __m256 t2 = _mm256_hadd_ps(acc[1][0], acc[1][1]), t3 = _mm256_hadd_ps(acc[1][2], acc[1][3]);
    const __m256 u0 = _mm256_hadd_ps(t0, t1), u1 = _mm256_hadd_ps(t2, t3);
    const __m256 res = _mm256_add_ps(_mm256_permute2f128_ps(u0, u1, 0x20), _mm256_permute2f128_ps(u0, u1, 0x31));
    _mm_storeu_ps(out, _mm256_castps256_ps128(res));
    _mm_storeu_ps(out + nrows, _mm256_extractf128_ps(res, 1));
  } else {
    for (int a = 0; a < QB; ++a)
      for (int b = 0; b < RB; ++b) out[a * nrows + b] = hsum(acc[a][b]);
  }
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
  std::uint64_t d = 0;
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t x;
    std::memcpy(&x, b + 8 * w, 8);
    d += static_cast<std::uint64_t>(_mm_popcnt_u64(a[w] ^ x));
  }
  return d;
}

void encode_i8(const float* x, const float* offset, const float* inv, std::uint8_t* out, std::size_t dim) noexcept {
  const __m256 lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
  std::size_t j = 0;
  for (; j + 8 <= dim; j += 8) {
    const __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(offset + j)),
                                   _mm256_loadu_ps(inv + j));
    const __m256 r = _mm256_min_ps(hi, _mm256_max_ps(lo, _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)));
    const __m256i w = _mm256_cvttps_epi32(r);
    const __m128i h = _mm_packs_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + j), _mm_packs_epi16(h, h));
  }
  for (; j < dim; ++j) {
    float c = std::rint((x[j] - offset[j]) * inv[j]);
    c = std::min(127.0f, std::max(-128.0f, c));
    out[j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(c));
  }
}

// Eight floats to float8 codes (in the low 8 bytes), the integer algorithm of numeric.h in SIMD:
// MBITS mantissa bits, exponent BIAS, largest finite code MAX_CODE, INF_CODE for +-inf.
template <int MBITS, int BIAS, int MAX_CODE, int INF_CODE>
inline __m128i fp8x8(__m256 v, float subnormal_inv_quantum) noexcept {
  const __m256i bits = _mm256_castps_si256(v);
  const __m256i sign = _mm256_srli_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(static_cast<int>(0x80000000u))), 24);
  const __m256i a = _mm256_and_si256(bits, _mm256_set1_epi32(0x7FFFFFFF));
  // Below the smallest normal: an integer multiple of the subnormal quantum, rounded to nearest even.
  const __m256i sub = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(subnormal_inv_quantum)));
  // Normal: keep MBITS mantissa bits, round to nearest even; a carry moves into the exponent.
  constexpr int kShift = 23 - MBITS;
  const __m256i exp_field = _mm256_sub_epi32(_mm256_srli_epi32(a, 23), _mm256_set1_epi32(127 - BIAS));
  const __m256i mant = _mm256_and_si256(a, _mm256_set1_epi32(0x7FFFFF));
  __m256i r = _mm256_srli_epi32(mant, kShift);
  const __m256i rem = _mm256_and_si256(mant, _mm256_set1_epi32((1 << kShift) - 1));
  const __m256i half = _mm256_set1_epi32(1 << (kShift - 1));
  const __m256i odd = _mm256_and_si256(r, _mm256_set1_epi32(1));
  const __m256i up = _mm256_or_si256(_mm256_cmpgt_epi32(rem, half),
                                     _mm256_and_si256(_mm256_cmpeq_epi32(rem, half), _mm256_cmpeq_epi32(odd, _mm256_set1_epi32(1))));
  r = _mm256_sub_epi32(r, up);  // up is all ones (-1) where the mantissa rounds up
  __m256i code = _mm256_add_epi32(_mm256_slli_epi32(exp_field, MBITS), r);
  code = _mm256_min_epi32(code, _mm256_set1_epi32(MAX_CODE));  // saturate finite overflow
  const __m256i min_normal = _mm256_set1_epi32((127 + 1 - BIAS) << 23);
  code = _mm256_blendv_epi8(code, sub, _mm256_cmpgt_epi32(min_normal, a));
  const __m256i inf = _mm256_set1_epi32(0x7F800000);
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(INF_CODE), _mm256_cmpeq_epi32(a, inf));
  code = _mm256_blendv_epi8(code, _mm256_set1_epi32(0x7F), _mm256_cmpgt_epi32(a, inf));
  code = _mm256_or_si256(code, sign);
  const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(code), _mm256_extracti128_si256(code, 1));
  return _mm_packus_epi16(w, w);
}

void convert_fp8(bool e4m3, const float* x, std::uint8_t* out, std::size_t n) noexcept {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m128i c = e4m3 ? fp8x8<3, 7, 0x7E, 0x7E>(v, 512.0f) : fp8x8<2, 15, 0x7B, 0x7C>(v, 65536.0f);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + i), c);
  }
  for (; i < n; ++i) out[i] = e4m3 ? numeric::float_to_e4m3(x[i]) : numeric::float_to_e5m2(x[i]);
}

// ---- int8 candidate scan ----
// One call scores QB queries against a packed tile, 16 rows (two 8-row blocks) at a time. Per group
// of 4 dimensions: vpmaddubsw multiplies the 32 u8 code bytes of a block by the query's 4 s8 values
// (broadcast) and adds adjacent pairs into int16 (|pair| <= 2 * 255 * 64, never saturates);
// vpmaddwd with ones adds the two pairs of each row into int32: the 8 lanes are 8 rows' partial sums,
// so no horizontal reduction is needed. QB x 2 accumulators stay in registers over all dimensions.
// Packing: for each full block of 8 rows, 8 groups (32 bytes) of every row are loaded and transposed
// as an 8 x 8 matrix of 32-bit words, so that each output vector holds one group of the 8 rows.
void i8_pack(const std::uint8_t* codes, std::size_t code_size, std::size_t rows, std::size_t dim,
             std::uint8_t* packed) noexcept {
  const std::size_t steps = (dim + 3) / 4, full = dim / 4, rows16 = (rows + 15) / 16 * 16;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  std::size_t r = 0;
  for (; r + 8 <= rows; r += 8) {
    std::uint8_t* blk = packed + (r / 8) * steps * 32;
    const std::uint8_t* c = codes + r * code_size;
    // Blocks of 8 groups; the last one may overlap the previous (it rewrites the same bytes), so only a
    // partial group (dim % 4 != 0) and dimensions below 32 take the byte-wise path.
    std::size_t done = 0;
    for (std::size_t s0 = 0; full >= 8 && done < full; s0 += 8) {
      const std::size_t s = std::min(s0, full - 8);
      done = s + 8;
      __m256i x[8];
      for (int i = 0; i < 8; ++i)
        x[i] =
            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + static_cast<std::size_t>(i) * code_size + 4 * s));
      const __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]), t1 = _mm256_unpackhi_epi32(x[0], x[1]);
      const __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]), t3 = _mm256_unpackhi_epi32(x[2], x[3]);
      const __m256i t4 = _mm256_unpacklo_epi32(x[4], x[5]), t5 = _mm256_unpackhi_epi32(x[4], x[5]);
      const __m256i t6 = _mm256_unpacklo_epi32(x[6], x[7]), t7 = _mm256_unpackhi_epi32(x[6], x[7]);
      // u[g] holds group g (low lane) and g + 4 (high lane) of rows 0-3 (u) and 4-7 (v).
      const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
      const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
      const __m256i v0 = _mm256_unpacklo_epi64(t4, t6), v1 = _mm256_unpackhi_epi64(t4, t6);
      const __m256i v2 = _mm256_unpacklo_epi64(t5, t7), v3 = _mm256_unpackhi_epi64(t5, t7);
      const __m256i out[8] = {_mm256_permute2x128_si256(u0, v0, 0x20), _mm256_permute2x128_si256(u1, v1, 0x20),
                              _mm256_permute2x128_si256(u2, v2, 0x20), _mm256_permute2x128_si256(u3, v3, 0x20),
                              _mm256_permute2x128_si256(u0, v0, 0x31), _mm256_permute2x128_si256(u1, v1, 0x31),
                              _mm256_permute2x128_si256(u2, v2, 0x31), _mm256_permute2x128_si256(u3, v3, 0x31)};
      for (int g = 0; g < 8; ++g)
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(blk + (s + static_cast<std::size_t>(g)) * 32),
                            _mm256_xor_si256(out[g], flip));
    }
    for (std::size_t s = done; s < steps; ++s)
      for (std::size_t i = 0; i < 8; ++i) i8_pack_group(c + i * code_size, dim, s, blk + 32 * s + 4 * i);
  }
  for (; r < rows16; ++r) {
    std::uint8_t* blk = packed + (r / 8) * steps * 32 + (r % 8) * 4;
    for (std::size_t s = 0; s < steps; ++s) {
      if (r < rows)
        i8_pack_group(codes + r * code_size, dim, s, blk + 32 * s);
      else
        std::memset(blk + 32 * s, 0, 4);
    }
  }
}

inline __m256i i8_madd(__m256i acc, __m256i x, __m256i qv, __m256i ones) noexcept {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, qv), ones));
}
inline __m256i i8_bcast(const std::int8_t* p) noexcept {
  std::int32_t w;
  std::memcpy(&w, p, 4);
  return _mm256_set1_epi32(w);
}

/// A necessary condition for key >= threshold under kIp: acc > the returned value. key = a + b * (acc -
/// corr) up to float rounding (relative 2^-22 at most), so the bound is loosened by 1e-5 (|thr| + |a|)
/// and two units; the exact float comparison follows for the rows that pass.
inline std::int32_t i8_ip_prefilter(float thr, float a, float b, std::int32_t corr) noexcept {
  constexpr double kMin = -2147483648.0, kMax = 2147483647.0;
  if (!(thr > -std::numeric_limits<float>::infinity()) || !(b > 0.0f)) return std::numeric_limits<std::int32_t>::min();
  const double eps = 1e-5 * (std::fabs(double{thr}) + std::fabs(double{a})) + 1e-30;
  const double t = std::floor((double{thr} - a - eps) / b) - 2.0 + corr;
  return static_cast<std::int32_t>(std::clamp(t, kMin, kMax));
}

template <int QB>
void i8_score_block(Metric metric, const I8ScanQueries& q, const I8ScanTile& t, float* keys,
                    std::uint64_t* hits) noexcept {
  const std::size_t steps = t.steps, qlen = 4 * steps;
  const __m256i ones = _mm256_set1_epi16(1);
  const std::int8_t* q0 = q.q;
  const std::int8_t* q1 = q.q + (QB > 1 ? qlen : 0);
  const std::int8_t* q2 = q.q + (QB > 2 ? 2 * qlen : 0);
  const std::int8_t* q3 = q.q + (QB > 3 ? 3 * qlen : 0);
  // 1. Exact integer sums of every row of the tile for the QB queries.
  alignas(32) std::int32_t sums[QB][kI8TileRows];
  for (std::size_t r0 = 0; r0 < t.rows; r0 += 16) {
    const std::uint8_t* b0 = t.packed + (r0 / 8) * steps * 32;
    const std::uint8_t* b1 = b0 + steps * 32;
    // Named accumulators (not an array): GCC keeps them in registers.
    __m256i a00 = _mm256_setzero_si256(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00;
    for (std::size_t s = 0; s < steps; ++s) {
      const __m256i x0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b0 + 32 * s));
      const __m256i x1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b1 + 32 * s));
      const __m256i v0 = i8_bcast(q0 + 4 * s);
      a00 = i8_madd(a00, x0, v0, ones);
      a01 = i8_madd(a01, x1, v0, ones);
      if constexpr (QB > 1) {
        const __m256i v1 = i8_bcast(q1 + 4 * s);
        a10 = i8_madd(a10, x0, v1, ones);
        a11 = i8_madd(a11, x1, v1, ones);
      }
      if constexpr (QB > 2) {
        const __m256i v2 = i8_bcast(q2 + 4 * s);
        a20 = i8_madd(a20, x0, v2, ones);
        a21 = i8_madd(a21, x1, v2, ones);
      }
      if constexpr (QB > 3) {
        const __m256i v3 = i8_bcast(q3 + 4 * s);
        a30 = i8_madd(a30, x0, v3, ones);
        a31 = i8_madd(a31, x1, v3, ones);
      }
    }
    auto store = [&](int a, __m256i lo, __m256i hi) {
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums[a] + r0), lo);
      _mm256_store_si256(reinterpret_cast<__m256i*>(sums[a] + r0 + 8), hi);
    };
    store(0, a00, a01);
    if constexpr (QB > 1) store(1, a10, a11);
    if constexpr (QB > 2) store(2, a20, a21);
    if constexpr (QB > 3) store(3, a30, a31);
  }
  // 2. Keys and threshold hits, per query.
  for (int a = 0; a < QB; ++a) {
    std::uint64_t h = 0;
    float* key_out = keys + a * kI8TileRows;
    const float qa = q.a[a], qb = q.b[a], thr = q.threshold[a];
    const std::int32_t corr = q.corr[a];
    if (metric == Metric::kIp) {
      // Integer prefilter, then float keys only for the rows that pass (after the first tiles, few do).
      const __m256i tv = _mm256_set1_epi32(i8_ip_prefilter(thr, qa, qb, corr));
      std::uint64_t pass = 0;
      for (std::size_t r = 0; r < t.rows; r += 8) {
        const __m256i gt = _mm256_cmpgt_epi32(_mm256_load_si256(reinterpret_cast<const __m256i*>(sums[a] + r)), tv);
        pass |= static_cast<std::uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(gt))) << r;
      }
      for (; pass != 0; pass &= pass - 1) {
        const auto r = static_cast<std::size_t>(std::countr_zero(pass));
        const float key = qa + qb * static_cast<float>(sums[a][r] - corr);
        key_out[r] = key;
        if (key >= thr) h |= std::uint64_t{1} << r;
      }
    } else {
      const __m256i cv = _mm256_set1_epi32(corr);
      const __m256 av = _mm256_set1_ps(qa), bv = _mm256_set1_ps(qb), tv = _mm256_set1_ps(thr);
      const __m256 qq = _mm256_set1_ps(q.qq[a]), two = _mm256_set1_ps(2.0f), sign = _mm256_set1_ps(-0.0f);
      for (std::size_t r = 0; r < t.rows; r += 8) {
        const __m256i sum = _mm256_load_si256(reinterpret_cast<const __m256i*>(sums[a] + r));
        const __m256 ip = _mm256_add_ps(av, _mm256_mul_ps(bv, _mm256_cvtepi32_ps(_mm256_sub_epi32(sum, cv))));
        const __m256 term = _mm256_loadu_ps(t.row_term + r);
        const __m256 key = metric == Metric::kCos
                               ? _mm256_mul_ps(ip, term)
                               : _mm256_xor_ps(_mm256_add_ps(_mm256_sub_ps(qq, _mm256_mul_ps(two, ip)), term), sign);
        _mm256_storeu_ps(key_out + r, key);
        h |= static_cast<std::uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(key, tv, _CMP_GE_OQ))) << r;
      }
    }
    hits[a] = h;
  }
}

void i8_score(Metric metric, const I8ScanQueries& q, const I8ScanTile& t, float* keys, std::uint64_t* hits) noexcept {
  switch (q.count) {
    case 1:
      return i8_score_block<1>(metric, q, t, keys, hits);
    case 2:
      return i8_score_block<2>(metric, q, t, keys, hits);
    case 3:
      return i8_score_block<3>(metric, q, t, keys, hits);
    default:
      return i8_score_block<4>(metric, q, t, keys, hits);
  }
}

}  // namespace

KernelTable make_avx2_table() noexcept {
  KernelTable t;
  t.isa = "avx2";
  t.dot_f32 = dot_f32;
  t.encode_f16 = encode_f16;
  t.decode_tile = decode_tile;
  t.dot_block = dot_block;
  t.hamming = hamming;
  t.encode_i8 = encode_i8;
  t.convert_fp8 = convert_fp8;
  t.i8_pack = i8_pack;
  t.i8_score = i8_score;
  return t;
}

}  // namespace vecstash::kernels::cpu
