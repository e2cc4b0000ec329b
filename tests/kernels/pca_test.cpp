#include "vecstash/kernels/pca.h"

#include <gtest/gtest.h>

#include <cmath>

#include "testing/random_data.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;

const std::vector<float> kSigmas{10, 8, 6, 4, 2};

Pca fit_or_skip(const Matrix& m, PcaOptions o, bool* skipped) {
  auto p = Pca::fit(m.view(), o);
  *skipped = !p.is_ok() && p.status().code() == StatusCode::kUnavailable;
  if (*skipped) return Pca();
  EXPECT_TRUE(p.is_ok()) << p.status().to_string();
  return p.is_ok() ? std::move(p).value() : Pca();
}

#define FIT_OR_SKIP(var, m, o)                                            \
  bool var##_skipped = false;                                             \
  Pca var = fit_or_skip(m, o, &var##_skipped);                            \
  if (var##_skipped) GTEST_SKIP() << "this build has no BLAS/LAPACK";

TEST(Pca, RecoversPlantedSubspaceAndVariance) {
  Matrix basis;
  const float noise = 0.01f;
  const Matrix data = testing::planted_low_rank(8000, 64, kSigmas, noise, 5, &basis);
  PcaOptions o;
  o.components = 5;
  FIT_OR_SKIP(pca, data, o);
  ASSERT_EQ(pca.dim_out(), 5u);
  const auto& p = pca.params();
  // Each planted direction lies in the fitted subspace: its projection keeps (almost) unit norm.
  for (std::size_t r = 0; r < basis.rows; ++r) {
    double norm2 = 0;
    for (std::size_t c = 0; c < 5; ++c) {
      double dot = 0;
      for (std::size_t j = 0; j < 64; ++j) dot += double(basis.row(r)[j]) * p.components[c * 64 + j];
      norm2 += dot * dot;
    }
    EXPECT_GT(norm2, 0.999) << "planted direction " << r;
  }
  // Components are orthonormal.
  for (std::size_t a = 0; a < 5; ++a)
    for (std::size_t b = 0; b < 5; ++b) {
      double dot = 0;
      for (std::size_t j = 0; j < 64; ++j) dot += double(p.components[a * 64 + j]) * p.components[b * 64 + j];
      EXPECT_NEAR(dot, a == b ? 1.0 : 0.0, 1e-5);
    }
  // Eigenvalues match the planted variances (sampling error ~ sqrt(2/n) ~ 2%).
  for (std::size_t i = 0; i < kSigmas.size(); ++i)
    EXPECT_NEAR(p.eigenvalues[i], double(kSigmas[i]) * kSigmas[i], 0.06 * kSigmas[i] * kSigmas[i]) << i;
  EXPECT_NEAR(p.eigenvalues[5], noise * noise, noise * noise);
  // Explained variance: the planted part over the total.
  double planted = 0;
  for (float s : kSigmas) planted += double(s) * s;
  const double want = planted / (planted + 64 * noise * noise);
  EXPECT_NEAR(pca.explained_variance_ratio(), want, 1e-3);
}

TEST(Pca, ComponentsChosenByVarianceFraction) {
  const std::vector<double> ev{100, 64, 36, 16, 4, 0};  // total 220
  EXPECT_EQ(components_for_fraction(ev, 0.45), 1u);       // 100/220 = 0.4545
  EXPECT_EQ(components_for_fraction(ev, 0.46), 2u);
  EXPECT_EQ(components_for_fraction(ev, 0.90), 3u);       // 200/220 = 0.909
  EXPECT_EQ(components_for_fraction(ev, 0.95), 4u);       // 216/220 = 0.982
  EXPECT_EQ(components_for_fraction(ev, 1.0), 5u);        // the zero eigenvalue adds nothing
  const Matrix data = testing::planted_low_rank(6000, 32, kSigmas, 0.01f, 9);
  PcaOptions o;
  o.variance_fraction = 0.90;  // planted: 100+64+36 = 200 of 220 -> 3 components
  FIT_OR_SKIP(pca, data, o);
  EXPECT_EQ(pca.dim_out(), 3u);
  EXPECT_GE(pca.explained_variance_ratio(), 0.90);
}

TEST(Pca, TransformInverseAndQueryConsistency) {
  const Matrix data = testing::planted_low_rank(3000, 40, kSigmas, 0.01f, 13);
  PcaOptions o;
  o.components = 5;
  FIT_OR_SKIP(pca, data, o);
  Matrix y(data.rows, 5), back(data.rows, 40);
  ASSERT_TRUE(pca.transform(data.view(), y.mut()).is_ok());
  ASSERT_TRUE(pca.inverse_transform(y.view(), back.mut()).is_ok());
  double err = 0;
  for (std::size_t i = 0; i < data.data.size(); ++i) err = std::max(err, double(std::fabs(data.data[i] - back.data[i])));
  EXPECT_LT(err, 0.1);  // only the isotropic noise (0.01 per dimension) is lost

  const Matrix q = testing::gaussian(4, 40, 99);
  Matrix qip(4, 5), ql2(4, 5);
  ASSERT_TRUE(pca.transform_queries(q.view(), qip.mut(), Metric::kIp).is_ok());
  ASSERT_TRUE(pca.transform_queries(q.view(), ql2.mut(), Metric::kL2).is_ok());
  const auto& mean = pca.params().mean;
  for (std::size_t a = 0; a < 4; ++a)
    for (std::size_t i = 0; i < 50; ++i) {
      // Inner product: q . x_hat = q . mean + (W q) . y  (the query is not centred).
      double lhs = 0, qm = 0, rhs = 0, l2_full = 0, l2_proj = 0;
      for (std::size_t j = 0; j < 40; ++j) {
        lhs += double(q.row(a)[j]) * back.row(i)[j];
        qm += double(q.row(a)[j]) * mean[j];
      }
      for (std::size_t c = 0; c < 5; ++c) rhs += double(qip.row(a)[c]) * y.row(i)[c];
      EXPECT_NEAR(lhs, qm + rhs, 1e-3 * (1 + std::fabs(lhs)));
      // L2: distances to reconstructions = projected distance + the query's out-of-subspace part,
      // which is the same for every row: check differences between two rows instead.
      for (std::size_t c = 0; c < 5; ++c) l2_proj += std::pow(double(ql2.row(a)[c]) - y.row(i)[c], 2);
      for (std::size_t j = 0; j < 40; ++j) l2_full += std::pow(double(q.row(a)[j]) - back.row(i)[j], 2);
      static double offset = 0;
      if (i == 0) offset = l2_full - l2_proj;
      EXPECT_NEAR(l2_full - l2_proj, offset, 1e-2 * (1 + std::fabs(offset)));
    }
}

TEST(Pca, SerializeAndBadInput) {
  const Matrix data = testing::planted_low_rank(500, 16, {3, 2}, 0.1f, 1);
  PcaOptions o;
  o.components = 2;
  FIT_OR_SKIP(pca, data, o);
  const auto blob = pca.serialize();
  auto back = Pca::deserialize(blob);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->params(), pca.params());
  auto bad = blob;
  bad[bad.size() / 2] ^= 0x10;
  EXPECT_EQ(Pca::deserialize(bad).status().code(), StatusCode::kCorruption);
  auto future = blob;
  future[4] = 7;
  EXPECT_EQ(Pca::deserialize(future).status().code(), StatusCode::kCorruption);

  EXPECT_EQ(Pca::fit(Matrix(1, 16).view(), o).status().code(), StatusCode::kInvalidArgument);
  o.components = 17;
  EXPECT_EQ(Pca::fit(data.view(), o).status().code(), StatusCode::kInvalidArgument);
  o.components = 0;
  o.variance_fraction = 0.0;
  EXPECT_EQ(Pca::fit(data.view(), o).status().code(), StatusCode::kInvalidArgument);
  Matrix nan_data = data;
  nan_data.row(3)[3] = NAN;
  o.variance_fraction = 0.5;
  EXPECT_EQ(Pca::fit(nan_data.view(), o).status().code(), StatusCode::kInvalidArgument);
  Matrix wrong(2, 15), out(2, 2);
  EXPECT_EQ(pca.transform(wrong.view(), out.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Pca().transform(data.view(), out.mut()).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vecstash::kernels
