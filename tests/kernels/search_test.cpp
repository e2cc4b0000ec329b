#include "vecstash/kernels/search.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <tuple>

#include "cpu/cpu_features.h"
#include "cpu/i8_scan.h"
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

// ---- row eligibility (CodeView::allow) ----------------------------------------------------------

struct Mask {
  std::string name;
  std::vector<std::uint64_t> words;  // empty = no bitset (null)
  const std::uint64_t* ptr() const { return words.empty() ? nullptr : words.data(); }
};

std::vector<std::uint64_t> mask_words(std::size_t n, const std::vector<bool>& on) {
  std::vector<std::uint64_t> w((n + 63) / 64 + 1, 0);  // + 1: a word past the end must not matter
  for (std::size_t r = 0; r < n; ++r)
    if (on[r]) w[r / 64] |= std::uint64_t{1} << (r % 64);
  w.back() = ~std::uint64_t{0};
  if (n % 64 != 0) w[n / 64] |= ~std::uint64_t{0} << (n % 64);  // bits past the last row are set: ignored
  return w;
}

/// none (null), all but a few, ~50% random, exactly k - 1 allowed (spread out), nothing allowed.
std::vector<Mask> masks_for(std::size_t n, std::size_t k, std::uint64_t seed) {
  std::vector<Mask> m;
  m.push_back({"null", {}});
  std::vector<bool> on(n, true);
  for (std::size_t r : {std::size_t{0}, std::size_t{1}, std::size_t{63}, std::size_t{64}, n / 2, n - 1})
    if (r < n) on[r] = false;
  m.push_back({"all_but_few", mask_words(n, on)});
  std::mt19937_64 rng(seed);
  for (std::size_t r = 0; r < n; ++r) on[r] = (rng() & 1) != 0;
  m.push_back({"half", mask_words(n, on)});
  std::fill(on.begin(), on.end(), false);
  for (std::size_t i = 0; i + 1 < k && i < n; ++i)
    on[(i * 7919 + 13) % n] = true;  // k - 1 distinct rows (n prime to 7919)
  m.push_back({"k_minus_1", mask_words(n, on)});
  std::fill(on.begin(), on.end(), false);
  m.push_back({"none", mask_words(n, on)});
  return m;
}

/// The naive reference restricted to the allowed rows.
Ref restrict_to(const Ref& all, const std::uint64_t* allow) {
  Ref r;
  for (std::size_t i = 0; i < all.ids.size(); ++i) {
    if (!row_allowed(allow, static_cast<std::size_t>(all.ids[i]))) continue;
    r.ids.push_back(all.ids[i]);
    r.scores.push_back(all.scores[i]);
  }
  return r;
}

TEST_P(SearchVsNaive, OnlyAllowedRowsAreReturned) {
  const auto [c, k] = GetParam();
  const std::size_t dim = 37, n = 701;
  const Matrix data = testing::anisotropic(n, dim, 77);
  const Matrix queries = testing::anisotropic(3, dim, 78);
  const Encoded e = encode(c, data);
  const double tol = c.metric == Metric::kHamming ? 0.0 : 2e-4;
  std::vector<Ref> refs;
  for (std::size_t q = 0; q < queries.rows; ++q) refs.push_back(naive(e, queries.row(q), n, c.metric));
  for (const Mask& mask : masks_for(n, k, 5 + k)) {
    SearchParams sp;
    sp.metric = c.metric;
    sp.k = k;
    CodeView view = e.view(n);
    view.allow = mask.ptr();
    sp.threads = 1;
    TopK out;
    ASSERT_TRUE(search_cpu(e.codec, queries.view(), view, sp, &out).is_ok());
    for (std::size_t q = 0; q < queries.rows; ++q) {
      const Ref ref = restrict_to(refs[q], mask.ptr());
      const std::string what = name_of(c) + " k=" + std::to_string(k) + " mask=" + mask.name;
      expect_matches(out, q, ref, ref.ids.size(), tol, what);
      for (std::int64_t id : out.ids_of(q)) {
        if (id >= 0) {
          ASSERT_TRUE(row_allowed(mask.ptr(), static_cast<std::size_t>(id))) << what << " id " << id;
        }
      }
    }
  }
}

// ---- per-row bias (CodeView::row_bias) ------------------------------------------------------------

/// Seeded bias per row, uniform in [-spread, spread].
std::vector<float> bias_for(std::size_t n, float spread, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(-spread, spread);
  std::vector<float> b(n);
  for (float& x : b) x = u(rng);
  return b;
}

/// The naive reference with each row's bias added and re-sorted (ties: smaller row first).
Ref with_bias(const Ref& ref, const std::vector<float>& bias, Metric metric) {
  std::vector<double> s(bias.size());
  for (std::size_t i = 0; i < ref.ids.size(); ++i) s[ref.ids[i]] = ref.scores[i] + bias[ref.ids[i]];
  Ref r;
  r.ids = ref.ids;
  std::sort(r.ids.begin(), r.ids.end());
  const bool hib = higher_is_better(metric);
  std::stable_sort(r.ids.begin(), r.ids.end(), [&](std::int64_t a, std::int64_t b) {
    return hib ? s[a] > s[b] : s[a] < s[b];
  });
  for (auto id : r.ids) r.scores.push_back(s[id]);
  return r;
}

TEST_P(SearchVsNaive, RowBiasIsAddedBeforeSelection) {
  const auto [c, k] = GetParam();
  const std::size_t dim = 37, n = 701;
  const Matrix data = testing::anisotropic(n, dim, 77);
  const Matrix queries = testing::anisotropic(3, dim, 78);
  const Encoded e = encode(c, data);
  const double tol = c.metric == Metric::kHamming ? 1e-6 : 2e-4;
  for (std::size_t q = 0; q < queries.rows; ++q) {
    const Ref ref = naive(e, queries.row(q), n, c.metric);
    // As wide as the spread of the top half of the scores: the ranking changes.
    const auto spread = static_cast<float>(std::fabs(ref.scores.front() - ref.scores[n / 2]));
    const std::vector<float> bias = bias_for(n, spread, 40 + q);
    const Ref biased = with_bias(ref, bias, c.metric);
    ASSERT_NE(std::vector<std::int64_t>(biased.ids.begin(), biased.ids.begin() + 3),
              std::vector<std::int64_t>(ref.ids.begin(), ref.ids.begin() + 3))
        << "the bias should change the ranking";
    CodeView view = e.view(n);
    view.row_bias = bias.data();
    const MatrixView<const float> qv(queries.row(q), 1, dim);
    SearchParams sp;
    sp.metric = c.metric;
    sp.k = k;
    TopK out;
    ASSERT_TRUE(search_cpu(e.codec, qv, view, sp, &out).is_ok());
    const std::string what = name_of(c) + " k=" + std::to_string(k) + " q=" + std::to_string(q);
    expect_matches(out, 0, biased, n, tol, what + " search");
    // The eligibility bitset and the bias together.
    for (const Mask& mask : masks_for(n, k, 3)) {
      view.allow = mask.ptr();
      ASSERT_TRUE(search_cpu(e.codec, qv, view, sp, &out).is_ok());
      const Ref allowed = restrict_to(biased, mask.ptr());
      expect_matches(out, 0, allowed, allowed.ids.size(), tol, what + " mask=" + mask.name);
    }
    // score_all_cpu adds it too (and ignores the bitset).
    std::vector<float> all(n);
    ASSERT_TRUE(score_all_cpu(e.codec, qv, view, c.metric, MatrixView<float>(all.data(), 1, n)).is_ok());
    for (std::size_t i = 0; i < n; ++i) {
      const double want = biased.scores[static_cast<std::size_t>(
          std::find(biased.ids.begin(), biased.ids.end(), static_cast<std::int64_t>(i)) - biased.ids.begin())];
      ASSERT_NEAR(all[i], want, tol * std::max(1.0, std::fabs(want))) << what << " score_all row " << i;
    }
  }
}

TEST(SearchF32, RowBiasInTheSearchAndInTheRescoring) {
  const Matrix base = testing::anisotropic(900, 24, 41);
  const Matrix queries = testing::anisotropic(4, 24, 42);
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    const Encoded f32 = encode({CodeKind::kF32, ScaleMode::kNone, metric}, base);
    std::vector<Ref> refs;
    for (std::size_t q = 0; q < queries.rows; ++q) refs.push_back(naive(f32, queries.row(q), base.rows, metric));
    const auto spread = static_cast<float>(std::fabs(refs[0].scores.front() - refs[0].scores[base.rows / 2]));
    const std::vector<float> bias = bias_for(base.rows, spread, 43);
    SearchParams sp;
    sp.metric = metric;
    sp.k = 10;
    TopK out;
    const Mask half = masks_for(base.rows, 10, 9)[2];
    ASSERT_TRUE(search_f32(queries.view(), base.view(), sp, &out, half.ptr(), bias.data()).is_ok());
    for (std::size_t q = 0; q < queries.rows; ++q) {
      const Ref ref = restrict_to(with_bias(refs[q], bias, metric), half.ptr());
      expect_matches(out, q, ref, ref.ids.size(), 2e-4, std::string("f32 bias ") + std::string(to_string(metric)));
    }
    // Rescoring every row with the bias gives the same top 10; without it, the unbiased order.
    TopK every;
    every.resize(queries.rows, base.rows < kMaxK ? base.rows : kMaxK, metric);
    for (std::size_t q = 0; q < queries.rows; ++q)
      for (std::size_t i = 0; i < every.k; ++i) every.ids[q * every.k + i] = static_cast<std::int64_t>(i);
    TopK rescored, plain;
    ASSERT_TRUE(rescore_f32(queries.view(), base.view(), every, sp, &rescored, bias.data()).is_ok());
    ASSERT_TRUE(rescore_f32(queries.view(), base.view(), every, sp, &plain).is_ok());
    for (std::size_t q = 0; q < queries.rows; ++q) {
      expect_matches(rescored, q, with_bias(refs[q], bias, metric), base.rows, 1e-4, "rescore bias");
      expect_matches(plain, q, refs[q], base.rows, 1e-4, "rescore");
    }
  }
}

TEST(SearchI8Candidates, RejectsARowBias) {
  const Matrix base = testing::anisotropic(100, 16, 5);
  const Encoded i8 = encode({CodeKind::kI8, ScaleMode::kNone, Metric::kIp}, base);
  const std::vector<float> bias(base.rows, 0.1f);
  CodeView view = i8.view(base.rows);
  view.row_bias = bias.data();
  SearchParams sp;
  TopK out;
  EXPECT_EQ(search_i8_candidates_cpu(i8.codec, MatrixView<const float>(base.row(0), 1, 16), view, sp, &out).code(),
            StatusCode::kInvalidArgument);
}

// Few queries and many rows: the rows are split between threads at offsets that are not multiples of
// 64, so the eligibility bits of a tile straddle two words.
TEST(Search, EligibilityBitsetWithRowsSplitBetweenThreads) {
  const std::size_t n = 10007, dim = 16;
  const Matrix data = testing::anisotropic(n, dim, 17);
  const Matrix queries = testing::anisotropic(2, dim, 18);
  for (const Case& c :
       {Case{CodeKind::kF16, ScaleMode::kNone, Metric::kIp}, Case{CodeKind::kB1, ScaleMode::kNone, Metric::kHamming}}) {
    const Encoded e = encode(c, data);
    std::vector<Ref> refs;
    for (std::size_t q = 0; q < queries.rows; ++q) refs.push_back(naive(e, queries.row(q), n, c.metric));
    for (const Mask& mask : masks_for(n, 50, 19)) {
      SearchParams sp;
      sp.metric = c.metric;
      sp.k = 50;
      CodeView view = e.view(n);
      view.allow = mask.ptr();
      TopK one, three;
      sp.threads = 1;
      ASSERT_TRUE(search_cpu(e.codec, queries.view(), view, sp, &one).is_ok());
      sp.threads = 3;
      ASSERT_TRUE(search_cpu(e.codec, queries.view(), view, sp, &three).is_ok());
      EXPECT_EQ(one.ids, three.ids) << name_of(c) << " " << mask.name;
      EXPECT_EQ(one.scores, three.scores) << name_of(c) << " " << mask.name;
      for (std::size_t q = 0; q < queries.rows; ++q) {
        const Ref ref = restrict_to(refs[q], mask.ptr());
        expect_matches(three, q, ref, ref.ids.size(), c.metric == Metric::kHamming ? 0.0 : 2e-4,
                       name_of(c) + " split " + mask.name);
      }
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

TEST(SearchF32, HonoursTheEligibilityBitset) {
  const Matrix base = testing::anisotropic(1000, 24, 31);
  const Matrix queries = testing::anisotropic(4, 24, 32);
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    const Encoded f32 = encode({CodeKind::kF32, ScaleMode::kNone, metric}, base);
    std::vector<Ref> refs;
    for (std::size_t q = 0; q < queries.rows; ++q) refs.push_back(naive(f32, queries.row(q), base.rows, metric));
    for (const Mask& mask : masks_for(base.rows, 10, 9)) {
      SearchParams sp;
      sp.metric = metric;
      sp.k = 10;
      TopK out;
      ASSERT_TRUE(search_f32(queries.view(), base.view(), sp, &out, mask.ptr()).is_ok());
      for (std::size_t q = 0; q < queries.rows; ++q) {
        const Ref ref = restrict_to(refs[q], mask.ptr());
        expect_matches(out, q, ref, ref.ids.size(), 2e-4, std::string("f32 ") + mask.name);
      }
    }
  }
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

// ---- int8 candidate scan (search_i8_candidates_cpu) ------------------------------------------

/// Glove-like clustered rows: `clusters` centres with per-dimension spreads, rows = centre + noise.
Matrix clustered(std::size_t rows, std::size_t dim, std::size_t clusters, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  std::uniform_real_distribution<float> spread(0.2f, 1.0f);
  std::vector<float> sd(dim);
  for (auto& v : sd) v = spread(rng);
  Matrix centres(clusters, dim);
  for (std::size_t c = 0; c < clusters; ++c)
    for (std::size_t j = 0; j < dim; ++j) centres.row(c)[j] = 0.3f + sd[j] * unit(rng);
  Matrix m(rows, dim);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* c = centres.row(rng() % clusters);
    for (std::size_t j = 0; j < dim; ++j) m.row(i)[j] = c[j] + 0.6f * sd[j] * unit(rng);
  }
  return m;
}

Encoded encode_i8(const Matrix& data) { return encode({CodeKind::kI8, ScaleMode::kNone, Metric::kIp}, data); }

/// The documented bound on |approximate - exact| for query q and row r (plus float rounding).
double i8_bound(const Encoded& e, const float* q, std::size_t r, Metric metric, double exact) {
  const auto& p = e.codec.params();
  const std::size_t d = e.codec.dim();
  double maxw = 0, sum_c = 0, qq = 0, mag = 0, c0 = 0;
  for (std::size_t j = 0; j < d; ++j) maxw = std::max(maxw, std::fabs(double(q[j]) * p.scale[j]));
  const auto* c = reinterpret_cast<const std::int8_t*>(e.codes.data() + r * e.codec.code_size());
  for (std::size_t j = 0; j < d; ++j) {
    sum_c += std::abs(c[j]);
    qq += double(q[j]) * q[j];
    mag += std::fabs(double(q[j]) * p.scale[j] * c[j]);
    c0 += std::fabs(double(q[j]) * p.offset[j]);
  }
  const double ip_bound = maxw / 64.0 / 2.0 * sum_c;
  const double rounding = 2e-5 * (c0 + mag + std::fabs(exact) + 1e-3);
  switch (metric) {
    case Metric::kL2:
      return 2 * ip_bound + 2e-5 * (qq + e.norms[r] + 2 * (c0 + mag));
    case Metric::kCos: {
      const double den = std::sqrt(qq) * std::sqrt(double(e.norms[r]));
      return den > 0 ? (ip_bound + rounding) / den + 1e-5 : 1e-6;
    }
    default:
      return ip_bound + rounding;
  }
}

/// Checks one candidate result: only allowed ids, no repeats, min(k, allowed) real results, the rest
/// padding; every score within the documented bound of the exact int8 score; best first, ties by id;
/// and with k >= allowed rows, every allowed row returned.
void expect_valid_candidates(const Encoded& e, const Matrix& queries, std::size_t n, Metric metric, const TopK& got,
                             const std::uint64_t* allow, const std::string& what) {
  Matrix exact(queries.rows, std::max<std::size_t>(n, 1));
  if (n > 0) {
    CodeView v = e.view(n);
    ASSERT_TRUE(score_all_cpu(e.codec, queries.view(), v, metric, exact.mut()).is_ok());
  }
  std::size_t allowed = 0;
  for (std::size_t r = 0; r < n; ++r) allowed += row_allowed(allow, r) ? 1 : 0;
  const bool hib = higher_is_better(metric);
  const std::size_t filled = std::min(allowed, got.k);
  for (std::size_t q = 0; q < queries.rows; ++q) {
    const auto ids = got.ids_of(q);
    const auto sc = got.scores_of(q);
    std::vector<std::int64_t> seen;
    for (std::size_t i = 0; i < got.k; ++i) {
      const std::string at = what + " q" + std::to_string(q) + " rank " + std::to_string(i);
      if (i >= filled) {
        ASSERT_EQ(ids[i], -1) << at;
        ASSERT_EQ(sc[i], hib ? -INFINITY : INFINITY) << at;
        continue;
      }
      ASSERT_GE(ids[i], 0) << at;
      ASSERT_LT(static_cast<std::size_t>(ids[i]), n) << at;
      const auto r = static_cast<std::size_t>(ids[i]);
      ASSERT_TRUE(row_allowed(allow, r)) << at;
      seen.push_back(ids[i]);
      const double truth = exact.row(q)[r];
      ASSERT_NEAR(sc[i], truth, i8_bound(e, queries.row(q), r, metric, truth)) << at << " id " << r;
      if (i > 0) {
        ASSERT_TRUE(hib ? sc[i] <= sc[i - 1] : sc[i] >= sc[i - 1]) << at;
        if (sc[i] == sc[i - 1]) {
          ASSERT_GT(ids[i], ids[i - 1]) << at << ": tie not ordered by row";
        }
      }
    }
    std::sort(seen.begin(), seen.end());
    ASSERT_TRUE(std::adjacent_find(seen.begin(), seen.end()) == seen.end()) << what << ": repeated id";
    if (got.k >= allowed) {
      ASSERT_EQ(seen.size(), allowed) << what;
    }
  }
}

TEST(SearchI8Candidates, RescoredTopFortyRecoversTheExactTopTen) {
  const std::size_t n = 20000, dim = 100, nq = 60, k = 10;
  const Matrix data = clustered(n, dim, 64, 11);
  Matrix queries = clustered(nq, dim, 64, 11);  // same centres as the data (seed), fresh noise
  {
    const Matrix fresh = clustered(n + nq, dim, 64, 11);
    std::copy(fresh.row(n), fresh.row(n) + nq * dim, queries.data.begin());
  }
  const Encoded e = encode_i8(data);
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    SearchParams sp;
    sp.metric = metric;
    sp.k = k;
    TopK exact;
    ASSERT_TRUE(search_cpu(e.codec, queries.view(), e.view(n), sp, &exact).is_ok());
    SearchParams wide = sp;
    wide.k = 4 * k;
    TopK cand;
    ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), e.view(n), wide, &cand).is_ok());
    // Rescore the candidates with the exact int8 scores and keep the best k.
    Matrix all(nq, n);
    ASSERT_TRUE(score_all_cpu(e.codec, queries.view(), e.view(n), metric, all.mut()).is_ok());
    const bool hib = higher_is_better(metric);
    std::size_t found = 0;
    for (std::size_t q = 0; q < nq; ++q) {
      std::vector<std::int64_t> ids(cand.ids_of(q).begin(), cand.ids_of(q).end());
      std::stable_sort(ids.begin(), ids.end(), [&](std::int64_t a, std::int64_t b) {
        return hib ? all.row(q)[a] > all.row(q)[b] : all.row(q)[a] < all.row(q)[b];
      });
      ids.resize(k);
      for (std::int64_t id : exact.ids_of(q)) found += std::count(ids.begin(), ids.end(), id) > 0 ? 1 : 0;
    }
    const double recall = double(found) / double(nq * k);
    EXPECT_GE(recall, 0.99) << to_string(metric);
    // The candidates' own top 10 (no rescoring) is already close to the exact one.
    std::size_t direct = 0;
    for (std::size_t q = 0; q < nq; ++q)
      for (std::int64_t id : exact.ids_of(q))
        direct += std::count(cand.ids_of(q).begin(), cand.ids_of(q).begin() + k, id) > 0 ? 1 : 0;
    EXPECT_GE(double(direct) / double(nq * k), 0.8) << to_string(metric);
    expect_valid_candidates(e, queries, n, metric, cand, nullptr,
                            std::string("recall ") + std::string(to_string(metric)));
  }
}

TEST(SearchI8Candidates, EdgeCasesDimensionsAndMasks) {
  for (std::size_t dim : {1, 7, 97, 384}) {
    const std::size_t big = dim >= 384 ? 700 : 1100;
    const Matrix data = clustered(big, dim, 9, 40 + dim);
    const Matrix queries = testing::anisotropic(6, dim, 50 + dim);  // 6: a partial query block
    const Encoded e = encode_i8(data);
    for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
      for (std::size_t k : {1, 10, 40}) {
        for (std::size_t n : {std::size_t{0}, std::size_t{1}, k - 1, k, k + 1, std::size_t{70}, big}) {
          SearchParams sp;
          sp.metric = metric;
          sp.k = k;
          TopK got;
          ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), e.view(n), sp, &got).is_ok());
          ASSERT_EQ(got.nq, queries.rows);
          ASSERT_EQ(got.k, k);
          const std::string what = std::string(to_string(metric)) + " d" + std::to_string(dim) + " k" +
                                   std::to_string(k) + " n" + std::to_string(n);
          expect_valid_candidates(e, queries, n, metric, got, nullptr, what);
          if (HasFatalFailure()) return;
        }
        for (const Mask& mask : masks_for(big, k, 60 + k)) {
          SearchParams sp;
          sp.metric = metric;
          sp.k = k;
          CodeView view = e.view(big);
          view.allow = mask.ptr();
          TopK got;
          ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), view, sp, &got).is_ok());
          expect_valid_candidates(e, queries, big, metric, got, mask.ptr(),
                                  std::string(to_string(metric)) + " d" + std::to_string(dim) + " k" +
                                      std::to_string(k) + " mask " + mask.name);
          if (HasFatalFailure()) return;
        }
      }
    }
  }
}

TEST(SearchI8Candidates, SameResultsForEveryThreadCountAndIsa) {
  const auto* generic = cpu::kernels_for("generic");
  ASSERT_NE(generic, nullptr);
  const auto* avx2 = cpu::kernels_for("avx2");
  for (std::size_t dim : {1, 7, 97, 384}) {
    const std::size_t n = dim >= 384 ? 700 : 2100;  // the portable kernel is slow; keep the test short
    const Matrix data = clustered(n, dim, 20, 70 + dim);
    const Matrix queries = testing::anisotropic(70, dim, 80 + dim);  // 70: a partial query group
    const Encoded e = encode_i8(data);
    const auto masks = masks_for(n, 10, 90 + dim);
    for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
      for (const Mask& mask : {masks[0], masks[2]}) {
        SearchParams sp;
        sp.metric = metric;
        sp.k = 10;
        CodeView view = e.view(n);
        view.allow = mask.ptr();
        const std::string what = std::string(to_string(metric)) + " d" + std::to_string(dim) + " " + mask.name;
        TopK ref;
        sp.threads = 1;
        ASSERT_TRUE(cpu::search_i8_candidates_with(*generic, e.codec, queries.view(), view, sp, &ref).is_ok());
        for (const auto* table : {generic, avx2}) {
          if (table == nullptr) continue;  // no AVX2 here: the generic table was compared with itself
          for (int threads : {1, 3}) {
            sp.threads = threads;
            TopK got;
            ASSERT_TRUE(cpu::search_i8_candidates_with(*table, e.codec, queries.view(), view, sp, &got).is_ok());
            EXPECT_EQ(got.ids, ref.ids) << what << " " << table->isa << " threads " << threads;
            EXPECT_EQ(got.scores, ref.scores) << what << " " << table->isa << " threads " << threads;
          }
        }
      }
    }
  }
}

// Few queries and many rows: rows split between threads at offsets that are not multiples of 64.
TEST(SearchI8Candidates, RowsSplitBetweenThreadsGiveTheSameResults) {
  const std::size_t n = 20011, dim = 24;
  const Matrix data = clustered(n, dim, 30, 23);
  const Matrix queries = testing::anisotropic(3, dim, 24);
  const Encoded e = encode_i8(data);
  const auto masks = masks_for(n, 40, 25);
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    for (const Mask& mask : masks) {
      SearchParams sp;
      sp.metric = metric;
      sp.k = 40;
      CodeView view = e.view(n);
      view.allow = mask.ptr();
      TopK one, four;
      sp.threads = 1;
      ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), view, sp, &one).is_ok());
      sp.threads = 4;
      ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), view, sp, &four).is_ok());
      EXPECT_EQ(one.ids, four.ids) << to_string(metric) << " " << mask.name;
      EXPECT_EQ(one.scores, four.scores) << to_string(metric) << " " << mask.name;
      expect_valid_candidates(e, queries, n, metric, four, mask.ptr(),
                              std::string("split ") + std::string(to_string(metric)) + " " + mask.name);
    }
  }
}

TEST(SearchI8Candidates, ExtremeQueriesAndCodes) {
  // Codes at -128 and 127 everywhere, queries of zeros, of one huge element and of subnormals: the
  // integer sums must not saturate and a zero query gives the constant score.
  const std::size_t dim = 33, n = 200;
  Matrix data(n, dim);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < dim; ++j)
      data.row(i)[j] = ((i + j) % 3 == 0) ? -5.0f : (i % 2 ? 5.0f : 0.1f * float(j));
  const Encoded e = encode_i8(data);
  Matrix queries(4, dim);
  for (std::size_t j = 0; j < dim; ++j) {
    queries.row(1)[j] = j == 3 ? 1e6f : 1e-3f;
    queries.row(2)[j] = std::ldexp(1.0f, -140);
    queries.row(3)[j] = (j % 2 ? -1.0f : 1.0f) * 1e4f;
  }
  for (Metric metric : {Metric::kIp, Metric::kCos, Metric::kL2}) {
    SearchParams sp;
    sp.metric = metric;
    sp.k = 25;
    TopK got;
    ASSERT_TRUE(search_i8_candidates_cpu(e.codec, queries.view(), e.view(n), sp, &got).is_ok());
    expect_valid_candidates(e, queries, n, metric, got, nullptr,
                            std::string("extreme ") + std::string(to_string(metric)));
    if (metric == Metric::kIp) {
      // Query 0 is zero: every row scores exactly 0 (no offset term), so ids come in row order.
      for (std::size_t i = 0; i < sp.k; ++i) EXPECT_EQ(got.ids_of(0)[i], static_cast<std::int64_t>(i));
    }
  }
}

TEST(SearchI8Candidates, RejectsBadInput) {
  const Matrix data = testing::gaussian(50, 8, 1);
  const Encoded i8 = encode_i8(data);
  const Encoded f16 = encode({CodeKind::kF16, ScaleMode::kNone, Metric::kIp}, data);
  const Matrix q = testing::gaussian(2, 8, 2);
  SearchParams sp;
  TopK out;
  EXPECT_EQ(search_i8_candidates_cpu(f16.codec, q.view(), f16.view(50), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.k = 0;
  EXPECT_EQ(search_i8_candidates_cpu(i8.codec, q.view(), i8.view(50), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.k = 5;
  sp.metric = Metric::kHamming;
  EXPECT_EQ(search_i8_candidates_cpu(i8.codec, q.view(), i8.view(50), sp, &out).code(), StatusCode::kInvalidArgument);
  sp.metric = Metric::kCos;
  CodeView no_norms = i8.view(50);
  no_norms.sq_norms = nullptr;
  EXPECT_EQ(search_i8_candidates_cpu(i8.codec, q.view(), no_norms, sp, &out).code(), StatusCode::kInvalidArgument);
  sp.metric = Metric::kIp;
  EXPECT_TRUE(search_i8_candidates_cpu(i8.codec, q.view(), no_norms, sp, &out).is_ok());  // ip needs no norms
  const Matrix wrong = testing::gaussian(2, 9, 2);
  EXPECT_EQ(search_i8_candidates_cpu(i8.codec, wrong.view(), i8.view(50), sp, &out).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(search_i8_candidates_cpu(Codec(), q.view(), i8.view(50), sp, &out).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vecstash::kernels
