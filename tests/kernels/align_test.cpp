#include "vecstash/kernels/align.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "testing/random_data.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;
using testing::orthonormal_rows;

/// A fit, or the reason the test must skip (this build has no BLAS/LAPACK).
Alignment fit_or_skip(const Matrix& src, const Matrix& dst, const AlignOptions& o, bool* skipped) {
  auto a = Alignment::fit(src.view(), dst.view(), o);
  *skipped = !a.is_ok() && a.status().code() == StatusCode::kUnavailable;
  if (*skipped) return Alignment();
  EXPECT_TRUE(a.is_ok()) << a.status().to_string();
  return a.is_ok() ? std::move(a).value() : Alignment();
}

#define FIT_OR_SKIP(var, src, dst, o)                                                                     \
  bool var##_skipped = false;                                                                             \
  Alignment var = fit_or_skip(src, dst, o, &var##_skipped);                                               \
  if (var##_skipped) GTEST_SKIP() << "this build has no BLAS/LAPACK: Alignment::fit returns Unavailable"; \
  ASSERT_TRUE(var.fitted())

/// The transpose of a row-major rows x cols matrix.
std::vector<double> transpose(const std::vector<double>& a, std::size_t rows, std::size_t cols) {
  std::vector<double> t(a.size());
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  return t;
}

/// y = x W + bias + noise * N(0, 1), W: x.cols x dout row-major.
Matrix map_rows(const Matrix& x, const std::vector<double>& w, std::size_t dout, const std::vector<double>& bias,
                double noise, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  Matrix y(x.rows, dout);
  for (std::size_t i = 0; i < x.rows; ++i)
    for (std::size_t o = 0; o < dout; ++o) {
      double v = bias.empty() ? 0.0 : bias[o];
      for (std::size_t j = 0; j < x.cols; ++j) v += double(x.row(i)[j]) * w[j * dout + o];
      y.row(i)[o] = static_cast<float>(v + noise * g(rng));
    }
  return y;
}

/// ||A - B||_F / ||B||_F between the fitted float matrix and a double reference.
double relative_error(const std::vector<float>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    num += std::pow(double(a[i]) - b[i], 2);
    den += b[i] * b[i];
  }
  return std::sqrt(num / den);
}

/// The Gram matrix of W (din x dout, row-major) on its smaller side, in double.
std::vector<double> small_gram(const std::vector<float>& w, std::size_t din, std::size_t dout) {
  const bool cols = din >= dout;  // W^T W (dout x dout), else W W^T (din x din)
  const std::size_t k = cols ? dout : din, len = cols ? din : dout;
  auto at = [&](std::size_t v, std::size_t e) { return double(cols ? w[e * dout + v] : w[v * dout + e]); };
  std::vector<double> g(k * k, 0.0);
  for (std::size_t a = 0; a < k; ++a)
    for (std::size_t b = 0; b < k; ++b)
      for (std::size_t e = 0; e < len; ++e) g[a * k + b] += at(a, e) * at(b, e);
  return g;
}

TEST(Alignment, ProcrustesRecoversANoisyRotationAndShift) {
  constexpr std::size_t kDim = 64, kAnchors = 600;
  const Matrix src = testing::gaussian(kAnchors, kDim, 1);
  const auto q = orthonormal_rows(kDim, kDim, 2);
  std::vector<double> bias(kDim);
  for (std::size_t o = 0; o < kDim; ++o) bias[o] = 0.5 - 0.02 * double(o);
  const Matrix dst = map_rows(src, q, kDim, bias, 0.01, 3);
  AlignOptions o;
  FIT_OR_SKIP(al, src, dst, o);
  const AlignmentParams& p = al.params();
  EXPECT_EQ(p.method, AlignMethod::kProcrustes);
  EXPECT_TRUE(p.center);
  ASSERT_EQ(al.dim_in(), kDim);
  ASSERT_EQ(al.dim_out(), kDim);
  EXPECT_LT(relative_error(p.matrix, q), 0.01);
  EXPECT_LT(al.orthogonality_gap(), 1e-3);  // the noise barely changes the scale
  EXPECT_GT(al.fit_cosine(), 0.999);
  for (std::size_t o2 = 0; o2 < kDim; ++o2) EXPECT_NEAR(p.mean_out[o2] - bias[o2], 0.0, 0.2) << o2;

  // Fresh rows are mapped onto their images.
  const Matrix x = testing::gaussian(50, kDim, 4);
  const Matrix want = map_rows(x, q, kDim, bias, 0.0, 5);
  Matrix got(50, kDim);
  ASSERT_TRUE(al.apply(x.view(), got.mut()).is_ok());
  for (std::size_t i = 0; i < got.data.size(); ++i) ASSERT_NEAR(got.data[i], want.data[i], 0.05) << i;

  // Without centring (and without a shift) the rotation alone is recovered as well.
  const Matrix dst0 = map_rows(src, q, kDim, {}, 0.01, 6);
  AlignOptions plain;
  plain.center = false;
  FIT_OR_SKIP(al0, src, dst0, plain);
  EXPECT_LT(relative_error(al0.params().matrix, q), 0.01);
  for (float v : al0.params().mean_in) EXPECT_EQ(v, 0.0f);
  for (float v : al0.params().mean_out) EXPECT_EQ(v, 0.0f);
}

TEST(Alignment, ProcrustesSemiOrthogonalMapsBothWays) {
  constexpr std::size_t kAnchors = 400;
  // dim_in > dim_out: target = source projected on 20 orthonormal directions, scaled by 3. The map is
  // not rescaled: W^T W = I, and W spans the 20 directions.
  {
    const std::size_t din = 48, dout = 20;
    const Matrix src = testing::gaussian(kAnchors, din, 10);
    const auto p0 = transpose(orthonormal_rows(dout, din, 11), dout, din);  // din x dout, orthonormal columns
    auto p = p0;
    for (auto& v : p) v *= 3.0;
    const Matrix dst = map_rows(src, p, dout, {}, 0.0, 12);
    AlignOptions o;
    FIT_OR_SKIP(al, src, dst, o);
    const auto& w = al.params().matrix;
    const auto g = small_gram(w, din, dout);
    for (std::size_t a = 0; a < dout; ++a)
      for (std::size_t b = 0; b < dout; ++b) EXPECT_NEAR(g[a * dout + b], a == b ? 1.0 : 0.0, 1e-5) << a << "," << b;
    // W is the polar factor of X^T X P0 (a sample's X^T X is close to, not exactly, a multiple of I):
    // its columns are close to P0's.
    double agree = 0.0;
    for (std::size_t j = 0; j < dout; ++j)
      for (std::size_t i = 0; i < din; ++i) agree += double(w[i * dout + j]) * p0[i * dout + j];
    EXPECT_GT(agree / dout, 0.95);
    EXPECT_LT(al.orthogonality_gap(), 1e-5);
    EXPECT_GT(al.fit_cosine(), 0.95);
  }
  // dim_in < dim_out: target = source embedded in 40 dimensions (orthonormal rows): W W^T = I, s = 1.
  {
    const std::size_t din = 24, dout = 40;
    const Matrix src = testing::gaussian(kAnchors, din, 13);
    const auto r = orthonormal_rows(din, dout, 14);  // din x dout
    const Matrix dst = map_rows(src, r, dout, {}, 0.0, 15);
    AlignOptions o;
    FIT_OR_SKIP(al, src, dst, o);
    EXPECT_LT(relative_error(al.params().matrix, r), 1e-5);
    const auto g = small_gram(al.params().matrix, din, dout);
    for (std::size_t a = 0; a < din; ++a)
      for (std::size_t b = 0; b < din; ++b) EXPECT_NEAR(g[a * din + b], a == b ? 1.0 : 0.0, 1e-5);
    EXPECT_LT(al.orthogonality_gap(), 1e-5);
    EXPECT_GT(al.fit_cosine(), 0.99999);
  }
}

TEST(Alignment, AffineRecoversAGeneralLinearMapWithBias) {
  constexpr std::size_t din = 24, dout = 16, kAnchors = 500;
  const Matrix src = testing::anisotropic(kAnchors, din, 20);
  std::mt19937_64 rng(21);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> a(din * dout), bias(dout);
  for (auto& v : a) v = g(rng);
  for (auto& v : bias) v = 2.0 * g(rng);
  const Matrix dst = map_rows(src, a, dout, bias, 1e-3, 22);
  AlignOptions o;
  o.method = AlignMethod::kAffine;
  o.lambda = 1e-6;
  FIT_OR_SKIP(al, src, dst, o);
  EXPECT_EQ(al.params().method, AlignMethod::kAffine);
  EXPECT_LT(relative_error(al.params().matrix, a), 1e-3);
  EXPECT_GT(al.fit_cosine(), 0.9999);
  const Matrix x = testing::anisotropic(40, din, 23);
  const Matrix want = map_rows(x, a, dout, bias, 0.0, 24);
  Matrix got(40, dout);
  ASSERT_TRUE(al.apply(x.view(), got.mut()).is_ok());
  for (std::size_t i = 0; i < got.data.size(); ++i)
    ASSERT_NEAR(got.data[i], want.data[i], 5e-3 * (1 + std::fabs(want.data[i]))) << i;

  // Procrustes cannot represent this map: its fit is clearly worse.
  AlignOptions procrustes;
  FIT_OR_SKIP(pr, src, dst, procrustes);
  EXPECT_LT(pr.fit_cosine(), al.fit_cosine() - 0.01);
}

TEST(Alignment, AffineWithAHugeLambdaIsProcrustes) {
  constexpr std::size_t din = 30, dout = 30, kAnchors = 300;
  const Matrix src = testing::anisotropic(kAnchors, din, 30);
  const Matrix dst = testing::anisotropic(kAnchors, dout, 31);  // unrelated: the two fits differ a lot
  AlignOptions po;
  FIT_OR_SKIP(pr, src, dst, po);
  AlignOptions ao;
  ao.method = AlignMethod::kAffine;
  ao.lambda = 1e6;
  FIT_OR_SKIP(af, src, dst, ao);
  std::vector<double> wp(pr.params().matrix.begin(), pr.params().matrix.end());
  EXPECT_LT(relative_error(af.params().matrix, wp), 1e-5);
  ao.lambda = 1.0;  // the default: in between
  FIT_OR_SKIP(mid, src, dst, ao);
  EXPECT_GT(relative_error(mid.params().matrix, wp), 1e-3);
}

TEST(Alignment, AffineLeastSquaresWithFewerAnchorsThanDimensions) {
  constexpr std::size_t din = 32, dout = 12, kAnchors = 10;
  const Matrix src = testing::gaussian(kAnchors, din, 40);
  const Matrix dst = testing::gaussian(kAnchors, dout, 41);
  AlignOptions o;
  o.method = AlignMethod::kAffine;
  o.lambda = 0.0;
  FIT_OR_SKIP(al, src, dst, o);
  // Underdetermined: the anchors are interpolated (up to the 1e-9 ridge).
  Matrix mapped(kAnchors, dout);
  ASSERT_TRUE(al.apply(src.view(), mapped.mut()).is_ok());
  for (std::size_t i = 0; i < mapped.data.size(); ++i) ASSERT_NEAR(mapped.data[i], dst.data[i], 1e-3) << i;
  EXPECT_GT(al.fit_cosine(), 0.9999);
}

TEST(Alignment, ApplyMatchesAHandComputation) {
  AlignmentParams p;
  p.method = AlignMethod::kAffine;
  p.center = true;
  p.lambda = 0.5;
  p.dim_in = 3;
  p.dim_out = 2;
  p.mean_in = {1.0f, 2.0f, 3.0f};
  p.mean_out = {-1.0f, 0.5f};
  p.matrix = {1.0f, 2.0f,    //
              0.0f, -1.0f,   //
              0.5f, 0.25f};  // 3 x 2
  auto al = Alignment::from_params(p);
  ASSERT_TRUE(al.is_ok()) << al.status().to_string();
  EXPECT_EQ(al->params(), p);
  EXPECT_TRUE(std::isnan(al->fit_cosine()));
  // y = (x - mean_in) W + mean_out for x = (2, 2, 5): (1, 0, 2) W = (2, 2.5); + mean_out = (1, 3).
  // x = (0, 0, 0): (-1, -2, -3) W = (-2.5, -0.75); + mean_out = (-3.5, -0.25).
  const std::vector<float> x = {2, 2, 5, 0, 0, 0};
  std::vector<float> wide(2 * 4, 99.0f);
  ASSERT_TRUE(al->apply(MatrixView<const float>(x.data(), 2, 3), MatrixView<float>(wide.data(), 2, 2, 4)).is_ok());
  EXPECT_FLOAT_EQ(wide[0], 1.0f);
  EXPECT_FLOAT_EQ(wide[1], 3.0f);
  EXPECT_EQ(wide[2], 99.0f);  // the stride's gap is untouched
  EXPECT_FLOAT_EQ(wide[4], -3.5f);
  EXPECT_FLOAT_EQ(wide[5], -0.25f);
  // Gram of W^T W = [[1.25, 2.125], [2.125, 5.0625]]: gap = ||G - I||_F / sqrt(2).
  const double gap = std::sqrt(0.25 * 0.25 + 2 * 2.125 * 2.125 + 4.0625 * 4.0625) / std::sqrt(2.0);
  EXPECT_NEAR(al->orthogonality_gap(), gap, 1e-6);

  // Many rows: the same floats whatever the thread count, and a row's result does not depend on the batch.
  AlignmentParams big;
  big.center = true;
  big.dim_in = 97;
  big.dim_out = 41;
  const Matrix w = testing::gaussian(97, 41, 50), mi = testing::gaussian(1, 97, 51), mo = testing::gaussian(1, 41, 52);
  big.matrix = w.data;
  big.mean_in = mi.data;
  big.mean_out = mo.data;
  auto bal = Alignment::from_params(big);
  ASSERT_TRUE(bal.is_ok());
  const Matrix rows = testing::anisotropic(1003, 97, 53);
  Matrix ref(1003, 41);
  ASSERT_TRUE(bal->apply(rows.view(), ref.mut(), 1).is_ok());
  for (int threads : {0, 2, 5}) {
    Matrix got(1003, 41);
    ASSERT_TRUE(bal->apply(rows.view(), got.mut(), threads).is_ok());
    ASSERT_EQ(std::memcmp(got.data.data(), ref.data.data(), ref.data.size() * sizeof(float)), 0) << threads;
  }
  Matrix part(7, 41);
  ASSERT_TRUE(bal->apply(MatrixView<const float>(rows.row(100), 7, 97), part.mut()).is_ok());
  EXPECT_EQ(std::memcmp(part.data.data(), ref.row(100), part.data.size() * sizeof(float)), 0);
  for (std::size_t i = 0; i < 1003; i += 97)
    for (std::size_t o = 0; o < 41; ++o) {
      double v = 0;
      for (std::size_t j = 0; j < 97; ++j) v += (double(rows.row(i)[j]) - mi.data[j]) * w.row(j)[o];
      ASSERT_NEAR(ref.row(i)[o], v + mo.data[o], 1e-4 * (1 + std::fabs(v))) << i << "," << o;
    }
}

TEST(Alignment, SerializeRoundTripAndDamagedBlobs) {
  const Matrix src = testing::gaussian(200, 20, 60);
  const Matrix dst = map_rows(src, orthonormal_rows(20, 20, 61), 20, {}, 0.05, 62);
  AlignOptions o;
  o.method = AlignMethod::kAffine;
  o.lambda = 2.5;
  o.center = false;
  FIT_OR_SKIP(al, src, dst, o);
  const auto blob = al.serialize();
  ASSERT_GE(blob.size(), 8u);
  EXPECT_EQ(std::memcmp(blob.data(), "VSAL", 4), 0);
  auto back = Alignment::deserialize(blob);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->params(), al.params());
  EXPECT_EQ(back->fit_cosine(), al.fit_cosine());
  EXPECT_EQ(back->orthogonality_gap(), al.orthogonality_gap());
  EXPECT_EQ(back->serialize(), blob);

  auto flipped = blob;
  flipped[flipped.size() / 2] ^= 0x10;
  EXPECT_EQ(Alignment::deserialize(flipped).status().code(), StatusCode::kCorruption);
  auto future = blob;
  future[4] = 9;
  EXPECT_EQ(Alignment::deserialize(future).status().code(), StatusCode::kCorruption);
  EXPECT_EQ(Alignment::deserialize(std::span<const std::uint8_t>(blob.data(), blob.size() - 3)).status().code(),
            StatusCode::kCorruption);
  EXPECT_EQ(Alignment::deserialize({}).status().code(), StatusCode::kCorruption);
  auto pca_magic = blob;
  std::memcpy(pca_magic.data(), "VSPC", 4);
  EXPECT_EQ(Alignment::deserialize(pca_magic).status().code(), StatusCode::kCorruption);
}

TEST(Alignment, FromParamsRoundTripsWithoutLapack) {
  AlignmentParams p;
  p.method = AlignMethod::kProcrustes;
  p.center = false;
  p.lambda = 1.0;
  p.dim_in = 2;
  p.dim_out = 3;
  p.mean_in = {0, 0};
  p.mean_out = {0, 0, 0};
  p.matrix = {1, 0, 0, 0, 1, 0};  // orthonormal rows
  auto al = Alignment::from_params(p);
  ASSERT_TRUE(al.is_ok()) << al.status().to_string();
  EXPECT_NEAR(al->orthogonality_gap(), 0.0, 1e-7);
  auto back = Alignment::deserialize(al->serialize());
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->params(), p);
  EXPECT_TRUE(std::isnan(back->fit_cosine()));
}

TEST(Alignment, RejectsBadInputWithStatus) {
  const Matrix src = testing::gaussian(10, 8, 70), dst = testing::gaussian(10, 6, 71);
  AlignOptions o;
  const auto code = [](const Result<Alignment>& r) { return r.status().code(); };
  const auto names = [](const Result<Alignment>& r, const char* field) {
    return r.status().message().find(field) != std::string::npos;
  };
  EXPECT_EQ(code(Alignment::fit(src.view(), MatrixView<const float>(dst.data.data(), 9, 6), o)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Alignment::fit(MatrixView<const float>(src.data.data(), 1, 8),
                                MatrixView<const float>(dst.data.data(), 1, 6), o)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Alignment::fit(MatrixView<const float>(src.data.data(), 10, 0), dst.view(), o)),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(code(Alignment::fit(src.view(), MatrixView<const float>(dst.data.data(), 10, 0), o)),
            StatusCode::kInvalidArgument);
  Matrix nan_src = src;
  nan_src.row(3)[1] = std::numeric_limits<float>::quiet_NaN();
  auto r = Alignment::fit(nan_src.view(), dst.view(), o);
  EXPECT_EQ(code(r), StatusCode::kInvalidArgument);
  EXPECT_TRUE(names(r, "source")) << r.status().message();
  Matrix inf_dst = dst;
  inf_dst.row(9)[5] = std::numeric_limits<float>::infinity();
  r = Alignment::fit(src.view(), inf_dst.view(), o);
  EXPECT_EQ(code(r), StatusCode::kInvalidArgument);
  EXPECT_TRUE(names(r, "target")) << r.status().message();
  for (double bad : {-1.0, 2e6, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    AlignOptions b;
    b.lambda = bad;
    r = Alignment::fit(src.view(), dst.view(), b);
    EXPECT_EQ(code(r), StatusCode::kInvalidArgument) << bad;
    EXPECT_TRUE(names(r, "lambda")) << r.status().message();
  }
  AlignOptions bad_method;
  bad_method.method = static_cast<AlignMethod>(7);
  r = Alignment::fit(src.view(), dst.view(), bad_method);
  EXPECT_EQ(code(r), StatusCode::kInvalidArgument);
  EXPECT_TRUE(names(r, "method")) << r.status().message();

  // Parameters.
  AlignmentParams good;
  good.center = true;
  good.dim_in = 2;
  good.dim_out = 2;
  good.mean_in = {1, 2};
  good.mean_out = {3, 4};
  good.matrix = {1, 0, 0, 1};
  ASSERT_TRUE(Alignment::from_params(good).is_ok());
  auto with = [&](auto change) {
    AlignmentParams p = good;
    change(p);
    return Alignment::from_params(p);
  };
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.dim_in = 0; }), "dim_in"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.dim_out = 70000; }), "dim_out"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.mean_in.pop_back(); }), "mean_in"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.mean_out.push_back(0); }), "mean_out"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.matrix.pop_back(); }), "matrix"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.matrix[1] = NAN; }), "matrix"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.mean_in[0] = INFINITY; }), "mean_in"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.center = false; }), "mean_in"));  // non-zero means
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.lambda = -0.5; }), "lambda"));
  EXPECT_TRUE(names(with([](AlignmentParams& p) { p.method = static_cast<AlignMethod>(2); }), "method"));
  EXPECT_EQ(code(with([](AlignmentParams& p) { p.matrix.clear(); })), StatusCode::kInvalidArgument);

  // Apply.
  auto al = Alignment::from_params(good);
  Matrix out(3, 2);
  EXPECT_EQ(al->apply(testing::gaussian(3, 3, 72).view(), out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix wrong_out(3, 3);
  EXPECT_EQ(al->apply(testing::gaussian(3, 2, 73).view(), wrong_out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix nan_rows = testing::gaussian(3, 2, 74);
  nan_rows.row(1)[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(al->apply(nan_rows.view(), out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(al->apply(MatrixView<const float>(), MatrixView<float>()).is_ok());
  EXPECT_EQ(Alignment().apply(testing::gaussian(3, 2, 75).view(), out.mut()).code(), StatusCode::kFailedPrecondition);
}

// ---- LocalCorrection ----------------------------------------------------------------------------

/// A linear map given by its matrix (no LAPACK needed): y = x W.
Alignment linear_map(const std::vector<double>& w, std::size_t din, std::size_t dout) {
  AlignmentParams p;
  p.center = false;
  p.dim_in = static_cast<std::uint32_t>(din);
  p.dim_out = static_cast<std::uint32_t>(dout);
  p.mean_in.assign(din, 0.0f);
  p.mean_out.assign(dout, 0.0f);
  p.matrix.assign(w.begin(), w.end());
  auto a = Alignment::from_params(std::move(p));
  EXPECT_TRUE(a.is_ok()) << a.status().to_string();
  return a.is_ok() ? std::move(a).value() : Alignment();
}

std::vector<double> identity(std::size_t d) {
  std::vector<double> w(d * d, 0.0);
  for (std::size_t i = 0; i < d; ++i) w[i * d + i] = 1.0;
  return w;
}

/// Points around `clusters` well-separated centres; the target adds a per-cluster offset (not a
/// linear function of the point). Row i belongs to cluster i % clusters.
void clustered_pairs(std::size_t rows, std::size_t clusters, std::size_t dim, std::uint64_t seed,
                     std::uint64_t noise_seed, Matrix* src, Matrix* dst) {
  const Matrix centres = testing::gaussian(clusters, dim, seed, 0.0f, 2.0f);
  const Matrix offsets = testing::gaussian(clusters, dim, seed + 1, 0.0f, 1.5f);
  const Matrix noise = testing::gaussian(rows, dim, noise_seed, 0.0f, 0.05f);
  *src = Matrix(rows, dim);
  *dst = Matrix(rows, dim);
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < dim; ++j) {
      src->row(i)[j] = centres.row(i % clusters)[j] + noise.row(i)[j];
      dst->row(i)[j] = src->row(i)[j] + offsets.row(i % clusters)[j];
    }
}

double mean_cosine(const Matrix& a, const Matrix& b) {
  double sum = 0.0;
  for (std::size_t i = 0; i < a.rows; ++i) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t j = 0; j < a.cols; ++j) {
      ab += double(a.row(i)[j]) * b.row(i)[j];
      aa += double(a.row(i)[j]) * a.row(i)[j];
      bb += double(b.row(i)[j]) * b.row(i)[j];
    }
    sum += ab / std::sqrt(aa * bb);
  }
  return sum / static_cast<double>(a.rows);
}

Matrix apply_both(const Alignment& base, const LocalCorrection* lc, const Matrix& x, int threads) {
  Matrix y(x.rows, base.dim_out());
  EXPECT_TRUE(base.apply(x.view(), y.mut(), threads).is_ok());
  if (lc) {
    EXPECT_TRUE(lc->apply(x.view(), y.mut(), threads).is_ok());
  }
  return y;
}

TEST(LocalCorrection, CorrectsAPiecewiseMapAndChoosesItsParametersByLeaveOneOut) {
  constexpr std::size_t kDim = 16, kClusters = 8;
  Matrix anchors_src, anchors_dst, held_src, held_dst;
  clustered_pairs(320, kClusters, kDim, 70, 71, &anchors_src, &anchors_dst);
  clustered_pairs(200, kClusters, kDim, 70, 72, &held_src, &held_dst);  // same centres and offsets, new noise
  const Alignment base = linear_map(identity(kDim), kDim, kDim);
  auto lc = LocalCorrection::fit(base, anchors_src.view(), anchors_dst.view(), {});
  ASSERT_TRUE(lc.is_ok()) << lc.status().to_string();
  EXPECT_GT(lc->params().weight, 0.5f);
  EXPECT_GT(lc->loo_cosine(), lc->base_cosine() + 0.1);
  const double before = mean_cosine(apply_both(base, nullptr, held_src, 1), held_dst);
  const double after = mean_cosine(apply_both(base, &*lc, held_src, 1), held_dst);
  std::printf("[ local ] k %u, temperature %.2f, weight %.2f; LOO cos %.4f (base %.4f); held-out cos %.4f -> %.4f\n",
              lc->params().neighbours, lc->params().temperature, lc->params().weight, lc->loo_cosine(),
              lc->base_cosine(), before, after);
  EXPECT_LT(before, 0.9);
  EXPECT_GT(after, 0.995);
}

TEST(LocalCorrection, LeavesAnExactLinearMapWithNoisyTargetsAlone) {
  constexpr std::size_t kIn = 12, kOut = 9;
  const Matrix src = testing::gaussian(300, kIn, 80);
  const auto w = transpose(orthonormal_rows(kOut, kIn, 81), kOut, kIn);  // kIn x kOut
  const Matrix dst = map_rows(src, w, kOut, {}, 0.3, 82);                // residuals: independent noise
  const Alignment base = linear_map(w, kIn, kOut);
  auto lc = LocalCorrection::fit(base, src.view(), dst.view(), {});
  ASSERT_TRUE(lc.is_ok()) << lc.status().to_string();
  EXPECT_EQ(lc->params().weight, 0.0f);  // neighbours' noise only hurts: leave-one-out says so
  EXPECT_NEAR(lc->loo_cosine(), lc->base_cosine(), 1e-12);
  const Matrix q = testing::gaussian(50, kIn, 83);
  const Matrix plain = apply_both(base, nullptr, q, 1), corrected = apply_both(base, &*lc, q, 1);
  EXPECT_EQ(0, std::memcmp(plain.data.data(), corrected.data.data(), plain.data.size() * sizeof(float)));
}

TEST(LocalCorrection, FixedParametersMapEachAnchorOntoItsTarget) {
  constexpr std::size_t kIn = 10, kOut = 6;
  const Matrix src = testing::gaussian(64, kIn, 90), dst = testing::gaussian(64, kOut, 91);
  const Alignment base = linear_map(transpose(orthonormal_rows(kOut, kIn, 92), kOut, kIn), kIn, kOut);
  LocalCorrectionOptions o;
  o.neighbours = 1;
  o.temperature = 0.01f;
  o.weight = 1.0f;
  auto lc = LocalCorrection::fit(base, src.view(), dst.view(), o);
  ASSERT_TRUE(lc.is_ok()) << lc.status().to_string();
  EXPECT_EQ(lc->params(), (LocalCorrectionParams{1, 0.01f, 1.0f}));
  const Matrix y = apply_both(base, &*lc, src, 0);  // an anchor's nearest anchor is itself
  for (std::size_t i = 0; i < src.rows; ++i)
    for (std::size_t o2 = 0; o2 < kOut; ++o2) EXPECT_NEAR(y.row(i)[o2], dst.row(i)[o2], 1e-5) << i;
}

TEST(LocalCorrection, ApplyDoesNotDependOnTheThreadCount) {
  constexpr std::size_t kDim = 24;
  Matrix src, dst;
  clustered_pairs(500, 12, kDim, 100, 101, &src, &dst);
  const Alignment base = linear_map(identity(kDim), kDim, kDim);
  auto lc = LocalCorrection::fit(base, src.view(), dst.view(), {}, 1);
  auto lc4 = LocalCorrection::fit(base, src.view(), dst.view(), {}, 4);
  ASSERT_TRUE(lc.is_ok() && lc4.is_ok());
  EXPECT_EQ(lc->params(), lc4->params());
  EXPECT_EQ(lc->loo_cosine(), lc4->loo_cosine());
  const Matrix q = testing::gaussian(700, kDim, 102);  // more than one block of rows
  const Matrix a = apply_both(base, &*lc, q, 1), b = apply_both(base, &*lc, q, 4);
  EXPECT_EQ(0, std::memcmp(a.data.data(), b.data.data(), a.data.size() * sizeof(float)));
}

TEST(LocalCorrection, RejectsBadInputWithStatus) {
  const Matrix src = testing::gaussian(20, 4, 110), dst = testing::gaussian(20, 3, 111);
  const Alignment base = linear_map(std::vector<double>(12, 0.5), 4, 3);
  auto code = [&](const Matrix& s, const Matrix& d, LocalCorrectionOptions o) {
    return LocalCorrection::fit(base, s.view(), d.view(), o).status().code();
  };
  EXPECT_EQ(LocalCorrection::fit(Alignment(), src.view(), dst.view(), {}).status().code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(code(testing::gaussian(1, 4, 1), testing::gaussian(1, 3, 2), {}), StatusCode::kInvalidArgument);
  EXPECT_EQ(code(src, testing::gaussian(19, 3, 2), {}), StatusCode::kInvalidArgument);  // row counts
  EXPECT_EQ(code(testing::gaussian(20, 5, 1), dst, {}), StatusCode::kInvalidArgument);  // dim_in
  EXPECT_EQ(code(src, testing::gaussian(20, 4, 2), {}), StatusCode::kInvalidArgument);  // dim_out
  Matrix bad = src;
  bad.row(3)[1] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(code(bad, dst, {}), StatusCode::kInvalidArgument);
  Matrix zero = src;
  std::fill_n(zero.row(5), 4, 0.0f);  // no direction: no cosine to it
  EXPECT_EQ(code(zero, dst, {}), StatusCode::kInvalidArgument);
  for (std::uint32_t k : {0u, 21u}) {
    LocalCorrectionOptions o;
    o.neighbours = k;
    EXPECT_EQ(code(src, dst, o), StatusCode::kInvalidArgument) << k;
  }
  for (float t : {0.0f, -1.0f, 11.0f, std::numeric_limits<float>::quiet_NaN()}) {
    LocalCorrectionOptions o;
    o.temperature = t;
    EXPECT_EQ(code(src, dst, o), StatusCode::kInvalidArgument) << t;
  }
  for (float w : {-0.1f, 2.5f, std::numeric_limits<float>::infinity()}) {
    LocalCorrectionOptions o;
    o.weight = w;
    EXPECT_EQ(code(src, dst, o), StatusCode::kInvalidArgument) << w;
  }
  Matrix out(2, 3);
  const Matrix rows = testing::gaussian(2, 4, 112);
  EXPECT_EQ(LocalCorrection().apply(rows.view(), out.mut()).code(), StatusCode::kFailedPrecondition);
  LocalCorrectionOptions o;
  o.weight = 1.0f;  // a correction that does something, so apply() checks everything
  auto lc = LocalCorrection::fit(base, src.view(), dst.view(), o);
  ASSERT_TRUE(lc.is_ok()) << lc.status().to_string();
  Matrix wrong_out(2, 4);
  EXPECT_EQ(lc->apply(rows.view(), wrong_out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(lc->apply(testing::gaussian(2, 5, 113).view(), out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix nan_rows = rows;
  nan_rows.row(1)[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(lc->apply(nan_rows.view(), out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(lc->apply(rows.view(), out.mut()).is_ok());
}

TEST(LocalCorrection, WithWeightZeroItsFitIsTheBaseFitExactly) {
  const Matrix src = testing::gaussian(80, 6, 120), dst = testing::gaussian(80, 5, 121);
  FIT_OR_SKIP(base, src, dst, AlignOptions{});
  LocalCorrectionOptions o;
  o.weight = 0.0f;
  auto lc = LocalCorrection::fit(base, src.view(), dst.view(), o);
  ASSERT_TRUE(lc.is_ok()) << lc.status().to_string();
  EXPECT_EQ(lc->loo_cosine(), base.fit_cosine());  // what the REST answer promises (docs/API.md)
  EXPECT_EQ(lc->base_cosine(), base.fit_cosine());
}

}  // namespace
}  // namespace vecstash::kernels
