#include "vecstash/kernels/codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>

#include "cpu/cpu_features.h"
#include "testing/random_data.h"
#include "vecstash/common/numeric.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;

struct KindMode {
  CodeKind kind;
  ScaleMode mode;
};
std::string name_of(const KindMode& km) {
  return std::string(to_string(km.kind)) + "_" + std::string(to_string(km.mode));
}
const std::vector<KindMode> kAllKinds = {
    {CodeKind::kF32, ScaleMode::kNone},  {CodeKind::kF16, ScaleMode::kNone},      {CodeKind::kBF16, ScaleMode::kNone},
    {CodeKind::kE4M3, ScaleMode::kNone}, {CodeKind::kE4M3, ScaleMode::kPerVector}, {CodeKind::kE4M3, ScaleMode::kPerDim},
    {CodeKind::kE5M2, ScaleMode::kNone}, {CodeKind::kE5M2, ScaleMode::kPerVector}, {CodeKind::kE5M2, ScaleMode::kPerDim},
    {CodeKind::kI8, ScaleMode::kNone},   {CodeKind::kB1, ScaleMode::kNone}};

Codec train(const KindMode& km, const Matrix& sample) {
  CodecOptions o;
  o.kind = km.kind;
  o.scale = km.mode;
  auto c = Codec::train(o, sample.view());
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return std::move(c).value();
}

// |x - decode(encode(x))| bound for one element. `s` is the float8 scale in force (per-dim or per-row).
double bound(const Codec& c, float x, std::size_t j, double s) {
  const auto& p = c.params();
  const double ax = std::fabs(x);
  switch (p.kind) {
    case CodeKind::kF32: return 0.0;
    case CodeKind::kF16: return ax * std::ldexp(1.0, -11) + std::ldexp(1.0, -25);
    case CodeKind::kBF16: return ax * std::ldexp(1.0, -8) + 1e-38;
    case CodeKind::kE4M3:
    case CodeKind::kE5M2: {
      const int mbits = p.kind == CodeKind::kE4M3 ? 3 : 2;
      const double half_sub = p.kind == CodeKind::kE4M3 ? std::ldexp(1.0, -10) : std::ldexp(1.0, -17);
      const double y = ax / s;
      // Relative half-ulp, the subnormal half-quantum, and one float rounding of x * (1/s).
      return s * (y * std::ldexp(1.0, -(mbits + 1)) * (1 + 1e-6) + half_sub) + ax * 1e-6;
    }
    case CodeKind::kI8: return p.scale[j] * 0.5 * (1 + 1e-4) + 1e-6 * ax;
    case CodeKind::kB1: return std::fabs(x - p.offset[j]) + p.scale[j] + 1e-6;
  }
  return 0;
}

class CodecRoundTrip : public ::testing::TestWithParam<std::tuple<KindMode, std::size_t>> {};

TEST_P(CodecRoundTrip, ErrorWithinBoundAndNormsMatch) {
  const auto [km, dim] = GetParam();
  const Matrix data = testing::anisotropic(300, dim, 1000 + dim);
  const Codec c = train(km, data);
  ASSERT_EQ(c.code_size(), code_size(km.kind, km.mode, dim));
  std::vector<std::uint8_t> codes(data.rows * c.code_size());
  std::vector<float> norms(data.rows);
  ASSERT_TRUE(c.encode(data.view(), codes, norms).is_ok());
  Matrix back(data.rows, dim);
  ASSERT_TRUE(c.decode(codes, back.mut()).is_ok());
  const auto& p = c.params();
  for (std::size_t i = 0; i < data.rows; ++i) {
    // Scaled float8 is centred: the bound applies to y = x - offset.
    const bool centred = km.kind != CodeKind::kI8 && km.kind != CodeKind::kB1 && !p.offset.empty();
    double row_scale = 1.0;
    if (km.mode == ScaleMode::kPerVector) {
      float m = 0;
      for (std::size_t j = 0; j < dim; ++j)
        m = std::max(m, std::fabs(data.row(i)[j] - (centred ? p.offset[j] : 0.0f)));
      row_scale = m / fp8_max(km.kind);
    }
    double sq = 0;
    for (std::size_t j = 0; j < dim; ++j) {
      const float x = data.row(i)[j], y = back.row(i)[j];
      sq += double(y) * y;
      if (km.kind == CodeKind::kB1) {
        ASSERT_EQ(x > p.offset[j], y > p.offset[j]) << "row " << i << " dim " << j;
        ASSERT_NEAR(std::fabs(y - p.offset[j]), p.scale[j], 1e-6);
        continue;
      }
      const double s = km.mode == ScaleMode::kPerDim ? p.scale[j] : row_scale;
      const float xc = centred ? x - p.offset[j] : x;
      ASSERT_LE(std::fabs(double(x) - y), bound(c, xc, j, s) + (centred ? 1e-6 * std::fabs(x) : 0.0)) << name_of(km) << " row " << i << " dim " << j << " x=" << x;
    }
    ASSERT_NEAR(norms[i], sq, 1e-5 * sq + 1e-6) << i;
  }
  // squared_norms() agrees with the norms from encode().
  std::vector<float> norms2(data.rows);
  ASSERT_TRUE(c.squared_norms(codes, norms2).is_ok());
  EXPECT_EQ(norms, norms2);
}

INSTANTIATE_TEST_SUITE_P(
    KindsByDims, CodecRoundTrip,
    ::testing::Combine(::testing::ValuesIn(kAllKinds), ::testing::Values<std::size_t>(1, 7, 97, 384, 1536)),
    [](const auto& info) {
      return name_of(std::get<0>(info.param)) + "_d" + std::to_string(std::get<1>(info.param));
    });

TEST(Codec, PlainFp8CastSaturatesInsteadOfOverflowing) {
  Matrix m(1, 3);
  m.data = {1000.0f, -1e6f, 0.5f};
  CodecOptions o;
  o.kind = CodeKind::kE4M3;
  o.scale = ScaleMode::kNone;
  auto c = Codec::train(o, m.view());
  ASSERT_TRUE(c.is_ok());
  std::vector<std::uint8_t> codes(3);
  ASSERT_TRUE(c->encode(m.view(), codes).is_ok());
  Matrix back(1, 3);
  ASSERT_TRUE(c->decode(codes, back.mut()).is_ok());
  EXPECT_EQ(back.data[0], 448.0f);
  EXPECT_EQ(back.data[1], -448.0f);
  EXPECT_EQ(back.data[2], 0.5f);
}

TEST(Codec, ScaledFloat8IsCentredByDefault) {
  const Matrix m = testing::anisotropic(100, 6, 3);
  for (ScaleMode mode : {ScaleMode::kPerVector, ScaleMode::kPerDim}) {
    CodecOptions o;
    o.kind = CodeKind::kE4M3;
    o.scale = mode;
    auto centred = Codec::train(o, m.view());
    ASSERT_TRUE(centred.is_ok());
    ASSERT_EQ(centred->params().offset.size(), 6u);
    double mean0 = 0;
    for (std::size_t i = 0; i < m.rows; ++i) mean0 += m.row(i)[0];
    EXPECT_NEAR(centred->params().offset[0], mean0 / m.rows, 1e-5);
    o.fp8_center = false;
    auto plain = Codec::train(o, m.view());
    ASSERT_TRUE(plain.is_ok());
    EXPECT_TRUE(plain->params().offset.empty());
  }
  CodecOptions none;
  none.kind = CodeKind::kE5M2;
  none.scale = ScaleMode::kNone;
  EXPECT_TRUE(Codec::train(none, m.view())->params().offset.empty());  // the plain cast has no parameters
}

TEST(Codec, Int8PercentileClippingNarrowsTheRange) {
  Matrix m = testing::gaussian(1000, 4, 7);
  m.row(0)[0] = 1000.0f;  // one outlier
  CodecOptions o;
  o.kind = CodeKind::kI8;
  auto plain = Codec::train(o, m.view());
  o.int8_clip_percent = 1.0;
  auto clipped = Codec::train(o, m.view());
  ASSERT_TRUE(plain.is_ok() && clipped.is_ok());
  EXPECT_GT(plain->params().scale[0], 3.0f);
  EXPECT_LT(clipped->params().scale[0], 0.1f);
  // Values beyond the clip range saturate to the end codes.
  std::vector<std::uint8_t> codes(m.rows * 4);
  ASSERT_TRUE(clipped->encode(m.view(), codes).is_ok());
  EXPECT_EQ(static_cast<std::int8_t>(codes[0]), 127);
}

TEST(Codec, EmptyInputIsValid) {
  for (const auto& km : kAllKinds) {
    const Codec c = train(km, testing::gaussian(10, 5, 3));
    Matrix empty(0, 5);
    std::vector<std::uint8_t> codes;
    EXPECT_TRUE(c.encode(empty.view(), codes).is_ok()) << name_of(km);
    EXPECT_TRUE(c.decode(codes, empty.mut()).is_ok()) << name_of(km);
  }
}

TEST(Codec, RejectsBadInput) {
  const Codec c = train({CodeKind::kI8, ScaleMode::kNone}, testing::gaussian(10, 4, 3));
  Matrix bad = testing::gaussian(2, 4, 4);
  std::vector<std::uint8_t> codes(2 * 4);
  bad.row(1)[2] = NAN;
  Status s = c.encode(bad.view(), codes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("NaN"), std::string::npos) << s.message();
  bad.row(1)[2] = INFINITY;
  EXPECT_EQ(c.encode(bad.view(), codes).code(), StatusCode::kInvalidArgument);
  const Matrix wrong_dim = testing::gaussian(2, 5, 4);
  s = c.encode(wrong_dim.view(), codes);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("dimension"), std::string::npos);
  const Matrix ok = testing::gaussian(2, 4, 4);
  std::vector<std::uint8_t> short_buf(7);
  EXPECT_EQ(c.encode(ok.view(), short_buf).code(), StatusCode::kInvalidArgument);
  Matrix out(2, 4);
  std::vector<std::uint8_t> ragged(9);
  EXPECT_EQ(c.decode(ragged, out.mut()).code(), StatusCode::kInvalidArgument);

  const Codec untrained;
  EXPECT_EQ(untrained.encode(ok.view(), codes).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(untrained.decode(codes, out.mut()).code(), StatusCode::kFailedPrecondition);

  // Training errors: NaN in the sample, stats-based kinds with no rows, zero dimension.
  Matrix nan_sample = testing::gaussian(3, 4, 5);
  nan_sample.row(0)[0] = NAN;
  CodecOptions o;
  o.kind = CodeKind::kI8;
  EXPECT_EQ(Codec::train(o, nan_sample.view()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Codec::train(o, Matrix(0, 4).view()).status().code(), StatusCode::kInvalidArgument);
  o.kind = CodeKind::kF16;
  EXPECT_TRUE(Codec::train(o, Matrix(0, 4).view()).is_ok());
  EXPECT_EQ(Codec::train(o, Matrix(3, 0).view()).status().code(), StatusCode::kInvalidArgument);
}

TEST(Codec, SerializeRoundTripAndCorruption) {
  for (const auto& km : kAllKinds) {
    const Codec c = train(km, testing::anisotropic(50, 9, 11));
    const auto blob = c.serialize();
    auto back = Codec::deserialize(blob);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->params(), c.params());
    for (std::size_t i = 0; i < blob.size(); i += 3) {
      auto bad = blob;
      bad[i] ^= 0x01;
      EXPECT_EQ(Codec::deserialize(bad).status().code(), StatusCode::kCorruption) << name_of(km) << " byte " << i;
    }
    EXPECT_EQ(Codec::deserialize(std::span(blob).first(blob.size() / 2)).status().code(), StatusCode::kCorruption);
  }
  // A blob from a future format version names the version in the error.
  const Codec c = train({CodeKind::kF16, ScaleMode::kNone}, testing::gaussian(4, 3, 1));
  auto blob = c.serialize();
  blob[4] = 99;
  const Status s = Codec::deserialize(blob).status();
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("version 99"), std::string::npos) << s.message();
}

TEST(Codec, FromParamsValidates) {
  CodecParams p;
  p.kind = CodeKind::kI8;
  p.dim = 3;
  EXPECT_EQ(Codec::from_params(p).status().code(), StatusCode::kInvalidArgument);  // missing scales
  p.scale = {1, 1, 0};
  p.offset = {0, 0, 0};
  EXPECT_EQ(Codec::from_params(p).status().code(), StatusCode::kInvalidArgument);  // zero scale
  p.scale = {1, 1, 1};
  EXPECT_TRUE(Codec::from_params(p).is_ok());
  p.scale_mode = ScaleMode::kPerDim;
  EXPECT_EQ(Codec::from_params(p).status().code(), StatusCode::kInvalidArgument);  // not float8
}

TEST(Codec, Avx2F32DotAndF16EncodeAgreeWithPortableOnes) {
  const auto* avx2 = cpu::kernels_for("avx2");
  if (!avx2) GTEST_SKIP() << "this processor has no AVX2/FMA/F16C";
  const auto* generic = cpu::kernels_for("generic");
  for (std::size_t dim : {1, 7, 97, 384}) {
    const Matrix data = testing::anisotropic(20, dim, dim);
    const Matrix q = testing::gaussian(1, dim, 5);
    for (std::size_t i = 0; i < data.rows; ++i) {
      const float a = avx2->dot_f32(q.row(0), data.row(i), dim), b = generic->dot_f32(q.row(0), data.row(i), dim);
      ASSERT_NEAR(a, b, 1e-4 * (std::fabs(b) + 1)) << " d" << dim;
    }
    // F16 encode: the SIMD path is bit-identical to the scalar conversion.
    std::vector<std::uint16_t> h1(dim), h2(dim);
    avx2->encode_f16(data.row(0), h1.data(), dim);
    generic->encode_f16(data.row(0), h2.data(), dim);
    ASSERT_EQ(h1, h2);
  }
}

}  // namespace
}  // namespace vecstash::kernels

namespace vecstash::kernels {
namespace {

// Every ISA table this processor supports agrees with the portable one on the block kernels
// (dot products over tiles, Hamming distances, tile decoding, int8 encode).
class CpuIsa : public ::testing::TestWithParam<std::string> {};

TEST_P(CpuIsa, BlockKernelsAgreeWithPortableOnes) {
  const auto* generic = cpu::kernels_for("generic");
  ASSERT_NE(generic, nullptr);
  const std::string isa = GetParam();
  const auto* t = cpu::kernels_for(isa);
  if (t == nullptr) GTEST_SKIP() << "this processor cannot run the " << isa << " kernels";
  {
    for (std::size_t dim : {1, 8, 37, 100, 384}) {
      const std::size_t ld = (dim + 7) / 8 * 8, nq = 5, nr = 11;
      const testing::Matrix q = testing::gaussian(nq, ld, 3 + dim), tile = testing::gaussian(nr, ld, 4 + dim);
      std::vector<float> a(nq * nr), b(nq * nr);
      t->dot_block(q.data.data(), nq, tile.data.data(), nr, ld, a.data());
      generic->dot_block(q.data.data(), nq, tile.data.data(), nr, ld, b.data());
      for (std::size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-4 * (std::fabs(b[i]) + 1)) << isa << " d" << dim;

      const std::size_t words = (dim + 63) / 64;
      std::vector<std::uint64_t> x(words);
      std::vector<std::uint8_t> y(8 * words);
      for (std::size_t w = 0; w < words; ++w) x[w] = 0x9E3779B97F4A7C15ull * (w + dim);
      for (std::size_t i = 0; i < y.size(); ++i) y[i] = static_cast<std::uint8_t>(i * 37 + dim);
      ASSERT_EQ(t->hamming(x.data(), y.data(), words), generic->hamming(x.data(), y.data(), words)) << isa;

      const testing::Matrix data = testing::anisotropic(6, dim, dim);
      for (CodeKind kind : {CodeKind::kF16, CodeKind::kBF16, CodeKind::kE4M3, CodeKind::kE5M2, CodeKind::kI8}) {
        CodecOptions o;
        o.kind = kind;
        auto c = Codec::train(o, data.view());
        ASSERT_TRUE(c.is_ok());
        std::vector<std::uint8_t> codes(data.rows * c->code_size());
        ASSERT_TRUE(c->encode(data.view(), codes).is_ok());
        std::vector<float> ta(data.rows * ld), tb(data.rows * ld);
        t->decode_tile(kind, codes.data(), c->code_size(), data.rows, dim, ld, ta.data());
        generic->decode_tile(kind, codes.data(), c->code_size(), data.rows, dim, ld, tb.data());
        ASSERT_EQ(ta, tb) << isa << " " << to_string(kind) << " d" << dim;
      }
      auto i8 = Codec::train({CodeKind::kI8}, data.view());
      ASSERT_TRUE(i8.is_ok());
      const auto& p = i8->params();
      std::vector<float> inv(dim);
      for (std::size_t j = 0; j < dim; ++j) inv[j] = 1.0f / p.scale[j];
      std::vector<std::uint8_t> ea(dim), eb(dim);
      for (std::size_t i = 0; i < data.rows; ++i) {
        t->encode_i8(data.row(i), p.offset.data(), inv.data(), ea.data(), dim);
        generic->encode_i8(data.row(i), p.offset.data(), inv.data(), eb.data(), dim);
        ASSERT_EQ(ea, eb) << isa << " d" << dim;
      }
    }
  }
}

TEST_P(CpuIsa, Float8ConversionIsBitExact) {
  const auto* generic = cpu::kernels_for("generic");
  const auto* t = cpu::kernels_for(GetParam());
  if (t == nullptr) GTEST_SKIP() << "this processor cannot run the " << GetParam() << " kernels";
  // Every 251st float bit pattern (both signs, zeros, subnormals, normals, inf, NaN) plus the edges.
  std::vector<float> xs;
  for (std::uint64_t u = 0; u <= 0xFFFFFFFFull; u += 251) xs.push_back(numeric::bits_float(static_cast<std::uint32_t>(u)));
  for (float v : {0.0f, -0.0f, 448.0f, 464.0f, 480.0f, 57344.0f, 61440.0f, 1e-30f, INFINITY, -INFINITY, NAN})
    xs.push_back(v);
  for (bool e4m3 : {true, false}) {
    std::vector<std::uint8_t> a(xs.size()), b(xs.size());
    t->convert_fp8(e4m3, xs.data(), a.data(), xs.size());
    generic->convert_fp8(e4m3, xs.data(), b.data(), xs.size());
    for (std::size_t i = 0; i < xs.size(); ++i)
      ASSERT_EQ(a[i], b[i]) << (e4m3 ? "e4m3" : "e5m2") << " x=" << xs[i] << " bits=" << numeric::float_bits(xs[i]);
  }
}

// The int8 candidate scan kernels: packing is byte-identical, and every ISA reports the same hits with
// bit-identical keys for them (random codes, all three metrics, thresholds that let some rows through).
TEST_P(CpuIsa, Int8ScanKernelsAgreeWithPortableOnes) {
  const auto* generic = cpu::kernels_for("generic");
  const auto* t = cpu::kernels_for(GetParam());
  if (t == nullptr) GTEST_SKIP() << "this processor cannot run the " << GetParam() << " kernels";
  std::mt19937_64 rng(5);
  for (std::size_t dim : {1, 3, 4, 31, 32, 33, 100, 384}) {
    const std::size_t steps = (dim + 3) / 4, cs = dim + 3;  // code rows further apart than dim bytes
    for (std::size_t rows : {1, 7, 8, 15, 16, 17, 40, 64}) {
      std::vector<std::uint8_t> codes(rows * cs);
      for (auto& c : codes) c = static_cast<std::uint8_t>(rng());
      const std::size_t rows16 = (rows + 15) / 16 * 16;
      std::vector<std::uint8_t> pa(rows16 * 4 * steps, 0xAA), pb(rows16 * 4 * steps, 0x55);
      t->i8_pack(codes.data(), cs, rows, dim, pa.data());
      generic->i8_pack(codes.data(), cs, rows, dim, pb.data());
      ASSERT_EQ(pa, pb) << GetParam() << " pack d" << dim << " rows" << rows;

      for (std::size_t nq = 1; nq <= cpu::kI8QueryBlock; ++nq) {
        std::vector<std::int8_t> q(nq * 4 * steps, 0);
        std::vector<std::int32_t> corr(nq);
        std::vector<float> a(nq), b(nq), qq(nq), thr(nq);
        for (std::size_t i = 0; i < nq; ++i) {
          std::int32_t sum = 0;
          for (std::size_t j = 0; j < dim; ++j) {
            q[i * 4 * steps + j] = static_cast<std::int8_t>(static_cast<int>(rng() % 129) - 64);
            sum += q[i * 4 * steps + j];
          }
          corr[i] = 128 * sum;
          a[i] = 0.25f * static_cast<float>(static_cast<int>(rng() % 100) - 50);
          b[i] = i == 2 ? 0.0f : 1e-3f * static_cast<float>(1 + rng() % 100);  // query 2: all-zero step
          qq[i] = 10.0f;
        }
        std::vector<float> term(rows16);
        for (auto& v : term) v = 0.5f + 1e-3f * static_cast<float>(rng() % 1000);
        for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
          for (int pass = 0; pass < 3; ++pass) {
            // Thresholds: -inf (every row), then the key of a random row of the generic result.
            std::vector<float> ka(cpu::kI8QueryBlock * cpu::kI8TileRows), kb = ka;
            std::uint64_t ha[cpu::kI8QueryBlock] = {}, hb[cpu::kI8QueryBlock] = {};
            cpu::I8ScanQueries sq;
            sq.q = q.data();
            sq.count = nq;
            sq.corr = corr.data();
            sq.a = a.data();
            sq.b = b.data();
            sq.qq = qq.data();
            sq.threshold = thr.data();
            cpu::I8ScanTile tile;
            tile.packed = pb.data();
            tile.rows = rows16;
            tile.steps = steps;
            tile.row_term = term.data();
            if (pass == 0) std::fill(thr.begin(), thr.end(), -INFINITY);
            generic->i8_score(metric, sq, tile, kb.data(), hb);
            if (pass > 0) {
              for (std::size_t i = 0; i < nq; ++i) thr[i] = kb[i * cpu::kI8TileRows + rng() % rows16];
              generic->i8_score(metric, sq, tile, kb.data(), hb);
            }
            t->i8_score(metric, sq, tile, ka.data(), ha);
            for (std::size_t i = 0; i < nq; ++i) {
              ASSERT_EQ(ha[i], hb[i]) << GetParam() << " hits d" << dim << " rows" << rows << " q" << i << " "
                                      << to_string(metric) << " pass " << pass;
              for (std::size_t r = 0; r < rows16; ++r) {
                if ((hb[i] >> r) & 1) {
                  ASSERT_EQ(numeric::float_bits(ka[i * cpu::kI8TileRows + r]),
                            numeric::float_bits(kb[i * cpu::kI8TileRows + r]))
                      << GetParam() << " key d" << dim << " row " << r;
                }
              }
            }
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, CpuIsa, ::testing::Values("avx2", "avx512"));

}  // namespace
}  // namespace vecstash::kernels
