#include "vecstash/engine/ann_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "testing/random_data.h"
#include "vecstash/common/blob.h"

namespace vecstash::engine {
namespace {

using kernels::TopK;
using testing::Matrix;

constexpr std::size_t kRows = 2000;
constexpr std::size_t kDim = 32;
constexpr std::size_t kQueries = 100;
constexpr std::size_t kK = 10;

// Sparse, large labels: row i is labelled 1000 + 7 i (even exactly when i is even).
std::int64_t label_of(std::size_t row) { return 1000 + 7 * static_cast<std::int64_t>(row); }
bool is_label(std::int64_t label, std::size_t rows) {
  return label >= 1000 && (label - 1000) % 7 == 0 && static_cast<std::size_t>((label - 1000) / 7) < rows;
}
std::size_t row_of(std::int64_t label) { return static_cast<std::size_t>((label - 1000) / 7); }
std::vector<std::int64_t> labels_for(std::size_t first, std::size_t n) {
  std::vector<std::int64_t> l(n);
  for (std::size_t i = 0; i < n; ++i) l[i] = label_of(first + i);
  return l;
}

float distance(const float* a, const float* b, std::size_t d, Metric metric) {
  double s = 0.0;
  for (std::size_t j = 0; j < d; ++j) {
    s += metric == Metric::kL2 ? (static_cast<double>(a[j]) - b[j]) * (static_cast<double>(a[j]) - b[j])
                               : static_cast<double>(a[j]) * b[j];
  }
  return static_cast<float>(s);
}

/// Exact top-k labels (best first) by brute force, over rows whose label passes `allow`.
std::vector<std::vector<std::int64_t>> exact_float(const Matrix& base, const Matrix& queries, Metric metric,
                                                   std::size_t k, const AnnAllowFn* allow = nullptr) {
  std::vector<std::vector<std::int64_t>> out(queries.rows);
  for (std::size_t q = 0; q < queries.rows; ++q) {
    std::vector<std::pair<float, std::int64_t>> all;
    for (std::size_t i = 0; i < base.rows; ++i) {
      if (allow != nullptr && !(*allow)(label_of(i))) continue;
      const float s = distance(queries.row(q), base.row(i), base.cols, metric);
      all.emplace_back(higher_is_better(metric) ? -s : s, label_of(i));
    }
    std::sort(all.begin(), all.end());
    for (std::size_t j = 0; j < std::min(k, all.size()); ++j) out[q].push_back(all[j].second);
  }
  return out;
}

double recall(const TopK& got, const std::vector<std::vector<std::int64_t>>& truth) {
  std::size_t hit = 0, total = 0;
  for (std::size_t q = 0; q < truth.size(); ++q) {
    const std::set<std::int64_t> t(truth[q].begin(), truth[q].end());
    for (std::int64_t id : got.ids_of(q)) hit += t.count(id);
    total += truth[q].size();
  }
  return total == 0 ? 1.0 : static_cast<double>(hit) / static_cast<double>(total);
}

/// Every row: valid labels (allowed ones, when `allow`), no repeats, scores sorted best first and
/// padding (-1, worst score) only at the tail. Returns the number of real results per query.
std::vector<std::size_t> check_rows(const TopK& r, Metric metric, std::size_t rows, const AnnAllowFn* allow) {
  std::vector<std::size_t> counts(r.nq);
  const float worst =
      higher_is_better(metric) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  for (std::size_t q = 0; q < r.nq; ++q) {
    const auto ids = r.ids_of(q);
    const auto scores = r.scores_of(q);
    std::set<std::int64_t> seen;
    std::size_t n = 0;
    for (std::size_t j = 0; j < r.k; ++j) {
      if (ids[j] < 0) {
        EXPECT_EQ(ids[j], -1);
        EXPECT_EQ(scores[j], worst);
        continue;
      }
      EXPECT_EQ(n, j) << "padding before a real result, query " << q;
      ++n;
      EXPECT_TRUE(is_label(ids[j], rows)) << ids[j];
      EXPECT_TRUE(seen.insert(ids[j]).second) << "repeated label " << ids[j];
      if (allow != nullptr) {
        EXPECT_TRUE((*allow)(ids[j])) << "disallowed label " << ids[j];
      }
      if (j > 0) {
        if (higher_is_better(metric)) {
          EXPECT_GE(scores[j - 1], scores[j]);
        } else {
          EXPECT_LE(scores[j - 1], scores[j]);
        }
      }
    }
    counts[q] = n;
  }
  return counts;
}

std::unique_ptr<AnnIndex> must(Result<std::unique_ptr<AnnIndex>> r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? std::move(r).value() : nullptr;
}

std::unique_ptr<AnnIndex> build_float(const std::string& spec, Metric metric, const Matrix& base) {
  auto created = AnnIndex::create(spec, base.cols, metric);
  EXPECT_TRUE(created.is_ok()) << created.status().to_string();
  if (!created.is_ok()) return nullptr;
  std::unique_ptr<AnnIndex> index = std::move(*created);
  if (!index->is_trained()) {
    const Status s = index->train(base.view());
    EXPECT_TRUE(s.is_ok()) << s.to_string();
  }
  EXPECT_TRUE(index->is_trained());
  // Two batches: adds accumulate.
  const std::size_t half = base.rows / 2;
  const auto labels = labels_for(0, base.rows);
  Status s = index->add(std::span(labels).first(half), MatrixView<const float>(base.data.data(), half, base.cols));
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  s = index->add(std::span(labels).subspan(half), MatrixView<const float>(base.row(half), base.rows - half, base.cols));
  EXPECT_TRUE(s.is_ok()) << s.to_string();
  EXPECT_EQ(index->size(), base.rows);
  return index;
}

const AnnAllowFn kEvenOnly = [](std::int64_t label) { return label % 2 == 0; };
// 15 allowed rows out of 2000 (rows 3, 140, 277, ...): forces the fallbacks of every index type.
const AnnAllowFn kFewOnly = [](std::int64_t label) { return (label - 1000) % 7 == 0 && row_of(label) % 137 == 3; };
constexpr std::size_t kFewCount = 15;

// ---- float indexes --------------------------------------------------------------------------------

struct FloatCase {
  const char* spec;
  Metric metric;
  AnnSearchParams params;
  double min_recall;         ///< recall@10 against brute force, without and with the even filter
  bool exact_scores;         ///< stored rows are exact: scores must equal brute-force scores
  bool reaches_every_row;    ///< with a selective filter, finds k (or all) allowed rows
  double few_recall = -1.0;  ///< recall@10 with the selective filter (< 0: not checked)
};

void PrintTo(const FloatCase& c, std::ostream* os) { *os << c.spec << "/" << to_string(c.metric); }

class AnnFloatTest : public ::testing::TestWithParam<FloatCase> {
 protected:
  static Matrix data(Metric metric, std::size_t rows, std::uint64_t seed) {
    Matrix m = testing::gaussian(rows, kDim, seed);
    if (metric == Metric::kCos) testing::normalize_rows(m);
    return m;
  }
};

TEST_P(AnnFloatTest, RecallFilteringAndScores) {
  const FloatCase& c = GetParam();
  const Matrix base = data(c.metric, kRows, 11);
  const Matrix queries = data(c.metric, kQueries, 12);
  auto index = build_float(c.spec, c.metric, base);
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->spec(), c.spec);
  EXPECT_FALSE(index->is_binary());

  // Unfiltered.
  TopK r;
  ASSERT_TRUE(index->search(queries.view(), kK, c.params, nullptr, &r).is_ok());
  ASSERT_EQ(r.nq, kQueries);
  ASSERT_EQ(r.k, kK);
  for (std::size_t n : check_rows(r, c.metric, kRows, nullptr)) EXPECT_EQ(n, kK);
  const double rec = recall(r, exact_float(base, queries, c.metric, kK));
  EXPECT_GE(rec, c.min_recall) << c.spec;
  if (c.exact_scores) {
    for (std::size_t q = 0; q < kQueries; ++q) {
      for (std::size_t j = 0; j < kK; ++j) {
        const float want = distance(queries.row(q), base.row(row_of(r.ids_of(q)[j])), kDim, c.metric);
        EXPECT_NEAR(r.scores_of(q)[j], want, 1e-4f * std::max(1.0f, std::abs(want)));
      }
    }
  }

  // Half the rows allowed: only allowed labels, k of them, recall against the filtered truth.
  TopK f;
  ASSERT_TRUE(index->search(queries.view(), kK, c.params, &kEvenOnly, &f).is_ok());
  for (std::size_t n : check_rows(f, c.metric, kRows, &kEvenOnly)) EXPECT_EQ(n, kK);
  EXPECT_GE(recall(f, exact_float(base, queries, c.metric, kK, &kEvenOnly)), c.min_recall) << c.spec;

  // 15 rows allowed: k = 10 finds 10; k = 20 finds all 15, then padding.
  if (c.reaches_every_row) {
    TopK few;
    ASSERT_TRUE(index->search(queries.view(), kK, c.params, &kFewOnly, &few).is_ok());
    for (std::size_t n : check_rows(few, c.metric, kRows, &kFewOnly)) EXPECT_EQ(n, kK);
    if (c.few_recall >= 0.0) {
      EXPECT_GE(recall(few, exact_float(base, queries, c.metric, kK, &kFewOnly)), c.few_recall);
    }
    TopK all;
    ASSERT_TRUE(index->search(queries.view(), 20, c.params, &kFewOnly, &all).is_ok());
    for (std::size_t n : check_rows(all, c.metric, kRows, &kFewOnly)) EXPECT_EQ(n, kFewCount);
  }
}

AnnSearchParams ef(int e) { return {e, 0}; }
AnnSearchParams nprobe(int n) { return {0, n}; }

// Thresholds sit below what this data gives (observed over three runs: HNSW 0.97-1.0, with 15 rows
// allowed 0.94-0.96; SQ8 0.97-0.99; PQ8 0.68; IVF nprobe 1 0.15-0.2; PCA24 0.44; fast scan 0.17).
INSTANTIATE_TEST_SUITE_P(
    Specs, AnnFloatTest,
    ::testing::Values(FloatCase{"HNSW32", Metric::kL2, ef(64), 0.9, true, true, 0.85},
                      FloatCase{"HNSW32", Metric::kIp, ef(64), 0.9, true, true, 0.85},
                      FloatCase{"HNSW16,SQ8", Metric::kL2, ef(64), 0.8, false, true},
                      FloatCase{"HNSW16,SQfp16", Metric::kCos, ef(64), 0.9, false, true},
                      FloatCase{"IVF32,Flat", Metric::kL2, nprobe(32), 1.0, true, true, 1.0},
                      FloatCase{"IVF32,Flat", Metric::kIp, nprobe(32), 1.0, true, true, 1.0},
                      // nprobe 1: the selective filter must widen the probe to reach its rows.
                      FloatCase{"IVF32,Flat", Metric::kL2, nprobe(1), 0.12, true, true, 0.8},
                      FloatCase{"IVF32,SQ8", Metric::kL2, nprobe(32), 0.85, false, true},
                      FloatCase{"IVF32,SQfp16", Metric::kIp, nprobe(32), 0.95, false, true},
                      FloatCase{"IVF16,PQ8", Metric::kL2, nprobe(16), 0.5, false, true},
                      // Recall against the 32-dimensional truth: PCA to 24 dimensions loses some.
                      FloatCase{"PCA24,IVF16,Flat", Metric::kL2, nprobe(16), 0.35, false, true},
                      FloatCase{"Flat", Metric::kL2, {}, 1.0, true, true, 1.0},
                      FloatCase{"Flat", Metric::kIp, {}, 1.0, true, true, 1.0},
                      // Fast-scan IVF takes no selector or per-query nprobe: oversample + post-filter.
                      FloatCase{"IVF16,PQ8x4fs", Metric::kL2, {}, 0.1, false, false}));

TEST(AnnIndexBuild, EfConstructionIsSetBeforeRowsAndOnlyForHnsw) {
  auto index = AnnIndex::create("HNSW16", 8, Metric::kL2);
  ASSERT_TRUE(index.is_ok());
  EXPECT_EQ((*index)->ef_construction(), 40);  // FAISS's default
  ASSERT_TRUE((*index)->set_ef_construction(150).is_ok());
  EXPECT_EQ((*index)->ef_construction(), 150);
  EXPECT_FALSE((*index)->set_ef_construction(0).is_ok());
  EXPECT_FALSE((*index)->set_ef_construction(5000).is_ok());
  const std::vector<float> rows(8 * 3, 0.5f);
  const std::vector<std::int64_t> labels = {0, 1, 2};
  ASSERT_TRUE((*index)->add(labels, MatrixView<const float>(rows.data(), 3, 8)).is_ok());
  EXPECT_FALSE((*index)->set_ef_construction(100).is_ok()) << "after rows were added";
  // Memory: counted from the structures, close to the serialised size (which adds headers).
  const std::size_t counted = (*index)->memory_bytes(), serialised = (*index)->serialize().size();
  EXPECT_GT(counted, 3 * 8 * sizeof(float));
  EXPECT_LE(counted, serialised);
  EXPECT_GE(counted, serialised / 2) << counted << " of " << serialised;
  auto flat = AnnIndex::create("Flat", 8, Metric::kL2);
  ASSERT_TRUE(flat.is_ok());
  EXPECT_EQ((*flat)->ef_construction(), 0);
  EXPECT_EQ((*flat)->memory_bytes(), (*flat)->serialize().size());
  EXPECT_FALSE((*flat)->set_ef_construction(100).is_ok());
  auto bin = AnnIndex::create("BHNSW16", 64, Metric::kHamming);
  ASSERT_TRUE(bin.is_ok());
  EXPECT_TRUE((*bin)->set_ef_construction(64).is_ok());
  EXPECT_EQ((*bin)->ef_construction(), 64);
}

TEST(AnnIndex, HnswHonoursPerQueryEfBeyondTheStoredDefault) {
  // FAISS 1.7.3's own search caps the candidate queue at the stored efSearch (16), which holds
  // recall near 0.95 here whatever SearchParametersHNSW says; our walk does not.
  const Matrix base = testing::gaussian(kRows, kDim, 21);
  const Matrix queries = testing::gaussian(kQueries, kDim, 22);
  auto index = build_float("HNSW32", Metric::kL2, base);
  ASSERT_NE(index, nullptr);
  const auto truth = exact_float(base, queries, Metric::kL2, kK);
  TopK low, dflt, high;
  ASSERT_TRUE(index->search(queries.view(), kK, ef(16), nullptr, &low).is_ok());
  ASSERT_TRUE(index->search(queries.view(), kK, AnnSearchParams{}, nullptr, &dflt).is_ok());
  ASSERT_TRUE(index->search(queries.view(), kK, ef(256), nullptr, &high).is_ok());
  EXPECT_EQ(low.ids, dflt.ids) << "ef 0 is the stored efSearch (16)";
  EXPECT_GE(recall(high, truth), 0.995);
  EXPECT_GT(recall(high, truth), recall(low, truth));
}

TEST(AnnIndex, IvfNprobeAllIsExactAndIsClamped) {
  const Matrix base = testing::gaussian(kRows, kDim, 31);
  const Matrix queries = testing::gaussian(kQueries, kDim, 32);
  auto index = build_float("IVF32,Flat", Metric::kL2, base);
  ASSERT_NE(index, nullptr);
  const auto truth = exact_float(base, queries, Metric::kL2, kK);
  TopK one, all, more;
  ASSERT_TRUE(index->search(queries.view(), kK, nprobe(1), nullptr, &one).is_ok());
  ASSERT_TRUE(index->search(queries.view(), kK, nprobe(32), nullptr, &all).is_ok());
  ASSERT_TRUE(index->search(queries.view(), kK, nprobe(100000), nullptr, &more).is_ok());
  EXPECT_LT(recall(one, truth), 0.9);
  EXPECT_EQ(recall(all, truth), 1.0);
  EXPECT_EQ(all.ids, more.ids);
  EXPECT_EQ(all.scores, more.scores);
}

TEST(AnnIndex, StridedViewsEqualContiguousOnes) {
  const Matrix base = testing::gaussian(500, kDim, 41);
  const Matrix queries = testing::gaussian(20, kDim, 42);
  constexpr std::size_t kStride = kDim + 5;
  std::vector<float> wide_base(base.rows * kStride, 99.0f), wide_q(queries.rows * kStride, 99.0f);
  for (std::size_t i = 0; i < base.rows; ++i) std::memcpy(&wide_base[i * kStride], base.row(i), kDim * sizeof(float));
  for (std::size_t i = 0; i < queries.rows; ++i)
    std::memcpy(&wide_q[i * kStride], queries.row(i), kDim * sizeof(float));
  for (const char* spec : {"HNSW16", "IVF8,Flat"}) {
    auto a = build_float(spec, Metric::kL2, base);
    ASSERT_NE(a, nullptr);
    auto b = must(AnnIndex::create(spec, kDim, Metric::kL2));
    const MatrixView<const float> wb(wide_base.data(), base.rows, kDim, kStride);
    if (!b->is_trained()) {
      ASSERT_TRUE(b->train(wb).is_ok());
    }
    const auto labels = labels_for(0, base.rows);
    ASSERT_TRUE(b->add(labels, wb).is_ok());
    TopK ra, rb;
    ASSERT_TRUE(a->search(queries.view(), kK, nprobe(8), nullptr, &ra).is_ok());
    ASSERT_TRUE(
        b->search(MatrixView<const float>(wide_q.data(), queries.rows, kDim, kStride), kK, nprobe(8), nullptr, &rb)
            .is_ok());
    if (std::string(spec) == "IVF8,Flat") {
      EXPECT_EQ(ra.ids, rb.ids) << spec;  // k-means is deterministic; HNSW builds may differ by thread timing
    }
    EXPECT_GE(recall(rb, exact_float(base, queries, Metric::kL2, kK)), 0.8) << spec;
    check_rows(rb, Metric::kL2, base.rows, nullptr);
  }
}

TEST(AnnIndex, EmptyAndSmallIndexesPad) {
  const Matrix queries = testing::gaussian(3, kDim, 51);
  for (const Metric metric : {Metric::kL2, Metric::kIp}) {
    auto index = must(AnnIndex::create("HNSW16", kDim, metric));
    TopK r;
    ASSERT_TRUE(index->search(queries.view(), 5, AnnSearchParams{}, nullptr, &r).is_ok());
    EXPECT_EQ(r.ids, std::vector<std::int64_t>(15, -1));
    for (float s : r.scores) EXPECT_EQ(s, higher_is_better(metric) ? -INFINITY : INFINITY);

    const Matrix base = testing::gaussian(3, kDim, 52);
    const auto labels = labels_for(0, 3);
    ASSERT_TRUE(index->add(labels, base.view()).is_ok());
    ASSERT_TRUE(index->search(queries.view(), 5, AnnSearchParams{}, nullptr, &r).is_ok());
    for (std::size_t n : check_rows(r, metric, 3, nullptr)) EXPECT_EQ(n, 3u);
  }
  // Zero queries.
  auto flat = must(AnnIndex::create("Flat", kDim, Metric::kL2));
  TopK r;
  ASSERT_TRUE(flat->search(MatrixView<const float>(nullptr, 0, kDim), 4, AnnSearchParams{}, nullptr, &r).is_ok());
  EXPECT_EQ(r.nq, 0u);
}

TEST(AnnIndex, ConcurrentSearchesWithDifferentKnobsAgreeWithSerialOnes) {
  const Matrix base = testing::gaussian(kRows, kDim, 61);
  const Matrix queries = testing::gaussian(40, kDim, 62);
  auto hnsw = build_float("HNSW16", Metric::kL2, base);
  auto ivf = build_float("IVF16,Flat", Metric::kIp, base);
  ASSERT_NE(hnsw, nullptr);
  ASSERT_NE(ivf, nullptr);
  struct Job {
    const AnnIndex* index;
    AnnSearchParams params;
    const AnnAllowFn* allow;
    TopK expected;
  };
  std::vector<Job> jobs;
  for (int i = 0; i < 8; ++i) {
    jobs.push_back({hnsw.get(), ef(8 << (i % 4)), i % 2 ? &kEvenOnly : nullptr, {}});
    jobs.push_back({ivf.get(), nprobe(1 << (i % 4)), i % 2 ? &kEvenOnly : nullptr, {}});
  }
  for (Job& j : jobs) ASSERT_TRUE(j.index->search(queries.view(), kK, j.params, j.allow, &j.expected).is_ok());
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = t; i < jobs.size(); i += 2) {
          // One query at a time too: nq = 1 is the server's common case.
          const std::size_t q = (round + i) % queries.rows;
          TopK all, one;
          if (!jobs[i].index->search(queries.view(), kK, jobs[i].params, jobs[i].allow, &all).is_ok()) ++mismatches[t];
          if (all.ids != jobs[i].expected.ids || all.scores != jobs[i].expected.scores) ++mismatches[t];
          const MatrixView<const float> qv(queries.row(q), 1, kDim);
          if (!jobs[i].index->search(qv, kK, jobs[i].params, jobs[i].allow, &one).is_ok()) ++mismatches[t];
          const auto want = jobs[i].expected.ids_of(q);
          if (!std::equal(want.begin(), want.end(), one.ids.begin())) ++mismatches[t];
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int m : mismatches) EXPECT_EQ(m, 0);
}

// ---- binary indexes -------------------------------------------------------------------------------

constexpr std::size_t kBits = 128;
constexpr std::size_t kBytes = kBits / 8;

/// Clustered codes: 40 random centres, each code a centre with about 8% of its bits flipped.
std::vector<std::uint8_t> binary_codes(std::size_t n, std::uint64_t seed) {
  std::mt19937_64 centre_rng(7);
  std::vector<std::uint8_t> centres(40 * kBytes);
  for (auto& b : centres) b = static_cast<std::uint8_t>(centre_rng());
  std::mt19937_64 rng(seed);
  std::vector<std::uint8_t> codes(n * kBytes);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t c = rng() % 40;
    std::memcpy(&codes[i * kBytes], &centres[c * kBytes], kBytes);
    for (std::size_t bit = 0; bit < kBits; ++bit) {
      if (rng() % 100 < 8) codes[i * kBytes + bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    }
  }
  return codes;
}

int popcount_distance(const std::uint8_t* a, const std::uint8_t* b) {
  int d = 0;
  for (std::size_t i = 0; i < kBytes; ++i) d += std::popcount(static_cast<unsigned>(a[i] ^ b[i]));
  return d;
}

/// Exact k smallest Hamming distances (sorted), over allowed rows.
std::vector<std::vector<int>> exact_hamming(const std::vector<std::uint8_t>& base, const std::vector<std::uint8_t>& q,
                                            std::size_t k, const AnnAllowFn* allow = nullptr) {
  const std::size_t n = base.size() / kBytes, nq = q.size() / kBytes;
  std::vector<std::vector<int>> out(nq);
  for (std::size_t i = 0; i < nq; ++i) {
    std::vector<int> d;
    for (std::size_t r = 0; r < n; ++r) {
      if (allow == nullptr || (*allow)(label_of(r))) d.push_back(popcount_distance(&q[i * kBytes], &base[r * kBytes]));
    }
    std::sort(d.begin(), d.end());
    d.resize(std::min(k, d.size()));
    out[i] = d;
  }
  return out;
}

struct BinaryCase {
  const char* spec;
  AnnSearchParams params;
  double min_recall;  ///< share of results within the exact k-th distance (1 = exact)
  bool few_exact;     ///< a selective filter ends in an exact scan (HNSW finds k before that)
};

void PrintTo(const BinaryCase& c, std::ostream* os) { *os << c.spec; }

class AnnBinaryTest : public ::testing::TestWithParam<BinaryCase> {};

TEST_P(AnnBinaryTest, HammingDistancesRecallAndFiltering) {
  const BinaryCase& c = GetParam();
  const auto base = binary_codes(kRows, 71);
  const auto queries = binary_codes(50, 72);
  const std::size_t nq = queries.size() / kBytes;
  auto created = AnnIndex::create(c.spec, kBits, Metric::kHamming);
  ASSERT_TRUE(created.is_ok()) << created.status().to_string();
  auto index = std::move(*created);
  EXPECT_TRUE(index->is_binary());
  if (!index->is_trained()) {
    ASSERT_TRUE(index->train_binary(base.data(), kRows).is_ok());
  }
  const auto labels = labels_for(0, kRows);
  ASSERT_TRUE(index->add_binary(labels, base.data(), kRows).is_ok());
  EXPECT_EQ(index->size(), kRows);

  auto check = [&](const TopK& r, const std::vector<std::vector<int>>& truth, const AnnAllowFn* allow,
                   double min_recall) {
    const auto counts = check_rows(r, Metric::kHamming, kRows, allow);
    std::size_t within = 0, total = 0;
    for (std::size_t q = 0; q < nq; ++q) {
      EXPECT_EQ(counts[q], truth[q].size());
      std::vector<int> got;
      for (std::size_t j = 0; j < counts[q]; ++j) {
        const int d = popcount_distance(&queries[q * kBytes], &base[row_of(r.ids_of(q)[j]) * kBytes]);
        EXPECT_EQ(r.scores_of(q)[j], static_cast<float>(d)) << "Hamming distance of the returned label";
        got.push_back(d);
        within += !truth[q].empty() && d <= truth[q].back();
      }
      total += truth[q].size();
      if (min_recall == 1.0) {
        EXPECT_EQ(got, truth[q]);
      }
    }
    EXPECT_GE(static_cast<double>(within) / static_cast<double>(total), min_recall) << c.spec;
  };

  TopK r;
  ASSERT_TRUE(index->search_binary(queries.data(), nq, kK, c.params, nullptr, &r).is_ok());
  check(r, exact_hamming(base, queries, kK), nullptr, c.min_recall);
  ASSERT_TRUE(index->search_binary(queries.data(), nq, kK, c.params, &kEvenOnly, &r).is_ok());
  check(r, exact_hamming(base, queries, kK, &kEvenOnly), &kEvenOnly, c.min_recall);
  // 15 allowed rows: k of them always; flat and IVF end in an exhaustive (exact) scan.
  ASSERT_TRUE(index->search_binary(queries.data(), nq, kK, c.params, &kFewOnly, &r).is_ok());
  check(r, exact_hamming(base, queries, kK, &kFewOnly), &kFewOnly, c.few_exact ? 1.0 : c.min_recall);
  // k above the allowed count: every allowed row, whatever the index.
  ASSERT_TRUE(index->search_binary(queries.data(), nq, 20, c.params, &kFewOnly, &r).is_ok());
  check(r, exact_hamming(base, queries, 20, &kFewOnly), &kFewOnly, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Specs, AnnBinaryTest,
                         ::testing::Values(BinaryCase{"BFlat", {}, 1.0, true},
                                           BinaryCase{"BIVF16", nprobe(16), 1.0, true},
                                           BinaryCase{"BIVF16", nprobe(2), 0.9, true},
                                           BinaryCase{"BHNSW16", ef(64), 0.85, false}));

// ---- persistence ----------------------------------------------------------------------------------

struct RoundTripCase {
  const char* spec;
  Metric metric;
  AnnSearchParams params;
};

void PrintTo(const RoundTripCase& c, std::ostream* os) { *os << c.spec << "/" << to_string(c.metric); }

class AnnRoundTripTest : public ::testing::TestWithParam<RoundTripCase> {};

TEST_P(AnnRoundTripTest, DeserializedIndexSearchesIdentically) {
  const RoundTripCase& c = GetParam();
  const bool binary = c.metric == Metric::kHamming;
  const std::size_t n = 1000;
  const Matrix base = testing::gaussian(n + 200, kDim, 81);
  const Matrix queries = testing::gaussian(30, kDim, 82);
  const auto bbase = binary_codes(n + 200, 83);
  const auto bq = binary_codes(30, 84);
  const auto labels = labels_for(0, n + 200);

  auto index = must(AnnIndex::create(c.spec, binary ? kBits : kDim, c.metric));
  if (binary) {
    if (!index->is_trained()) {
      ASSERT_TRUE(index->train_binary(bbase.data(), n).is_ok());
    }
    ASSERT_TRUE(index->add_binary(std::span(labels).first(n), bbase.data(), n).is_ok());
  } else {
    if (!index->is_trained()) {
      ASSERT_TRUE(index->train(MatrixView<const float>(base.data.data(), n, kDim)).is_ok());
    }
    ASSERT_TRUE(index->add(std::span(labels).first(n), MatrixView<const float>(base.data.data(), n, kDim)).is_ok());
  }
  auto search = [&](const AnnIndex& ix, const AnnAllowFn* allow) {
    TopK r;
    const Status s = binary ? ix.search_binary(bq.data(), 30, kK, c.params, allow, &r)
                            : ix.search(queries.view(), kK, c.params, allow, &r);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    return r;
  };

  const std::vector<std::uint8_t> blob = index->serialize();
  ASSERT_FALSE(blob.empty());
  auto loaded = AnnIndex::deserialize(blob);
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  const AnnIndex& back = **loaded;
  EXPECT_EQ(back.spec(), c.spec);
  EXPECT_EQ(back.size(), n);
  EXPECT_EQ(back.dim(), binary ? kBits : kDim);
  EXPECT_EQ(back.metric(), c.metric);
  EXPECT_EQ(back.is_binary(), binary);
  EXPECT_TRUE(back.is_trained());
  EXPECT_EQ(back.serialize(), blob) << "serialisation is deterministic";
  for (const AnnAllowFn* allow : {static_cast<const AnnAllowFn*>(nullptr), &kEvenOnly, &kFewOnly}) {
    const TopK a = search(*index, allow), b = search(back, allow);
    EXPECT_EQ(a.ids, b.ids);
    EXPECT_EQ(a.scores, b.scores);
  }
  // The loaded index keeps growing like the original.
  if (binary) {
    ASSERT_TRUE(index->add_binary(std::span(labels).subspan(n), &bbase[n * kBytes], 200).is_ok());
    ASSERT_TRUE((*loaded)->add_binary(std::span(labels).subspan(n), &bbase[n * kBytes], 200).is_ok());
  } else {
    const MatrixView<const float> extra(base.row(n), 200, kDim);
    ASSERT_TRUE(index->add(std::span(labels).subspan(n), extra).is_ok());
    ASSERT_TRUE((*loaded)->add(std::span(labels).subspan(n), extra).is_ok());
  }
  EXPECT_EQ(back.size(), n + 200);
  if (std::string(c.spec).find("HNSW") == std::string::npos) {  // HNSW adds are multi-threaded
    const TopK a = search(*index, nullptr), b = search(back, nullptr);
    EXPECT_EQ(a.ids, b.ids);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Specs, AnnRoundTripTest,
    ::testing::Values(RoundTripCase{"HNSW16", Metric::kL2, ef(32)}, RoundTripCase{"HNSW16,SQ8", Metric::kIp, ef(32)},
                      RoundTripCase{"IVF16,SQ8", Metric::kIp, nprobe(4)},
                      RoundTripCase{"PCA16,IVF8,Flat", Metric::kL2, nprobe(2)}, RoundTripCase{"Flat", Metric::kCos, {}},
                      RoundTripCase{"IVF8,PQ8x4fs", Metric::kL2, {}}, RoundTripCase{"BFlat", Metric::kHamming, {}},
                      RoundTripCase{"BIVF8", Metric::kHamming, nprobe(2)},
                      RoundTripCase{"BHNSW16", Metric::kHamming, ef(32)}));

TEST(AnnIndex, UntrainedIndexRoundTripsAndTrainsAfterwards) {
  auto index = must(AnnIndex::create("IVF8,Flat", kDim, Metric::kL2));
  auto loaded = AnnIndex::deserialize(index->serialize());
  ASSERT_TRUE(loaded.is_ok()) << loaded.status().to_string();
  EXPECT_FALSE((*loaded)->is_trained());
  const Matrix base = testing::gaussian(400, kDim, 91);
  ASSERT_TRUE((*loaded)->train(base.view()).is_ok());
  const auto labels = labels_for(0, 400);
  ASSERT_TRUE((*loaded)->add(labels, base.view()).is_ok());
  EXPECT_EQ((*loaded)->size(), 400u);
}

/// The parts of a serialised blob, to re-assemble damaged variants.
struct BlobParts {
  std::uint8_t metric = 0, binary = 0;
  std::uint64_t dim = 0;
  std::string spec;
  std::vector<std::uint8_t> payload;
};

BlobParts split(const std::vector<std::uint8_t>& blob) {
  BlobParts p;
  BlobReader r(blob, "test");
  std::uint16_t version = 0;
  EXPECT_TRUE(r.open("VSAX", 1, &version).is_ok());
  EXPECT_TRUE(r.u8(&p.metric).is_ok());
  EXPECT_TRUE(r.u8(&p.binary).is_ok());
  EXPECT_TRUE(r.u64(&p.dim).is_ok());
  EXPECT_TRUE(r.string(&p.spec, 256).is_ok());
  EXPECT_TRUE(r.bytes(&p.payload, blob.size()).is_ok());
  EXPECT_TRUE(r.finish().is_ok());
  return p;
}

std::vector<std::uint8_t> join(const BlobParts& p, std::uint16_t version = 1, std::string_view magic = "VSAX") {
  BlobWriter w(magic, version);
  w.u8(p.metric);
  w.u8(p.binary);
  w.u64(p.dim);
  w.bytes(std::span(reinterpret_cast<const std::uint8_t*>(p.spec.data()), p.spec.size()));
  w.bytes(p.payload);
  return w.finish();
}

void expect_corruption(std::span<const std::uint8_t> blob, const std::string& fragment) {
  const auto r = AnnIndex::deserialize(blob);
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().to_string();
  EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().to_string();
}

TEST(AnnIndex, DamagedBlobsAreCorruptionNeverACrash) {
  const Matrix base = testing::gaussian(300, kDim, 101);
  auto index = build_float("HNSW8", Metric::kL2, base);
  ASSERT_NE(index, nullptr);
  const auto blob = index->serialize();
  ASSERT_TRUE(AnnIndex::deserialize(blob).is_ok());

  expect_corruption({}, "too short");
  expect_corruption(std::span(blob).first(blob.size() / 2), "checksum");
  for (std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{12}, blob.size() / 3, blob.size() - 1}) {
    auto damaged = blob;
    damaged[at] ^= 0x20;
    const auto r = AnnIndex::deserialize(damaged);
    ASSERT_FALSE(r.is_ok()) << "flip at " << at;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  }

  BlobParts parts = split(blob);
  ASSERT_EQ(parts.spec, "HNSW8");
  ASSERT_TRUE(AnnIndex::deserialize(join(parts)).is_ok());
  expect_corruption(join(parts, 2), "unsupported format version 2");
  expect_corruption(join(parts, 1, "VSAY"), "bad magic");

  // Checksums fine, contents wrong.
  BlobParts p = parts;
  p.payload.assign(64, 0x5a);
  expect_corruption(join(p), "FAISS could not read");
  p = parts;
  p.payload.push_back(0);
  expect_corruption(join(p), "trailing bytes");
  // (A payload cut short under a valid checksum is also Corruption, but FAISS 1.7.3's read_index
  // leaks the half-read index when it throws, which LeakSanitizer builds would report.)
  p = parts;
  p.spec = "IVF8,Flat";
  expect_corruption(join(p), "not the index its header names");
  p = parts;
  p.dim = 16;
  expect_corruption(join(p), "not the index its header names");
  p = parts;
  p.metric = static_cast<std::uint8_t>(Metric::kIp);
  expect_corruption(join(p), "not the index its header names");
  p = parts;
  p.metric = 9;
  expect_corruption(join(p), "bad metric");
  p = parts;
  p.binary = 1;
  expect_corruption(join(p), "kind byte");
  p = parts;
  p.spec = "HNSW8 ";
  expect_corruption(join(p), "bad header");

  // A binary payload under a float header and the reverse.
  auto bin = must(AnnIndex::create("BFlat", kBits, Metric::kHamming));
  BlobParts b = split(bin->serialize());
  b.spec = "Flat";
  b.binary = 0;
  b.metric = static_cast<std::uint8_t>(Metric::kL2);
  expect_corruption(join(b), "");
  p = parts;
  p.spec = "BFlat";
  p.binary = 1;
  p.metric = static_cast<std::uint8_t>(Metric::kHamming);
  p.dim = kBits;
  expect_corruption(join(p), "");
}

// ---- bad input ------------------------------------------------------------------------------------

void expect_invalid(const Status& s, const std::string& fragment) {
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.to_string();
  EXPECT_NE(s.message().find(fragment), std::string::npos) << s.to_string();
}

TEST(AnnIndex, CreateRejectsBadSpecsAndCombinations) {
  for (const char* spec : {"NoSuchIndex", "HNSW32,Foo", "HNSW0", "HNSW1", "IVF0,Flat", "HNSW32 ,Flat", "IDMap,Flat",
                           "PQ7", "BIVF0", "BFoo", "Flat\n"}) {
    const auto r = AnnIndex::create(spec, kDim, spec[0] == 'B' ? Metric::kHamming : Metric::kL2);
    ASSERT_FALSE(r.is_ok()) << spec;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << r.status().to_string();
    if (std::string(spec) != "Flat\n") {
      EXPECT_NE(r.status().message().find(spec), std::string::npos) << r.status().to_string();
    }
  }
  expect_invalid(AnnIndex::create("", kDim, Metric::kL2).status(), "empty");
  expect_invalid(AnnIndex::create(std::string(300, 'F'), kDim, Metric::kL2).status(), "longer than");
  expect_invalid(AnnIndex::create("BFlat", 128, Metric::kL2).status(), "needs metric hamming");
  expect_invalid(AnnIndex::create("HNSW32", kDim, Metric::kHamming).status(), "needs a binary spec");
  expect_invalid(AnnIndex::create("BFlat", 12, Metric::kHamming).status(), "multiple of 8");
  expect_invalid(AnnIndex::create("BHNSW16", 0, Metric::kHamming).status(), "multiple of 8");
  expect_invalid(AnnIndex::create("Flat", 0, Metric::kL2).status(), "dimension must be positive");
  expect_invalid(AnnIndex::create("Flat", kDim, static_cast<Metric>(7)).status(), "unknown metric");
  // FAISS 1.7.3 silently builds an L2 index for "HNSW<M>,PQ<m>" whatever metric is asked for.
  expect_invalid(AnnIndex::create("HNSW16,PQ8", kDim, Metric::kIp).status(), "does not support metric ip");
  EXPECT_TRUE(AnnIndex::create("HNSW16,PQ8", kDim, Metric::kL2).is_ok());
  // Accepted extras.
  for (const char* spec : {"HNSW16,Flat", "OPQ8,IVF8,PQ8", "IVF8_HNSW8,Flat", "LSH"}) {
    EXPECT_TRUE(AnnIndex::create(spec, kDim, Metric::kL2).is_ok()) << spec;
  }
  EXPECT_TRUE(AnnIndex::create("BIVF8_HNSW8", 64, Metric::kHamming).is_ok());
}

TEST(AnnIndex, TrainAddAndSearchValidateTheirInputs) {
  const Matrix base = testing::gaussian(200, kDim, 111);
  const auto labels = labels_for(0, 200);
  auto ivf = must(AnnIndex::create("IVF16,Flat", kDim, Metric::kL2));
  EXPECT_FALSE(ivf->is_trained());
  EXPECT_EQ(ivf->add(labels, base.view()).code(), StatusCode::kFailedPrecondition);
  expect_invalid(ivf->train(MatrixView<const float>(base.data.data(), 10, kDim)), "at least 16 rows");
  expect_invalid(ivf->train(MatrixView<const float>(base.data.data(), 0, kDim)), "empty");
  expect_invalid(ivf->train(MatrixView<const float>(base.data.data(), 100, kDim - 1)), "dimension");
  ASSERT_TRUE(ivf->train(base.view()).is_ok());
  EXPECT_TRUE(ivf->is_trained());
  EXPECT_TRUE(ivf->train(base.view()).is_ok()) << "training a trained index is a no-op";

  expect_invalid(ivf->add(std::span(labels).first(10), base.view()), "10 labels for 200 rows");
  std::vector<std::int64_t> negative = labels;
  negative[3] = -5;
  expect_invalid(ivf->add(negative, base.view()), "negative");
  expect_invalid(ivf->add(labels, MatrixView<const float>(base.data.data(), 200, kDim - 1)), "dimension");
  Matrix nan = base;
  nan.row(7)[2] = std::numeric_limits<float>::quiet_NaN();
  expect_invalid(ivf->add(labels, nan.view()), "NaN");
  EXPECT_EQ(ivf->size(), 0u) << "rejected adds change nothing";
  expect_invalid(ivf->add_binary(labels, nullptr, 200), "float index");
  expect_invalid(ivf->train_binary(nullptr, 1), "float index");
  ASSERT_TRUE(ivf->add(labels, base.view()).is_ok());

  TopK r;
  const Matrix q = testing::gaussian(2, kDim, 112);
  expect_invalid(ivf->search(MatrixView<const float>(q.data.data(), 2, kDim + 1), 5, {}, nullptr, &r), "dimension");
  expect_invalid(ivf->search(q.view(), 0, {}, nullptr, &r), "k must be");
  expect_invalid(ivf->search(q.view(), kernels::kMaxK + 1, {}, nullptr, &r), "k must be");
  expect_invalid(ivf->search(q.view(), 5, AnnSearchParams{-1, 0}, nullptr, &r), "ef");
  expect_invalid(ivf->search(q.view(), 5, AnnSearchParams{0, -1}, nullptr, &r), "nprobe");
  expect_invalid(ivf->search(q.view(), 5, {}, nullptr, nullptr), "null output");
  expect_invalid(ivf->search_binary(nullptr, 1, 5, {}, nullptr, &r), "float index");
  EXPECT_TRUE(ivf->search(q.view(), kernels::kMaxK, {}, nullptr, &r).is_ok());

  auto bin = must(AnnIndex::create("BHNSW8", 64, Metric::kHamming));
  EXPECT_TRUE(bin->is_trained());
  expect_invalid(bin->train(base.view()), "is binary");
  expect_invalid(bin->add(labels, base.view()), "is binary");
  expect_invalid(bin->add_binary(labels, nullptr, 200), "null codes");
  expect_invalid(bin->search(q.view(), 5, {}, nullptr, &r), "is binary");
  expect_invalid(bin->search_binary(nullptr, 1, 5, {}, nullptr, &r), "null query codes");

  auto bivf = must(AnnIndex::create("BIVF16", 64, Metric::kHamming));
  std::vector<std::uint8_t> codes(8 * 8, 1);
  expect_invalid(bivf->train_binary(codes.data(), 8), "at least 16 codes");
  EXPECT_EQ(bivf->add_binary(std::span(labels).first(8), codes.data(), 8).code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace vecstash::engine
