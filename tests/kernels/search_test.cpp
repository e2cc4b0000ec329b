#include "vecstash/kernels/search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <tuple>

#include "testing/random_data.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;

struct Case {
  CodeKind kind;
  ScaleMode mode;
  Metric metric;
};
std::string name_of(const Case& c) {
  return std::string(to_string(c.kind)) + "_" + std::string(to_string(c.mode)) + "_" + std::string(to_string(c.metric));
}

std::vector<Case> all_cases() {
  std::vector<Case> v;
  const std::vector<std::pair<CodeKind, ScaleMode>> kinds = {
      {CodeKind::kF32, ScaleMode::kNone},      {CodeKind::kF16, ScaleMode::kNone},
      {CodeKind::kBF16, ScaleMode::kNone},     {CodeKind::kE4M3, ScaleMode::kNone},
      {CodeKind::kE4M3, ScaleMode::kPerVector}, {CodeKind::kE4M3, ScaleMode::kPerDim},
      {CodeKind::kE5M2, ScaleMode::kPerDim},   {CodeKind::kE5M2, ScaleMode::kPerVector},
      {CodeKind::kI8, ScaleMode::kNone},       {CodeKind::kB1, ScaleMode::kNone}};
  for (const auto& [k, m] : kinds) {
    for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) v.push_back({k, m, metric});
  }
  v.push_back({CodeKind::kB1, ScaleMode::kNone, Metric::kHamming});
  return v;
}

struct Encoded {
  Codec codec;
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
  CodeView view(std::size_t rows) const { return {codes.data(), rows, norms.data()}; }
};

Encoded encode(const Case& c, const Matrix& data) {
  CodecOptions o;
  o.kind = c.kind;
  o.scale = c.mode;
  Encoded e;
  auto codec = Codec::train(o, data.view());
  EXPECT_TRUE(codec.is_ok());
  e.codec = std::move(codec).value();
  e.codes.resize(data.rows * e.codec.code_size());
  e.norms.resize(data.rows);
  EXPECT_TRUE(e.codec.encode(data.view(), e.codes, e.norms).is_ok());
  return e;
}

// Naive reference: decode everything, score in double, full sort by (score, id).
struct Ref {
  std::vector<std::int64_t> ids;
  std::vector<double> scores;  // natural form, aligned with ids
};
Ref naive(const Encoded& e, const float* q, std::size_t n, Metric metric) {
  const std::size_t d = e.codec.dim();
  Matrix dec(n, d);
  if (n > 0) {
    EXPECT_TRUE(e.codec.decode(std::span(e.codes).first(n * e.codec.code_size()), dec.mut()).is_ok());
  }
  std::vector<double> s(n);
  const auto& p = e.codec.params();
  for (std::size_t i = 0; i < n; ++i) {
    double ip = 0, l2 = 0, xx = 0, qq = 0;
    std::uint32_t ham = 0;
    for (std::size_t j = 0; j < d; ++j) {
      const double x = dec.row(i)[j];
      ip += q[j] * x;
      l2 += (q[j] - x) * (q[j] - x);
      xx += x * x;
      qq += double(q[j]) * q[j];
      if (metric == Metric::kHamming) ham += (q[j] > p.offset[j]) != (x > p.offset[j]);
    }
    switch (metric) {
      case Metric::kIp: s[i] = ip; break;
      case Metric::kL2: s[i] = l2; break;
      case Metric::kCos: s[i] = (xx > 0 && qq > 0) ? ip / std::sqrt(xx * qq) : 0; break;
      case Metric::kHamming: s[i] = ham; break;
    }
  }
  Ref r;
  r.ids.resize(n);
  std::iota(r.ids.begin(), r.ids.end(), 0);
  const bool hib = higher_is_better(metric);
  std::stable_sort(r.ids.begin(), r.ids.end(), [&](std::int64_t a, std::int64_t b) {
    return hib ? s[a] > s[b] : s[a] < s[b];
  });
  for (auto id : r.ids) r.scores.push_back(s[id]);
  return r;
}

// Compare one result row with the reference: scores close at every rank; ids equal wherever the
// reference score is separated from its neighbours by more than the tolerance.
void expect_matches(const TopK& got, std::size_t q, const Ref& ref, std::size_t n, double tol, const std::string& what) {
  const std::size_t k = got.k, m = std::min(k, n);
  for (std::size_t i = 0; i < k; ++i) {
    if (i >= m) {
      EXPECT_EQ(got.ids_of(q)[i], -1) << what << " padding rank " << i;
      EXPECT_TRUE(std::isinf(got.scores_of(q)[i])) << what;
      continue;
    }
    const double want = ref.scores[i];
    const double scale = std::max(1.0, std::fabs(want));
    ASSERT_NEAR(got.scores_of(q)[i], want, tol * scale) << what << " rank " << i;
    const bool sep_prev = i == 0 || std::fabs(ref.scores[i - 1] - want) > 2 * tol * scale;
    const bool sep_next = i + 1 >= n || std::fabs(ref.scores[i + 1] - want) > 2 * tol * scale;
    if (sep_prev && sep_next) {
      ASSERT_EQ(got.ids_of(q)[i], ref.ids[i]) << what << " rank " << i;
    }
  }
}

class SearchVsNaive : public ::testing::TestWithParam<std::tuple<Case, std::size_t>> {};

TEST_P(SearchVsNaive, TopKEqualsReference) {
  const auto [c, k] = GetParam();
  const std::size_t dim = 37, big = 700;
  const Matrix data = testing::anisotropic(big, dim, 77);
  const Matrix queries = testing::anisotropic(5, dim, 78);
  const Encoded e = encode(c, data);
  const double tol = c.metric == Metric::kHamming ? 0.0 : 2e-4;
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, k - 1, k, k + 1, big}) {
    if (n > big) continue;
    SearchParams sp;
    sp.metric = c.metric;
    sp.k = k;
    TopK out;
    ASSERT_TRUE(search_cpu(e.codec, queries.view(), e.view(n), sp, &out).is_ok());
    ASSERT_EQ(out.nq, queries.rows);
    ASSERT_EQ(out.k, k);
    for (std::size_t q = 0; q < queries.rows; ++q) {
      const Ref ref = naive(e, queries.row(q), n, c.metric);
      expect_matches(out, q, ref, n, tol, name_of(c) + " k=" + std::to_string(k) + " n=" + std::to_string(n));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(KindsMetricsK, SearchVsNaive,
                         ::testing::Combine(::testing::ValuesIn(all_cases()), ::testing::Values<std::size_t>(1, 10, 100)),
                         [](const auto& info) {
                           return name_of(std::get<0>(info.param)) + "_k" + std::to_string(std::get<1>(info.param));
                         });

TEST(Search, ThreadCountDoesNotChangeResults) {
  const Matrix data = testing::anisotropic(5000, 64, 3);
  const Matrix queries = testing::anisotropic(40, 64, 4);
  for (const Case& c : all_cases()) {
    const Encoded e = encode(c, data);
    SearchParams sp;
    sp.metric = c.metric;
    sp.k = 10;
    TopK one, many;
    sp.threads = 1;
    ASSERT_TRUE(search_cpu(e.codec, queries.view(), e.view(data.rows), sp, &one).is_ok());
    sp.threads = 4;
    ASSERT_TRUE(search_cpu(e.codec, queries.view(), e.view(data.rows), sp, &many).is_ok());
    EXPECT_EQ(one.ids, many.ids) << name_of(c);
    EXPECT_EQ(one.scores, many.scores) << name_of(c);
    // A single query takes the row-partitioned path; it must agree with the batched one.
    TopK single;
    ASSERT_TRUE(search_cpu(e.codec, MatrixView<const float>(queries.row(0), 1, 64), e.view(data.rows), sp, &single).is_ok());
    EXPECT_TRUE(std::equal(single.ids.begin(), single.ids.end(), one.ids.begin())) << name_of(c);
  }
}

TEST(Search, TiesAreOrderedByRowIndex) {
  Matrix data(50, 8);
  for (std::size_t i = 0; i < data.rows; ++i)
    for (std::size_t j = 0; j < 8; ++j) data.row(i)[j] = (i % 5 == 0) ? 1.0f : 0.25f;  // 10 identical best rows
  const Encoded e = encode({CodeKind::kF32, ScaleMode::kNone, Metric::kIp}, data);
  Matrix q(1, 8);
  std::fill(q.data.begin(), q.data.end(), 1.0f);
  SearchParams sp;
  sp.k = 12;
  TopK out;
  sp.threads = 2;
  ASSERT_TRUE(search_cpu(e.codec, q.view(), e.view(data.rows), sp, &out).is_ok());
  const std::vector<std::int64_t> want{0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 1, 2};
  EXPECT_EQ(std::vector<std::int64_t>(out.ids.begin(), out.ids.end()), want);
}

TEST(Search, RejectsBadInput) {
  const Matrix data = testing::gaussian(20, 8, 1);
  const Encoded e = encode({CodeKind::kI8, ScaleMode::kNone, Metric::kIp}, data);
  Matrix q = testing::gaussian(2, 8, 2);
  SearchParams sp;
  TopK out;
  sp.k = 0;
  EXPECT_EQ(search_cpu(e.codec, q.view(), e.view(20), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.k = kMaxK + 1;
  EXPECT_EQ(search_cpu(e.codec, q.view(), e.view(20), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.k = 5;
  sp.metric = Metric::kHamming;
  EXPECT_EQ(search_cpu(e.codec, q.view(), e.view(20), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.metric = Metric::kL2;
  CodeView no_norms = e.view(20);
  no_norms.sq_norms = nullptr;
  EXPECT_EQ(search_cpu(e.codec, q.view(), no_norms, sp, &out).code(), StatusCode::kInvalidArgument);
  sp.metric = Metric::kIp;
  q.row(1)[3] = NAN;
  EXPECT_EQ(search_cpu(e.codec, q.view(), e.view(20), sp, &out).code(), StatusCode::kInvalidArgument);
  const Matrix wrong = testing::gaussian(2, 9, 2);
  EXPECT_EQ(search_cpu(e.codec, wrong.view(), e.view(20), sp, &out).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(search_cpu(Codec(), wrong.view(), e.view(20), sp, &out).code(), StatusCode::kFailedPrecondition);
  // No queries is a valid, empty search.
  ASSERT_TRUE(search_cpu(e.codec, Matrix(0, 8).view(), e.view(20), sp, &out).is_ok());
  EXPECT_EQ(out.nq, 0u);
}

TEST(SearchF32, MatchesNaiveAndRescoringRecoversExactOrder) {
  const Matrix base = testing::anisotropic(2000, 48, 21);
  const Matrix queries = testing::anisotropic(10, 48, 22);
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    const Encoded f32 = encode({CodeKind::kF32, ScaleMode::kNone, metric}, base);
    SearchParams sp;
    sp.metric = metric;
    sp.k = 10;
    TopK exact;
    ASSERT_TRUE(search_f32(queries.view(), base.view(), sp, &exact).is_ok());
    for (std::size_t q = 0; q < queries.rows; ++q)
      expect_matches(exact, q, naive(f32, queries.row(q), base.rows, metric), base.rows, 2e-4, "f32");

    // int8 candidates (top 40) rescored with float32 give the exact top 10 on this data.
    const Encoded i8 = encode({CodeKind::kI8, ScaleMode::kNone, metric}, base);
    SearchParams wide = sp;
    wide.k = 40;
    TopK cand, rescored;
    ASSERT_TRUE(search_cpu(i8.codec, queries.view(), i8.view(base.rows), wide, &cand).is_ok());
    ASSERT_TRUE(rescore_f32(queries.view(), base.view(), cand, sp, &rescored).is_ok());
    EXPECT_EQ(rescored.ids, exact.ids) << to_string(metric);
    for (std::size_t i = 0; i < exact.scores.size(); ++i)
      EXPECT_NEAR(rescored.scores[i], exact.scores[i], 1e-3 * std::max(1.0f, std::fabs(exact.scores[i])));
  }
  // Candidate ids out of range are rejected.
  TopK cand;
  cand.resize(1, 1, Metric::kIp);
  cand.ids[0] = 5000;
  TopK out;
  SearchParams sp;
  sp.k = 1;
  EXPECT_EQ(rescore_f32(MatrixView<const float>(queries.row(0), 1, 48), base.view(), cand, sp, &out).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vecstash::kernels
