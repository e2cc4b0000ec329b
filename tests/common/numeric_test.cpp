// float8 / f16 / bf16 conversions against independent references:
//  - decode: the OCP FP8 formulas evaluated with ldexp in double;
//  - encode: nearest representable value found by search over the decoded code table, ties to the
//    even code, saturation above the largest finite value;
//  - where available, CUDA's <cuda_fp8.h> host conversions and the processor's F16C instructions.
#include "vecstash/common/numeric.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#if defined(VECSTASH_TEST_CUDA_FP8)
#include <cuda_fp8.h>
#endif
#include <immintrin.h>

namespace vecstash::numeric {
namespace {

struct Fp8Format {
  const char* name;
  int ebits, mbits, bias;
  bool has_inf;  // E5M2: e=all ones, m=0 is inf; E4M3fn: only S.1111.111 is NaN
  std::uint8_t max_code;
  float (*decode)(std::uint8_t);
  std::uint8_t (*encode)(float);
};

const Fp8Format kE4M3{"e4m3", 4, 3, 7, false, 0x7E, e4m3_to_float, float_to_e4m3};
const Fp8Format kE5M2{"e5m2", 5, 2, 15, true, 0x7B, e5m2_to_float, float_to_e5m2};

double reference_decode(const Fp8Format& f, std::uint8_t c) {
  const int s = c >> 7, e = (c >> f.mbits) & ((1 << f.ebits) - 1), m = c & ((1 << f.mbits) - 1);
  const double sign = s ? -1.0 : 1.0;
  const int emax = (1 << f.ebits) - 1;
  if (f.has_inf && e == emax) return m == 0 ? sign * INFINITY : NAN;
  if (!f.has_inf && e == emax && m == (1 << f.mbits) - 1) return NAN;
  if (e == 0) return sign * std::ldexp(static_cast<double>(m), 1 - f.bias - f.mbits);
  return sign * std::ldexp(1.0 + std::ldexp(static_cast<double>(m), -f.mbits), e - f.bias);
}

// Nearest code by search over the non-negative finite codes (increasing in value).
std::uint8_t reference_encode(const Fp8Format& f, float x) {
  const std::uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const double a = std::fabs(static_cast<double>(x));
  if (std::isnan(x)) return sign | 0x7F;
  if (std::isinf(x)) return sign | (f.has_inf ? 0x7C : f.max_code);
  if (a >= reference_decode(f, f.max_code)) return sign | f.max_code;
  std::uint8_t lo = 0;
  while (lo < f.max_code && reference_decode(f, lo + 1) <= a) ++lo;
  const double vlo = reference_decode(f, lo), vhi = reference_decode(f, lo + 1);
  const double dlo = a - vlo, dhi = vhi - a;
  std::uint8_t c;
  if (dlo < dhi) c = lo;
  else if (dhi < dlo) c = lo + 1;
  else c = (lo % 2 == 0) ? lo : lo + 1;
  return sign | c;
}

std::vector<float> sweep_inputs(const Fp8Format& f) {
  std::vector<float> xs;
  // Every midpoint between neighbouring codes (the ties), one float ulp either side, and the codes.
  for (int c = 0; c < f.max_code; ++c) {
    const double lo = reference_decode(f, c), hi = reference_decode(f, c + 1);
    const float mid = static_cast<float>((lo + hi) / 2);
    for (float v : {mid, std::nextafter(mid, 0.0f), std::nextafter(mid, INFINITY), static_cast<float>(lo)}) {
      xs.push_back(v);
      xs.push_back(-v);
    }
  }
  // Overflow, signed zero, float subnormals and extremes.
  const float mx = static_cast<float>(reference_decode(f, f.max_code));
  for (float v : {mx, std::nextafter(mx, INFINITY), mx * 1.0625f, mx * 1.125f, mx * 2.0f, 1e30f,
                  std::numeric_limits<float>::max(), 0.0f, -0.0f, std::numeric_limits<float>::denorm_min(),
                  std::numeric_limits<float>::min(), 1e-30f}) {
    xs.push_back(v);
    xs.push_back(-v);
  }
  // A dense sweep over float bit patterns from 2^-30 to 2^20.
  const std::uint32_t lo_bits = float_bits(std::ldexp(1.0f, -30)), hi_bits = float_bits(std::ldexp(1.0f, 20));
  for (std::uint32_t u = lo_bits; u < hi_bits; u += 4093) {
    xs.push_back(bits_float(u));
    xs.push_back(-bits_float(u));
  }
  return xs;
}

class Fp8Test : public ::testing::TestWithParam<const Fp8Format*> {};

TEST_P(Fp8Test, DecodeAll256CodesBitExact) {
  const Fp8Format& f = *GetParam();
  for (int c = 0; c < 256; ++c) {
    const double ref = reference_decode(f, static_cast<std::uint8_t>(c));
    const float got = f.decode(static_cast<std::uint8_t>(c));
    if (std::isnan(ref)) {
      EXPECT_TRUE(std::isnan(got)) << f.name << " code " << c;
      continue;
    }
    EXPECT_EQ(float_bits(got), float_bits(static_cast<float>(ref))) << f.name << " code " << c;
  }
}

TEST_P(Fp8Test, EncodeMatchesNearestSearch) {
  const Fp8Format& f = *GetParam();
  std::size_t checked = 0;
  for (float x : sweep_inputs(f)) {
    ASSERT_EQ(f.encode(x), reference_encode(f, x)) << f.name << " x=" << x << " bits=" << std::hex << float_bits(x);
    ++checked;
  }
  EXPECT_GT(checked, 100000u);
}

TEST_P(Fp8Test, EveryFiniteCodeRoundTrips) {
  const Fp8Format& f = *GetParam();
  for (int c = 0; c < 256; ++c) {
    const float v = f.decode(static_cast<std::uint8_t>(c));
    if (!std::isfinite(v)) continue;
    EXPECT_EQ(f.encode(v), c) << f.name << " code " << c;
  }
}

TEST_P(Fp8Test, SpecialValues) {
  const Fp8Format& f = *GetParam();
  EXPECT_EQ(f.encode(0.0f), 0x00);
  EXPECT_EQ(f.encode(-0.0f), 0x80);
  EXPECT_EQ(f.encode(1e9f), f.max_code);
  EXPECT_EQ(f.encode(-1e9f), 0x80 | f.max_code);
  EXPECT_TRUE(std::isnan(f.decode(f.encode(NAN))));
  if (f.has_inf) {
    EXPECT_EQ(f.encode(INFINITY), 0x7C);
    EXPECT_TRUE(std::isinf(f.decode(0x7C)));
  } else {
    EXPECT_EQ(f.encode(INFINITY), 0x7E);
    EXPECT_EQ(f.decode(0x7E), 448.0f);
  }
}

#if defined(VECSTASH_TEST_CUDA_FP8)
TEST_P(Fp8Test, MatchesCudaFp8HeaderOnFiniteInputs) {
  const Fp8Format& f = *GetParam();
  const auto interp = f.has_inf ? __NV_E5M2 : __NV_E4M3;
  for (float x : sweep_inputs(f)) {
    const auto cuda = static_cast<std::uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, interp));
    ASSERT_EQ(f.encode(x), cuda) << f.name << " x=" << x;
  }
}
#else
TEST_P(Fp8Test, MatchesCudaFp8HeaderOnFiniteInputs) { GTEST_SKIP() << "cuda_fp8.h not available in this build"; }
#endif

INSTANTIATE_TEST_SUITE_P(Formats, Fp8Test, ::testing::Values(&kE4M3, &kE5M2),
                         [](const auto& info) { return std::string(info.param->name); });

__attribute__((target("f16c"))) std::uint16_t hw_f16(float x) {
  return static_cast<std::uint16_t>(_cvtss_sh(x, _MM_FROUND_TO_NEAREST_INT));
}
__attribute__((target("f16c"))) float hw_f16_to_float(std::uint16_t h) { return _cvtsh_ss(h); }

TEST(F16, MatchesHardwareConversionWithinRange) {
  if (!__builtin_cpu_supports("avx2")) GTEST_SKIP() << "no F16C on this processor";
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float hw = hw_f16_to_float(static_cast<std::uint16_t>(h));
    const float sw = f16_to_float(static_cast<std::uint16_t>(h));
    if (std::isnan(hw)) {
      ASSERT_TRUE(std::isnan(sw));
      continue;
    }
    ASSERT_EQ(float_bits(sw), float_bits(hw)) << h;
  }
  for (std::uint32_t u = 0; u < 0x477FE000u; u += 997) {  // [0, 65504)
    for (float x : {bits_float(u), -bits_float(u)}) ASSERT_EQ(float_to_f16(x), hw_f16(x)) << x;
  }
  // Saturation instead of infinity for finite overflow.
  EXPECT_EQ(float_to_f16(70000.0f), 0x7BFF);
  EXPECT_EQ(float_to_f16(-1e20f), 0xFBFF);
  EXPECT_EQ(float_to_f16(INFINITY), 0x7C00);
}

TEST(BF16, RoundsToNearestEvenAndSaturates) {
  for (std::uint32_t u = 0; u < 0x7F800000u; u += 7919) {
    const float x = bits_float(u);
    const std::uint16_t b = float_to_bf16(x);
    const double lo = bf16_to_float(static_cast<std::uint16_t>(u >> 16));
    const double hi = bf16_to_float(static_cast<std::uint16_t>((u >> 16) + 1));
    const double dlo = x - lo, dhi = hi - x;
    std::uint16_t want = static_cast<std::uint16_t>(u >> 16);
    if (dhi < dlo || (dhi == dlo && (want & 1))) ++want;
    if (want == 0x7F80) want = 0x7F7F;
    ASSERT_EQ(b, want) << x;
    ASSERT_EQ(float_to_bf16(-x), want | 0x8000) << x;
  }
  EXPECT_EQ(float_to_bf16(std::numeric_limits<float>::max()), 0x7F7F);
}

}  // namespace
}  // namespace vecstash::numeric
