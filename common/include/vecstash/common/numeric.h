// Scalar conversions between float32 and the storage types (f16, bf16, OCP float8 E4M3/E5M2).
// Header-only, usable from host C++ and from CUDA device code, so that CPU and GPU encoders
// produce bit-identical codes. All float -> narrow conversions round to nearest, ties to even,
// and saturate finite overflow to the largest finite value of the target type.
//
// Semantics of non-finite inputs (the engine rejects them before encoding, but the functions are total):
//   NaN -> the type's canonical NaN (sign kept); +-inf -> +-inf for f16, bf16, E5M2; +-448 for E4M3 (no inf).
#pragma once

#include <cstdint>
#include <cstring>
#include <math.h>

#if defined(__CUDACC__)
#define VECSTASH_HD __host__ __device__ __forceinline__
#else
#define VECSTASH_HD inline
#endif

namespace vecstash::numeric {

VECSTASH_HD std::uint32_t float_bits(float f) {
  std::uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}
VECSTASH_HD float bits_float(std::uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

inline constexpr float kF16Max = 65504.0f;
inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE5M2Max = 57344.0f;

// Round a float in [0, 2^23) to an integer, ties to even: adding 2^23 leaves no fraction bits, so the
// addition itself rounds (to nearest even, the default FP environment); subtracting it back is exact.
// Unlike rintf this inlines everywhere (no libm call on hosts compiled without SSE4.1).
// (Compilers keep both operations: folding them needs -fassociative-math, which vecstash never uses.)
VECSTASH_HD float round_even(float x) {
  const float big = 8388608.0f;
  const float y = x + big;
  return y - big;
}

// ---- float16 --------------------------------------------------------------------------------
VECSTASH_HD std::uint16_t float_to_f16(float f) {
  const std::uint32_t x = float_bits(f);
  const std::uint16_t sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u;            // NaN
  if (a == 0x7F800000u) return sign | 0x7C00u;           // inf
  if (a >= 0x477FE000u) return sign | 0x7BFFu;           // >= 65504: saturate
  if (a < 0x38800000u) {                                 // below 2^-14: subnormal quantum 2^-24
    const float m = round_even(bits_float(a) * 16777216.0f);  // exact scaling by 2^24
    return sign | static_cast<std::uint16_t>(m);         // 1024 becomes the smallest normal
  }
  const std::uint32_t rebias = a - ((127u - 15u) << 23);
  const std::uint32_t rounded = rebias + 0xFFFu + ((rebias >> 13) & 1u);
  std::uint32_t h = rounded >> 13;
  if (h > 0x7BFFu) h = 0x7BFFu;                          // rounding past 65504 saturates
  return sign | static_cast<std::uint16_t>(h);
}

VECSTASH_HD float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t e = (h >> 10) & 0x1Fu;
  const std::uint32_t m = h & 0x3FFu;
  if (e == 0) {
    const float v = static_cast<float>(m) * 5.9604644775390625e-08f;  // m * 2^-24, exact
    return bits_float(float_bits(v) | sign);
  }
  if (e == 31) return bits_float(sign | 0x7F800000u | (m << 13));
  return bits_float(sign | ((e + 127u - 15u) << 23) | (m << 13));
}

// ---- bfloat16 -------------------------------------------------------------------------------
VECSTASH_HD std::uint16_t float_to_bf16(float f) {
  const std::uint32_t x = float_bits(f);
  const std::uint32_t a = x & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  if (a == 0x7F800000u) return static_cast<std::uint16_t>(x >> 16);
  std::uint32_t r = (x + 0x7FFFu + ((x >> 16) & 1u)) >> 16;
  if ((r & 0x7FFFu) == 0x7F80u) r -= 1;  // finite rounded up to inf: saturate
  return static_cast<std::uint16_t>(r);
}

VECSTASH_HD float bf16_to_float(std::uint16_t b) { return bits_float(static_cast<std::uint32_t>(b) << 16); }

// ---- float8 ---------------------------------------------------------------------------------
// Generic narrow-float encoder: `mbits` mantissa bits, exponent bias `bias`,
// `min_normal_exp` = 1 - bias, `max_code` the largest finite magnitude code.
VECSTASH_HD std::uint8_t float_to_fp8_impl(float f, int mbits, int bias, std::uint32_t max_code,
                                            float subnormal_inv_quantum) {
  const std::uint32_t x = float_bits(f);
  const std::uint8_t sign = static_cast<std::uint8_t>((x >> 24) & 0x80u);
  const std::uint32_t a = x & 0x7FFFFFFFu;
  // smallest normal of the target: 2^(1 - bias)
  const std::uint32_t min_normal_bits = static_cast<std::uint32_t>(127 + 1 - bias) << 23;
  if (a < min_normal_bits) {
    const float m = round_even(bits_float(a) * subnormal_inv_quantum);  // exact power-of-two scaling
    return sign | static_cast<std::uint8_t>(m);  // 2^mbits becomes the smallest normal code
  }
  const int shift = 23 - mbits;
  const std::uint32_t exp_field = (a >> 23) - 127u + static_cast<std::uint32_t>(bias);
  const std::uint32_t mant = a & 0x7FFFFFu;
  std::uint32_t r = mant >> shift;
  const std::uint32_t rem = mant & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1u))) ++r;
  std::uint32_t code = (exp_field << mbits) + r;  // a mantissa carry moves into the exponent
  if (code > max_code) code = max_code;
  return sign | static_cast<std::uint8_t>(code);
}

/// float -> E4M3 ("fn"): max 448, NaN = 0x7F/0xFF, no infinities (inf saturates to +-448).
VECSTASH_HD std::uint8_t float_to_e4m3(float f) {
  const std::uint32_t a = float_bits(f) & 0x7FFFFFFFu;
  const std::uint8_t sign = static_cast<std::uint8_t>((float_bits(f) >> 24) & 0x80u);
  if (a > 0x7F800000u) return sign | 0x7Fu;
  if (a >= 0x7F800000u) return sign | 0x7Eu;
  return float_to_fp8_impl(f, 3, 7, 0x7Eu, 512.0f);  // subnormal quantum 2^-9
}

/// float -> E5M2: max 57344, inf = 0x7C, NaN = 0x7F (sign kept).
VECSTASH_HD std::uint8_t float_to_e5m2(float f) {
  const std::uint32_t a = float_bits(f) & 0x7FFFFFFFu;
  const std::uint8_t sign = static_cast<std::uint8_t>((float_bits(f) >> 24) & 0x80u);
  if (a > 0x7F800000u) return sign | 0x7Fu;
  if (a == 0x7F800000u) return sign | 0x7Cu;
  return float_to_fp8_impl(f, 2, 15, 0x7Bu, 65536.0f);  // subnormal quantum 2^-16
}

VECSTASH_HD float e4m3_to_float(std::uint8_t c) {
  const std::uint32_t sign = static_cast<std::uint32_t>(c & 0x80u) << 24;
  const std::uint32_t e = (c >> 3) & 0xFu;
  const std::uint32_t m = c & 0x7u;
  if (e == 15 && m == 7) return bits_float(sign | 0x7FC00000u);
  if (e == 0) return bits_float(float_bits(static_cast<float>(m) * 0.001953125f) | sign);  // m * 2^-9
  return bits_float(sign | ((e + 127u - 7u) << 23) | (m << 20));
}

/// E5M2 is the upper byte of an IEEE binary16.
VECSTASH_HD float e5m2_to_float(std::uint8_t c) { return f16_to_float(static_cast<std::uint16_t>(c) << 8); }

}  // namespace vecstash::numeric
