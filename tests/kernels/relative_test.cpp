#include "vecstash/kernels/relative.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/relative_helpers.h"
#include "testing/random_data.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;
using testing::orthonormal_rows;

/// The definition, in double: cos(x - mu, a - mu) with mu the anchors' mean as a float (0 without centring).
Matrix naive_relative(const Matrix& anchors, const Matrix& rows, bool center, double* max_abs = nullptr) {
  const std::size_t m = anchors.rows, d = anchors.cols;
  std::vector<double> mu(d, 0.0);
  if (center) {
    for (std::size_t i = 0; i < m; ++i)
      for (std::size_t j = 0; j < d; ++j) mu[j] += anchors.row(i)[j];
    // The mean is the float that RelativeBasis::mean() stores (computed in double, rounded once).
    for (auto& v : mu) v = static_cast<float>(v / static_cast<double>(m));
  }
  Matrix out(rows.rows, m);
  double mx = 0;
  for (std::size_t i = 0; i < rows.rows; ++i)
    for (std::size_t a = 0; a < m; ++a) {
      double dot = 0, xx = 0, aa = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double x = rows.row(i)[j] - mu[j], y = anchors.row(a)[j] - mu[j];
        dot += x * y;
        xx += x * x;
        aa += y * y;
      }
      const double c = xx > 0 ? dot / std::sqrt(xx * aa) : 0.0;
      out.row(i)[a] = static_cast<float>(c);
      mx = std::max(mx, std::fabs(c));
    }
  if (max_abs) *max_abs = mx;
  return out;
}

/// Rows with the corners: a zero row, the anchors' mean (zero after centring), an anchor itself, a
/// negated anchor, a huge row and a tiny one.
Matrix test_rows(std::size_t n, const Matrix& anchors, std::uint64_t seed) {
  const std::size_t d = anchors.cols;
  Matrix base = testing::anisotropic(n, d, seed);
  Matrix m(n + 6, d);
  std::copy(base.data.begin(), base.data.end(), m.data.begin());
  std::vector<double> mu(d, 0.0);
  for (std::size_t i = 0; i < anchors.rows; ++i)
    for (std::size_t j = 0; j < d; ++j) mu[j] += anchors.row(i)[j];
  for (std::size_t j = 0; j < d; ++j) {
    m.row(n)[j] = 0.0f;
    m.row(n + 1)[j] = static_cast<float>(mu[j] / static_cast<double>(anchors.rows));
    m.row(n + 2)[j] = anchors.row(0)[j];
    m.row(n + 3)[j] = -anchors.row(anchors.rows - 1)[j];
    m.row(n + 4)[j] = base.row(0)[j] * 1e30f;
    m.row(n + 5)[j] = base.row(1)[j] * 1e-30f;
  }
  return m;
}

struct Shape {
  std::size_t dim, anchors;
  bool center;
};

class RelativeShapes : public ::testing::TestWithParam<Shape> {};

TEST_P(RelativeShapes, MatchesTheDefinitionInDouble) {
  const Shape s = GetParam();
  const Matrix anchors = testing::anisotropic(s.anchors, s.dim, 100 + s.dim + s.anchors);
  const RelativeBasis basis = test::make_relative_basis(anchors, s.center);
  ASSERT_TRUE(basis.ready());
  ASSERT_EQ(basis.dim(), s.dim);
  ASSERT_EQ(basis.anchors(), s.anchors);
  ASSERT_EQ(basis.options().center, s.center);
  ASSERT_EQ(basis.unit_anchors().size(), s.anchors * s.dim);
  ASSERT_EQ(basis.mean().size(), s.dim);

  // The accessors: unit anchors have norm 1 and point along a - mean.
  for (std::size_t a = 0; a < s.anchors; ++a) {
    double n2 = 0;
    for (std::size_t j = 0; j < s.dim; ++j) n2 += std::pow(double(basis.unit_anchors()[a * s.dim + j]), 2);
    EXPECT_NEAR(n2, 1.0, 1e-6) << "anchor " << a;
  }
  if (!s.center) {
    for (float v : basis.mean()) EXPECT_EQ(v, 0.0f);
  }

  const Matrix rows = test_rows(71, anchors, 200 + s.dim);
  Matrix out(rows.rows, s.anchors);
  ASSERT_TRUE(basis.transform(rows.view(), out.mut()).is_ok());
  const Matrix want = naive_relative(anchors, rows, s.center);
  // A float dot product of two unit vectors: about sqrt(d) float roundings of the products.
  const double tol = 1e-6 + 2e-7 * std::sqrt(double(s.dim));
  double worst = 0;
  for (std::size_t i = 0; i < rows.rows; ++i)
    for (std::size_t a = 0; a < s.anchors; ++a) {
      const double err = std::fabs(double(out.row(i)[a]) - want.row(i)[a]);
      worst = std::max(worst, err);
      ASSERT_LE(err, tol) << "row " << i << " anchor " << a << ": got " << out.row(i)[a] << ", want " << want.row(i)[a];
      ASSERT_LE(std::fabs(out.row(i)[a]), 1.0f + 1e-6f);
    }
  // The row that is zero after centring (the zero row, or with centring the mean row) gives zeros.
  for (std::size_t a = 0; a < s.anchors; ++a) EXPECT_EQ(out.row(s.center ? 72 : 71)[a], 0.0f);
  // An anchor is at cosine 1 to itself, its negation at -1 to the last anchor (without centring).
  EXPECT_NEAR(out.row(73)[0], 1.0f, 1e-5);
  if (!s.center) {
    EXPECT_NEAR(out.row(74)[s.anchors - 1], -1.0f, 1e-5);
  }
  // Scale invariance: the huge and tiny copies of rows 0 and 1.
  for (std::size_t a = 0; a < s.anchors && !s.center; ++a) {
    EXPECT_NEAR(out.row(75)[a], out.row(0)[a], 1e-6);
    EXPECT_NEAR(out.row(76)[a], out.row(1)[a], 1e-6);
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", worst);
  RecordProperty("max_abs_error", buf);
}

std::vector<Shape> shapes() {
  std::vector<Shape> v;
  for (std::size_t dim : {1, 7, 97, 384})
    for (std::size_t m : {1, 5, 64, 129})
      for (bool center : {false, true}) {
        if (center && (m == 1 || dim == 1)) continue;  // one anchor (or d = 1 with distinct signs) is degenerate
        v.push_back({dim, m, center});
      }
  v.push_back({1536, 33, true});
  return v;
}

INSTANTIATE_TEST_SUITE_P(Dims, RelativeShapes, ::testing::ValuesIn(shapes()), [](const auto& info) {
  std::string name = "d";
  name += std::to_string(info.param.dim) + "_m" + std::to_string(info.param.anchors);
  name += info.param.center ? "_centred" : "_plain";
  return name;
});

TEST(Relative, SameFloatsWhateverTheThreadsOrTheBatch) {
  constexpr std::size_t kDim = 97, kAnchors = 67, kRows = 1001;
  const Matrix anchors = testing::gaussian(kAnchors, kDim, 1);
  const Matrix rows = testing::anisotropic(kRows, kDim, 2);
  for (bool center : {false, true}) {
    const RelativeBasis basis = test::make_relative_basis(anchors, center);
    Matrix ref(kRows, kAnchors);
    ASSERT_TRUE(basis.transform(rows.view(), ref.mut(), 1).is_ok());
    for (int threads : {0, 2, 3, 7}) {
      Matrix got(kRows, kAnchors);
      ASSERT_TRUE(basis.transform(rows.view(), got.mut(), threads).is_ok());
      ASSERT_EQ(std::memcmp(got.data.data(), ref.data.data(), got.data.size() * sizeof(float)), 0)
          << "threads " << threads;
    }
    // A row's vector does not depend on the batch it comes in, nor on its position there; strided
    // input and output views.
    for (std::size_t start : {std::size_t{5}, std::size_t{33}, std::size_t{999}}) {
      const std::size_t count = std::min<std::size_t>(37, kRows - start);
      const MatrixView<const float> part(rows.row(start), count, kDim, kDim);
      Matrix wide(count, kAnchors + 3);
      const MatrixView<float> out(wide.data.data(), count, kAnchors, kAnchors + 3);
      ASSERT_TRUE(basis.transform(part, out).is_ok());
      for (std::size_t i = 0; i < count; ++i)
        ASSERT_EQ(std::memcmp(out.row(i), ref.row(start + i), kAnchors * sizeof(float)), 0) << start << "+" << i;
    }
  }
}

/// y = s * x Q + t for every row.
Matrix similarity_transform(const Matrix& x, const std::vector<double>& q, double s, const std::vector<double>& t) {
  const std::size_t d = x.cols;
  Matrix y(x.rows, d);
  for (std::size_t i = 0; i < x.rows; ++i)
    for (std::size_t o = 0; o < d; ++o) {
      double v = 0;
      for (std::size_t j = 0; j < d; ++j) v += double(x.row(i)[j]) * q[j * d + o];
      y.row(i)[o] = static_cast<float>(s * v + t[o]);
    }
  return y;
}

// The point of relative representations: an angle-preserving change of the embedding space (rotation
// and scale; with centring also a translation) leaves them unchanged.
TEST(Relative, InvariantUnderRotationScaleAndTranslation) {
  constexpr std::size_t kDim = 48, kAnchors = 40;
  const Matrix anchors = testing::gaussian(kAnchors, kDim, 11);
  const Matrix rows = testing::anisotropic(200, kDim, 12);
  const auto q = orthonormal_rows(kDim, kDim, 13);
  std::vector<double> shift(kDim, 0.0);
  for (bool center : {false, true}) {
    if (center)
      for (std::size_t j = 0; j < kDim; ++j) shift[j] = 3.0 + 0.1 * double(j);
    const Matrix anchors2 = similarity_transform(anchors, q, 2.5, shift);
    const Matrix rows2 = similarity_transform(rows, q, 2.5, shift);
    const RelativeBasis b1 = test::make_relative_basis(anchors, center), b2 = test::make_relative_basis(anchors2, center);
    Matrix r1(rows.rows, kAnchors), r2(rows.rows, kAnchors);
    ASSERT_TRUE(b1.transform(rows.view(), r1.mut()).is_ok());
    ASSERT_TRUE(b2.transform(rows2.view(), r2.mut()).is_ok());
    for (std::size_t i = 0; i < r1.data.size(); ++i)
      ASSERT_NEAR(r1.data[i], r2.data[i], 2e-5) << "element " << i << " center " << center;
  }
}

struct CodecCase {
  CodeKind kind;
  ScaleMode mode;
};

TEST(Relative, EncodeIsCodecEncodeOfTransform) {
  const std::vector<CodecCase> cases = {{CodeKind::kF32, ScaleMode::kNone},       {CodeKind::kF16, ScaleMode::kNone},
                                        {CodeKind::kBF16, ScaleMode::kNone},      {CodeKind::kE4M3, ScaleMode::kNone},
                                        {CodeKind::kE4M3, ScaleMode::kPerVector}, {CodeKind::kE4M3, ScaleMode::kPerDim},
                                        {CodeKind::kE5M2, ScaleMode::kPerVector}, {CodeKind::kI8, ScaleMode::kNone},
                                        {CodeKind::kB1, ScaleMode::kNone}};
  for (std::size_t dim : {7, 97}) {
    for (std::size_t m : {1, 30, 70}) {
      const Matrix anchors = testing::anisotropic(m, dim, 300 + m);
      for (bool center : {false, true}) {
        if (center && m == 1) continue;
        const RelativeBasis basis = test::make_relative_basis(anchors, center);
        const Matrix rows = test_rows(150, anchors, 400 + dim);
        const std::size_t n = rows.rows;
        Matrix rel(n, m);
        ASSERT_TRUE(basis.transform(rows.view(), rel.mut()).is_ok());
        for (const CodecCase& cc : cases) {
          SCOPED_TRACE(std::string(to_string(cc.kind)) + "/" + std::string(to_string(cc.mode)) +
                       " d=" + std::to_string(dim) + " m=" + std::to_string(m) + " center=" + std::to_string(center));
          CodecOptions co;
          co.kind = cc.kind;
          co.scale = cc.mode;
          auto codec = Codec::train(co, rel.view());
          ASSERT_TRUE(codec.is_ok()) << codec.status().to_string();
          const std::size_t cs = codec->code_size();
          std::vector<std::uint8_t> want(n * cs);
          std::vector<float> want_norms(n);
          ASSERT_TRUE(codec->encode(rel.view(), want, want_norms).is_ok());
          for (int threads : {1, 0, 3}) {
            std::vector<std::uint8_t> got(n * cs, 0xCD);
            std::vector<float> norms(n, -1.0f);
            const Status st = basis.encode(*codec, rows.view(), got, norms, threads);
            ASSERT_TRUE(st.is_ok()) << st.to_string();
            ASSERT_TRUE(got == want) << "threads " << threads;
            ASSERT_EQ(std::memcmp(norms.data(), want_norms.data(), n * sizeof(float)), 0) << "threads " << threads;
          }
          // Norms are optional; a strided input; n = 1 and n = 0.
          Matrix wide(n, dim + 5);
          for (std::size_t i = 0; i < n; ++i) std::copy(rows.row(i), rows.row(i) + dim, wide.row(i));
          std::vector<std::uint8_t> got(n * cs);
          ASSERT_TRUE(basis.encode(*codec, MatrixView<const float>(wide.data.data(), n, dim, dim + 5), got).is_ok());
          ASSERT_TRUE(got == want);
          std::vector<std::uint8_t> one(cs);
          ASSERT_TRUE(basis.encode(*codec, MatrixView<const float>(rows.row(3), 1, dim), one).is_ok());
          ASSERT_EQ(std::memcmp(one.data(), want.data() + 3 * cs, cs), 0);
          ASSERT_TRUE(basis.encode(*codec, MatrixView<const float>(), {}).is_ok());
        }
      }
    }
  }
}

TEST(Relative, RejectsBadInputWithStatus) {
  const Matrix anchors = testing::gaussian(8, 16, 21);
  RelativeOptions plain, centred;
  centred.center = true;
  // Anchors.
  EXPECT_EQ(RelativeBasis::make(MatrixView<const float>(), plain).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(RelativeBasis::make(MatrixView<const float>(anchors.data.data(), 4, 0), plain).status().code(),
            StatusCode::kInvalidArgument);
  Matrix nan_anchor = anchors;
  nan_anchor.row(2)[5] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(RelativeBasis::make(nan_anchor.view(), plain).status().code(), StatusCode::kInvalidArgument);
  Matrix inf_anchor = anchors;
  inf_anchor.row(7)[0] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(RelativeBasis::make(inf_anchor.view(), plain).status().code(), StatusCode::kInvalidArgument);
  Matrix zero_anchor = anchors;
  std::fill(zero_anchor.row(4), zero_anchor.row(4) + 16, 0.0f);
  auto z = RelativeBasis::make(zero_anchor.view(), plain);
  ASSERT_EQ(z.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(z.status().message().find("anchor 4"), std::string::npos) << z.status().message();
  // With centring a single anchor, or identical anchors, are zero after centring; without, they are fine.
  const MatrixView<const float> single(anchors.data.data(), 1, 16);
  EXPECT_EQ(RelativeBasis::make(single, centred).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(RelativeBasis::make(single, plain).is_ok());
  Matrix same(3, 16);
  for (std::size_t i = 0; i < 3; ++i) std::copy(anchors.row(0), anchors.row(0) + 16, same.row(i));
  EXPECT_EQ(RelativeBasis::make(same.view(), centred).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> too_many((kMaxRelativeAnchors + 1) * 1, 1.0f);
  EXPECT_EQ(
      RelativeBasis::make(MatrixView<const float>(too_many.data(), kMaxRelativeAnchors + 1, 1), plain).status().code(),
      StatusCode::kInvalidArgument);

  // Transform.
  const RelativeBasis basis = test::make_relative_basis(anchors, false);
  const Matrix rows = testing::gaussian(5, 16, 22);
  Matrix out(5, 8);
  EXPECT_TRUE(basis.transform(rows.view(), out.mut()).is_ok());
  EXPECT_EQ(basis.transform(testing::gaussian(5, 15, 23).view(), out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix nan_rows = rows;
  nan_rows.row(4)[15] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(basis.transform(nan_rows.view(), out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix wrong_out(5, 7), short_out(4, 8);
  EXPECT_EQ(basis.transform(rows.view(), wrong_out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(basis.transform(rows.view(), short_out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(basis.transform(MatrixView<const float>(), MatrixView<float>()).is_ok());
  EXPECT_EQ(RelativeBasis().transform(rows.view(), out.mut()).code(), StatusCode::kFailedPrecondition);
  EXPECT_FALSE(RelativeBasis().ready());

  // Encode.
  CodecOptions co;
  co.kind = CodeKind::kI8;
  auto codec = Codec::train(co, out.view());
  ASSERT_TRUE(codec.is_ok());
  std::vector<std::uint8_t> codes(5 * codec->code_size());
  std::vector<float> norms(5);
  EXPECT_TRUE(basis.encode(*codec, rows.view(), codes, norms).is_ok());
  EXPECT_EQ(basis.encode(Codec(), rows.view(), codes).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(RelativeBasis().encode(*codec, rows.view(), codes).code(), StatusCode::kFailedPrecondition);
  auto codec7 = Codec::train(co, testing::gaussian(20, 7, 24).view());
  ASSERT_TRUE(codec7.is_ok());
  EXPECT_EQ(basis.encode(*codec7, rows.view(), codes).code(), StatusCode::kInvalidArgument);
  std::vector<std::uint8_t> short_codes(codes.size() - 1);
  EXPECT_EQ(basis.encode(*codec, rows.view(), short_codes).code(), StatusCode::kInvalidArgument);
  std::vector<float> short_norms(4);
  EXPECT_EQ(basis.encode(*codec, rows.view(), codes, short_norms).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(basis.encode(*codec, nan_rows.view(), codes).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vecstash::kernels
