// Collections through the engine: ingest, calibration, search (exact and approximate, with and
// without rescoring, with filters), point operations, persistence across restarts, recalibration,
// compaction, bad input, corruption and concurrent use.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "testing/random_data.h"
#include "testing/temp_dir.h"
#include "vecstash/engine/engine.h"
#include "vecstash/engine/filter.h"
#include "vecstash/engine/row_index.h"
#include "vecstash/kernels/search.h"
#include "vecstash/storage/store.h"

namespace vecstash::engine {
namespace {

using nlohmann::json;
using testing::Matrix;
using testing::TempDir;

// Clustered rows, like real embeddings: a shared offset, 32 centres, per-row noise.
Matrix clustered(std::size_t n, std::size_t d, std::uint64_t seed) {
  return testing::clustered_rows(n, d, seed, 32, 0.5f, 0.6f);
}

std::unique_ptr<Engine> open_engine(const std::filesystem::path& dir, EngineOptions o = {}) {
  o.threads = o.threads ? o.threads : 2;
  auto e = Engine::open(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

std::vector<PointInput> points_of(const Matrix& m, std::size_t first_id, std::vector<json>* payloads = nullptr) {
  std::vector<PointInput> pts(m.rows);
  for (std::size_t i = 0; i < m.rows; ++i) {
    pts[i].id = PointId::number(first_id + i);
    pts[i].vector = {m.row(i), m.cols};
    if (payloads) pts[i].payload = (*payloads)[i];
  }
  return pts;
}

// Exact float32 top-k of the given metric over rows of `base` whose index is allowed; returns row indices.
std::vector<std::size_t> brute_topk(const float* q, const Matrix& base, Metric metric, std::size_t k,
                                    const std::function<bool(std::size_t)>& allowed = {}) {
  const std::size_t d = base.cols;
  std::vector<float> qn(q, q + d);
  if (metric == Metric::kCos) {
    double n = 0;
    for (float v : qn) n += double(v) * v;
    for (float& v : qn) v = static_cast<float>(v / std::sqrt(n));
  }
  std::vector<std::pair<double, std::size_t>> s;
  for (std::size_t i = 0; i < base.rows; ++i) {
    if (allowed && !allowed(i)) continue;
    double dot = 0, nn = 0, l2 = 0;
    for (std::size_t j = 0; j < d; ++j) {
      dot += double(qn[j]) * base.row(i)[j];
      nn += double(base.row(i)[j]) * base.row(i)[j];
      l2 += (double(qn[j]) - base.row(i)[j]) * (double(qn[j]) - base.row(i)[j]);
    }
    const double score = metric == Metric::kL2 ? -l2 : metric == Metric::kCos ? dot / std::sqrt(nn) : dot;
    s.emplace_back(-score, i);
  }
  const std::size_t kk = std::min(k, s.size());
  std::partial_sort(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(kk), s.end());
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < kk; ++i) out.push_back(s[i].second);
  return out;
}

double recall_at_k(const Collection& c, const Matrix& base, const Matrix& queries, Metric metric, std::size_t k,
                   SearchRequest req = {}) {
  req.queries = {queries.data.data(), queries.data.size()};
  req.nq = queries.rows;
  req.limit = k;
  auto res = c.search(req);
  EXPECT_TRUE(res.is_ok()) << res.status().to_string();
  if (!res.is_ok()) return 0.0;
  std::size_t hit = 0;
  for (std::size_t i = 0; i < queries.rows; ++i) {
    const auto truth = brute_topk(queries.row(i), base, metric, k);
    std::set<std::uint64_t> t;
    for (auto r : truth) t.insert(r);
    for (const auto& p : (*res)[i]) hit += t.count(p.id.lo);
  }
  return double(hit) / double(queries.rows * k);
}

CollectionConfig config_for(std::size_t dim, Metric metric, CodeKind kind, std::size_t sample = 500) {
  CollectionConfig c;
  c.dim = dim;
  c.metric = metric;
  c.codec.kind = kind;
  c.calibration_sample = sample;
  return c;
}

// ---- basic life cycle ----------------------------------------------------------------------------

TEST(Collection, ExactFloat32BeforeCalibrationThenCodesAfter) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("docs", config_for(24, Metric::kCos, CodeKind::kI8, 400));
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const Matrix base = clustered(1000, 24, 1), queries = clustered(30, 24, 2);

  // 300 points: below the calibration sample, searched as float32 exactly.
  Matrix first(300, 24);
  std::copy_n(base.data.begin(), 300 * 24, first.data.begin());
  ASSERT_TRUE((*c)->upsert(points_of(first, 0)).is_ok());
  EXPECT_FALSE((*c)->info().calibrated);
  EXPECT_DOUBLE_EQ(recall_at_k(**c, first, queries, Metric::kCos, 10), 1.0);

  // Crossing 400 calibrates; the rest is encoded.
  Matrix rest(700, 24);
  std::copy_n(base.data.begin() + 300 * 24, 700 * 24, rest.data.begin());
  ASSERT_TRUE((*c)->upsert(points_of(rest, 300)).is_ok());
  const auto info = (*c)->info();
  EXPECT_TRUE(info.calibrated);
  EXPECT_EQ(info.points, 1000u);
  EXPECT_EQ(info.code_bytes, 24u);
  EXPECT_EQ(info.generation, 1u);
  EXPECT_GE(recall_at_k(**c, base, queries, Metric::kCos, 10), 0.99);
  SearchRequest no_rescore;
  no_rescore.rescore = false;
  EXPECT_GE(recall_at_k(**c, base, queries, Metric::kCos, 10, no_rescore), 0.85);
}

struct KindMetric {
  CodeKind kind;
  Metric metric;
};

class EveryKindAndMetric : public ::testing::TestWithParam<KindMetric> {};

TEST_P(EveryKindAndMetric, RescoredSearchFindsTheTrueNeighbours) {
  const auto [kind, metric] = GetParam();
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto cfg = config_for(40, metric, kind, 800);
  cfg.search.oversampling = kind == CodeKind::kB1 ? 10.0 : 4.0;
  auto c = engine->create_collection("c", cfg);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  const Matrix base = clustered(1500, 40, 11), queries = clustered(25, 40, 12);
  ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  ASSERT_TRUE((*c)->info().calibrated);
  const double recall = recall_at_k(**c, base, queries, metric, 10);
  // 40 dimensions give b1 only 40 bits: its candidate list (top 100 of 1,500) misses some neighbours.
  EXPECT_GE(recall, kind == CodeKind::kB1 ? 0.75 : 0.98) << to_string(kind) << " " << to_string(metric);
  // Scores are in the metric's own terms: cosine in [-1, 1], L2 the Euclidean distance.
  SearchRequest req;
  req.queries = {queries.row(0), 40};
  req.nq = 1;
  req.limit = 3;
  auto res = (*c)->search(req);
  ASSERT_TRUE(res.is_ok());
  ASSERT_EQ((*res)[0].size(), 3u);
  const float* x = base.row((*res)[0][0].id.lo);
  double dot = 0, nq = 0, nx = 0, l2 = 0;
  for (int j = 0; j < 40; ++j) {
    dot += double(queries.row(0)[j]) * x[j];
    nq += double(queries.row(0)[j]) * queries.row(0)[j];
    nx += double(x[j]) * x[j];
    l2 += (double(queries.row(0)[j]) - x[j]) * (double(queries.row(0)[j]) - x[j]);
  }
  const double expected = metric == Metric::kCos  ? dot / std::sqrt(nq * nx)
                          : metric == Metric::kL2 ? std::sqrt(l2)
                                                  : dot;
  EXPECT_NEAR((*res)[0][0].score, expected, 1e-3 * std::max(1.0, std::abs(expected)));
}

INSTANTIATE_TEST_SUITE_P(
    Engine, EveryKindAndMetric,
    ::testing::Values(KindMetric{CodeKind::kF32, Metric::kCos}, KindMetric{CodeKind::kF16, Metric::kIp},
                      KindMetric{CodeKind::kBF16, Metric::kL2}, KindMetric{CodeKind::kE4M3, Metric::kCos},
                      KindMetric{CodeKind::kE5M2, Metric::kL2}, KindMetric{CodeKind::kI8, Metric::kCos},
                      KindMetric{CodeKind::kI8, Metric::kIp}, KindMetric{CodeKind::kI8, Metric::kL2},
                      KindMetric{CodeKind::kB1, Metric::kCos}, KindMetric{CodeKind::kB1, Metric::kL2}),
    [](const auto& info) {
      return std::string(to_string(info.param.kind)) + "_" + std::string(to_string(info.param.metric));
    });

TEST(Collection, PcaCodesOnlyCollection) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto cfg = config_for(48, Metric::kIp, CodeKind::kE4M3, 600);
  cfg.pca.components = 24;
  cfg.keep_originals = false;
  auto c = engine->create_collection("pca", cfg);
  ASSERT_TRUE(c.is_ok());
  // Data with 12 strong directions: 24 PCA components keep what ranks them.
  const std::vector<float> sigmas{8, 7, 6, 5, 5, 4, 4, 3, 3, 2, 2, 2};
  Matrix all = testing::planted_low_rank(1220, 48, sigmas, 0.05f, 21);
  Matrix base(1200, 48), queries(20, 48);
  std::copy_n(all.data.begin(), 1200 * 48, base.data.begin());
  std::copy_n(all.data.begin() + 1200 * 48, 20 * 48, queries.data.begin());
  ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  const auto info = (*c)->info();
  EXPECT_EQ(info.code_dim, 24u);
  EXPECT_GT(info.explained_variance, 0.99);
  EXPECT_EQ(info.memory.originals, 0u) << "codes-only collections drop the float32 vectors";
  EXPECT_GE(recall_at_k(**c, base, queries, Metric::kIp, 10), 0.9);
  // Without originals the returned vector is the reconstruction.
  auto rec = (*c)->retrieve(std::vector<PointId>{PointId::number(5)}, false, true);
  ASSERT_TRUE(rec.is_ok());
  ASSERT_EQ(rec->size(), 1u);
  double err = 0, norm = 0;
  for (int j = 0; j < 48; ++j) {
    err += std::pow((*(*rec)[0].vector)[j] - base.row(5)[j], 2);
    norm += std::pow(base.row(5)[j], 2);
  }
  EXPECT_LT(err / norm, 0.5);
  // Recalibration needs the originals.
  EXPECT_EQ((*c)->start_recalibration().code(), StatusCode::kFailedPrecondition);
}

TEST(Collection, UpsertReplacesAndDeleteRemovesEverywhere) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("c", config_for(8, Metric::kL2, CodeKind::kF16, 50));
  ASSERT_TRUE(c.is_ok());
  const Matrix base = clustered(100, 8, 31);
  std::vector<json> payloads;
  for (int i = 0; i < 100; ++i) payloads.push_back({{"n", i}, {"tag", i % 2 ? "odd" : "even"}});
  ASSERT_TRUE((*c)->upsert(points_of(base, 0, &payloads)).is_ok());
  EXPECT_EQ((*c)->count(), 100u);

  // Replace point 7 with point 8's vector and a new payload: searching for it finds both at distance 0.
  std::vector<PointInput> one(1);
  one[0].id = PointId::number(7);
  one[0].vector = {base.row(8), 8};
  one[0].payload = json{{"replaced", true}};
  ASSERT_TRUE((*c)->upsert(one).is_ok());
  EXPECT_EQ((*c)->count(), 100u);
  SearchRequest req;
  req.queries = {base.row(8), 8};
  req.nq = 1;
  req.limit = 2;
  req.with_payload = true;
  auto res = (*c)->search(req);
  ASSERT_TRUE(res.is_ok());
  std::set<std::uint64_t> ids;
  for (const auto& p : (*res)[0]) ids.insert(p.id.lo);
  EXPECT_EQ(ids, (std::set<std::uint64_t>{7, 8}));
  auto rec = (*c)->retrieve(std::vector<PointId>{PointId::number(7)}, true, true);
  ASSERT_TRUE(rec.is_ok() && rec->size() == 1);
  EXPECT_EQ(*(*rec)[0].payload, (json{{"replaced", true}}));
  EXPECT_EQ(*(*rec)[0].vector, std::vector<float>(base.row(8), base.row(8) + 8));

  // Delete 8 and a missing id: one removed; it is gone from search, retrieve and count.
  auto n = (*c)->erase(std::vector<PointId>{PointId::number(8), PointId::number(12345)});
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, 1u);
  res = (*c)->search(req);
  ASSERT_TRUE(res.is_ok());
  for (const auto& p : (*res)[0]) EXPECT_NE(p.id.lo, 8u);
  EXPECT_TRUE((*c)->retrieve(std::vector<PointId>{PointId::number(8)}, true, false)->empty());
  EXPECT_EQ((*c)->count(), 99u);

  // Delete by filter.
  auto f = Filter::parse(json{{"must", {{{"key", "tag"}, {"match", {{"value", "odd"}}}}}}});
  ASSERT_TRUE(f.is_ok());
  auto removed = (*c)->erase_matching(*f);
  ASSERT_TRUE(removed.is_ok());
  EXPECT_EQ(*removed, 49u);  // 50 odd ids, minus 7 whose payload was replaced
  EXPECT_EQ((*c)->count(), 50u);
  EXPECT_EQ((*c)->count(&*f).value(), 0u);

  // set_payload merges or overwrites.
  ASSERT_TRUE((*c)->set_payload(std::vector<PointId>{PointId::number(0)}, json{{"extra", 1}}, false).is_ok());
  rec = (*c)->retrieve(std::vector<PointId>{PointId::number(0)}, true, false);
  EXPECT_EQ(*(*rec)[0].payload, (json{{"n", 0}, {"tag", "even"}, {"extra", 1}}));
  ASSERT_TRUE((*c)->set_payload(std::vector<PointId>{PointId::number(0)}, json{{"only", 2}}, true).is_ok());
  rec = (*c)->retrieve(std::vector<PointId>{PointId::number(0)}, true, false);
  EXPECT_EQ(*(*rec)[0].payload, (json{{"only", 2}}));
  EXPECT_EQ((*c)->set_payload(std::vector<PointId>{PointId::number(999)}, json{{"a", 1}}, true).code(),
            StatusCode::kNotFound);
}

TEST(Collection, ReplacementsAreCompactedInTheBackground) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("c", config_for(8, Metric::kIp, CodeKind::kI8, 100));
  ASSERT_TRUE(c.is_ok());
  const Matrix base = clustered(500, 8, 5);
  ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  // Replacing the same 500 points over and over leaves dead rows; past 1,000 dead rows and 20 % of
  // the rows a compaction runs on the pool.
  for (int round = 0; round < 2; ++round) ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  (*c)->wait_for_recalibration();
  CollectionInfo info = (*c)->info();
  EXPECT_EQ(info.points, 500u);
  EXPECT_EQ(info.rows, 500u) << "the 1,000 dead rows were not reclaimed";
  // Below the threshold nothing runs.
  ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  (*c)->wait_for_recalibration();
  EXPECT_EQ((*c)->info().rows, 1000u);
  // Deletes count too; a compaction changes no result.
  std::vector<PointId> gone;
  for (std::size_t i = 400; i < 500; ++i) gone.push_back(PointId::number(i));
  ASSERT_TRUE((*c)->erase(gone).is_ok());
  SearchRequest req;
  req.queries = {base.row(3), 8};
  req.nq = 1;
  req.limit = 5;
  auto before = (*c)->search(req);
  ASSERT_TRUE(before.is_ok());
  // 1,000 rows, 600 dead; 400 replacements make 1,400 rows with 1,000 dead.
  const std::vector<PointInput> all = points_of(base, 0);
  ASSERT_TRUE((*c)->upsert(std::span<const PointInput>(all).subspan(0, 400)).is_ok());
  (*c)->wait_for_recalibration();
  info = (*c)->info();
  EXPECT_EQ(info.points, 400u);
  EXPECT_EQ(info.rows, 400u);
  auto after = (*c)->search(req);
  ASSERT_TRUE(after.is_ok());
  ASSERT_EQ((*after)[0].size(), (*before)[0].size());
  for (std::size_t i = 0; i < (*after)[0].size(); ++i) {
    EXPECT_EQ((*after)[0][i].id, (*before)[0][i].id);
    EXPECT_FLOAT_EQ((*after)[0][i].score, (*before)[0][i].score);
  }
}

TEST(Collection, UuidIdsAndLastWriteWinsWithinABatch) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("u", config_for(4, Metric::kIp, CodeKind::kF32, 10));
  ASSERT_TRUE(c.is_ok());
  const float a[4] = {1, 0, 0, 0}, b[4] = {0, 1, 0, 0};
  const auto u = *PointId::parse_uuid("5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  std::vector<PointInput> pts{{u, a, json{{"v", 1}}}, {PointId::number(1), b, std::nullopt}, {u, b, json{{"v", 2}}}};
  ASSERT_TRUE((*c)->upsert(pts).is_ok());
  EXPECT_EQ((*c)->count(), 2u);
  auto rec = (*c)->retrieve(std::vector<PointId>{u}, true, true);
  ASSERT_EQ(rec->size(), 1u);
  EXPECT_EQ(*(*rec)[0].payload, (json{{"v", 2}}));
  EXPECT_EQ(*(*rec)[0].vector, std::vector<float>(b, b + 4));
}

// ---- filters with k-NN ----------------------------------------------------------------------------

TEST(Collection, FilteredSearchReturnsKMatchesAndAgreesWithBruteForce) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  for (const std::string index : {"", "HNSW16"}) {
    auto cfg = config_for(16, Metric::kCos, CodeKind::kI8, 500);
    cfg.index = index;
    auto c = engine->create_collection(index.empty() ? "exact" : "hnsw", cfg);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    const Matrix base = clustered(1200, 16, 41), queries = clustered(20, 16, 42);
    std::vector<json> payloads;
    std::mt19937 rng(5);
    for (int i = 0; i < 1200; ++i) {
      payloads.push_back({{"group", static_cast<int>(rng() % 10)}, {"meta", {{"source", rng() % 3 ? "web" : "pdf"}}}});
    }
    ASSERT_TRUE((*c)->upsert(points_of(base, 0, &payloads)).is_ok());
    // A rare filter (about 3% of points): k-NN must still return k matching points.
    const json fj = {
        {"must",
         {{{"key", "group"}, {"match", {{"value", 3}}}}, {{"key", "meta.source"}, {"match", {{"value", "pdf"}}}}}}};
    auto filter = Filter::parse(fj);
    ASSERT_TRUE(filter.is_ok()) << filter.status().to_string();
    auto allowed = [&](std::size_t i) { return payloads[i]["group"] == 3 && payloads[i]["meta"]["source"] == "pdf"; };
    std::size_t matching = 0;
    for (std::size_t i = 0; i < 1200; ++i) matching += allowed(i);
    ASSERT_GT(matching, 10u);
    EXPECT_EQ((*c)->count(&*filter).value(), matching);
    SearchRequest req;
    req.queries = {queries.data.data(), queries.data.size()};
    req.nq = queries.rows;
    req.limit = 10;
    req.filter = &*filter;
    req.with_payload = true;
    req.hnsw_ef = 128;
    auto res = (*c)->search(req);
    ASSERT_TRUE(res.is_ok()) << res.status().to_string();
    std::size_t hit = 0;
    for (std::size_t i = 0; i < queries.rows; ++i) {
      ASSERT_EQ((*res)[i].size(), 10u) << "index '" << index << "': fewer than k results although " << matching
                                       << " points match";
      for (const auto& p : (*res)[i]) EXPECT_TRUE(allowed(p.id.lo)) << "a non-matching point was returned";
      const auto truth = brute_topk(queries.row(i), base, Metric::kCos, 10, allowed);
      std::set<std::uint64_t> t(truth.begin(), truth.end());
      for (const auto& p : (*res)[i]) hit += t.count(p.id.lo);
    }
    EXPECT_GE(double(hit) / (10.0 * queries.rows), index.empty() ? 0.99 : 0.9) << "index '" << index << "'";
  }
}

TEST(Collection, OffsetLimitThresholdAndScroll) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("c", config_for(12, Metric::kCos, CodeKind::kE4M3, 100));
  ASSERT_TRUE(c.is_ok());
  const Matrix base = clustered(300, 12, 51);
  ASSERT_TRUE((*c)->upsert(points_of(base, 1000)).is_ok());
  SearchRequest req;
  req.queries = {base.row(3), 12};
  req.nq = 1;
  req.limit = 10;
  auto all = (*c)->search(req);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ((*all)[0].size(), 10u);
  EXPECT_EQ((*all)[0][0].id.lo, 1003u);
  for (std::size_t i = 1; i < 10; ++i) EXPECT_GE((*all)[0][i - 1].score, (*all)[0][i].score);
  req.offset = 4;
  req.limit = 3;
  auto page = (*c)->search(req);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ((*page)[0].size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ((*page)[0][i].id, (*all)[0][4 + i].id);
  req.offset = 0;
  req.limit = 10;
  req.score_threshold = (*all)[0][5].score;
  auto above = (*c)->search(req);
  ASSERT_TRUE(above.is_ok());
  EXPECT_EQ((*above)[0].size(), 6u);
  for (const auto& p : (*above)[0]) EXPECT_GE(p.score, *req.score_threshold);

  // Scroll visits every id once, in id order.
  std::vector<std::uint64_t> seen;
  ScrollRequest sr;
  sr.limit = 64;
  for (;;) {
    auto p = (*c)->scroll(sr);
    ASSERT_TRUE(p.is_ok());
    for (const auto& r : p->points) seen.push_back(r.id.lo);
    if (!p->next_offset) break;
    sr.offset = p->next_offset;
  }
  ASSERT_EQ(seen.size(), 300u);
  for (std::size_t i = 0; i < 300; ++i) EXPECT_EQ(seen[i], 1000 + i);
}

// ---- persistence -----------------------------------------------------------------------------------

std::vector<std::vector<ScoredPoint>> search_all(const Collection& c, const Matrix& queries, std::size_t k,
                                                 bool rescore = true) {
  SearchRequest req;
  req.queries = {queries.data.data(), queries.data.size()};
  req.nq = queries.rows;
  req.limit = k;
  req.rescore = rescore;
  auto r = c.search(req);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<std::vector<ScoredPoint>>{};
}

void expect_same_results(const std::vector<std::vector<ScoredPoint>>& a, const std::vector<std::vector<ScoredPoint>>& b,
                         const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size()) << what << " query " << i;
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      EXPECT_EQ(a[i][j].id, b[i][j].id) << what << " query " << i << " rank " << j;
      EXPECT_EQ(a[i][j].score, b[i][j].score) << what << " query " << i << " rank " << j;
    }
  }
}

TEST(Persistence, RestartGivesIdenticalResults) {
  TempDir dir;
  const Matrix base = clustered(1500, 32, 61), queries = clustered(40, 32, 62);
  struct Case {
    std::string name;
    CollectionConfig config;
  };
  std::vector<Case> cases;
  cases.push_back({"pending", config_for(32, Metric::kCos, CodeKind::kI8, 5000)});
  cases.push_back({"i8", config_for(32, Metric::kCos, CodeKind::kI8, 600)});
  cases.push_back({"b1", config_for(32, Metric::kL2, CodeKind::kB1, 600)});
  auto pca = config_for(32, Metric::kIp, CodeKind::kE4M3, 600);
  pca.pca.variance_fraction = 0.9;
  pca.keep_originals = false;
  cases.push_back({"pca_codes_only", pca});
  auto hnsw = config_for(32, Metric::kCos, CodeKind::kI8, 600);
  hnsw.index = "HNSW16";
  cases.push_back({"hnsw", hnsw});
  auto ivf = config_for(32, Metric::kL2, CodeKind::kF16, 600);
  ivf.index = "IVF16,Flat";
  cases.push_back({"ivf", ivf});
  auto bhnsw = config_for(32, Metric::kCos, CodeKind::kB1, 600);
  bhnsw.index = "BHNSW16";
  cases.push_back({"bhnsw", bhnsw});

  std::map<std::string, std::vector<std::vector<ScoredPoint>>> before, before_codes;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    for (const auto& cs : cases) {
      auto c = engine->create_collection(cs.name, cs.config);
      ASSERT_TRUE(c.is_ok()) << cs.name << ": " << c.status().to_string();
      std::vector<json> payloads;
      for (int i = 0; i < 1500; ++i) payloads.push_back({{"i", i}});
      ASSERT_TRUE((*c)->upsert(points_of(base, 0, &payloads)).is_ok());
      // Some churn: deletes and replacements leave dead rows that the restart must reproduce.
      std::vector<PointId> gone;
      for (int i = 0; i < 1500; i += 7) gone.push_back(PointId::number(i));
      ASSERT_TRUE((*c)->erase(gone).is_ok());
      Matrix again(50, 32);
      std::copy_n(base.row(100), 50 * 32, again.data.begin());
      ASSERT_TRUE((*c)->upsert(points_of(again, 3)).is_ok());
      before[cs.name] = search_all(**c, queries, 10);
      before_codes[cs.name] = search_all(**c, queries, 10, false);
    }
  }
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  EXPECT_EQ(engine->list_collections().size(), cases.size());
  for (const auto& cs : cases) {
    auto c = engine->collection(cs.name);
    ASSERT_TRUE(c.is_ok()) << cs.name;
    // 215 ids (multiples of 7) deleted; re-adding ids 3..52 brings back the 7 multiples of 7 among them.
    EXPECT_EQ((*c)->count(), 1500u - 215u + 7u) << cs.name;
    expect_same_results(before[cs.name], search_all(**c, queries, 10), cs.name + " (rescored)");
    expect_same_results(before_codes[cs.name], search_all(**c, queries, 10, false), cs.name + " (codes)");
    auto rec = (*c)->retrieve(std::vector<PointId>{PointId::number(1)}, true, false);
    ASSERT_EQ(rec->size(), 1u);
    EXPECT_EQ(*(*rec)[0].payload, (json{{"i", 1}}));
  }
}

TEST(Persistence, RecalibrationAndCompactionSurviveRestart) {
  TempDir dir;
  const Matrix base = clustered(2000, 24, 71), queries = clustered(30, 24, 72);
  std::vector<std::vector<ScoredPoint>> before;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    auto cfg = config_for(24, Metric::kCos, CodeKind::kI8, 200);
    cfg.index = "HNSW16";
    auto c = engine->create_collection("c", cfg);
    ASSERT_TRUE(c.is_ok());
    ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
    ASSERT_TRUE((*c)->start_recalibration().is_ok());
    (*c)->wait_for_recalibration();
    const auto progress = (*c)->recalibration_progress();
    EXPECT_EQ(progress.state, RecalibrationState::kDone) << progress.message;
    EXPECT_EQ(progress.done, 2000u);
    EXPECT_EQ((*c)->info().generation, 2u);
    std::vector<PointId> gone;
    for (int i = 0; i < 2000; i += 3) gone.push_back(PointId::number(i));
    ASSERT_TRUE((*c)->erase(gone).is_ok());
    auto reclaimed = (*c)->compact();
    ASSERT_TRUE(reclaimed.is_ok()) << reclaimed.status().to_string();
    EXPECT_EQ(*reclaimed, 667u);
    EXPECT_EQ((*c)->info().rows, 1333u);
    before = search_all(**c, queries, 10);
  }
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->collection("c");
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ((*c)->info().generation, 2u);
  EXPECT_EQ((*c)->count(), 1333u);
  expect_same_results(before, search_all(**c, queries, 10), "after recalibration + compaction");
}

TEST(Persistence, DamagedOrUnknownBlobsAreClearErrorsNamingTheCollection) {
  TempDir dir;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    auto c = engine->create_collection("fragile", config_for(8, Metric::kCos, CodeKind::kI8, 20));
    ASSERT_TRUE(c.is_ok());
    const Matrix base = clustered(40, 8, 81);
    ASSERT_TRUE((*c)->upsert(points_of(base, 0)).is_ok());
  }
  // Flip a byte in the calibration blob.
  {
    auto store = storage::Store::open(dir.path());
    ASSERT_TRUE(store.is_ok());
    std::string key, value;
    ASSERT_TRUE((*store)
                    ->scan(storage::Column::kMeta, "calibration/",
                           [&](std::string_view k, std::string_view v) {
                             key = k;
                             value = v;
                             return false;
                           })
                    .is_ok());
    ASSERT_FALSE(value.empty());
    value[value.size() / 2] ^= 0x5A;
    ASSERT_TRUE((*store)->put(storage::Column::kMeta, key, value).is_ok());
  }
  auto engine = Engine::open(dir.path());
  ASSERT_FALSE(engine.is_ok());
  EXPECT_EQ(engine.status().code(), StatusCode::kCorruption);
  EXPECT_NE(engine.status().message().find("fragile"), std::string::npos) << engine.status().to_string();
}

// ---- validation -----------------------------------------------------------------------------------

TEST(Validation, BadInputIsRejectedAndChangesNothing) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  CollectionConfig bad;
  bad.dim = 0;
  EXPECT_EQ(engine->create_collection("x", bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->create_collection("bad/name", config_for(4, Metric::kIp, CodeKind::kI8)).status().code(),
            StatusCode::kInvalidArgument);
  auto binary_on_i8 = config_for(64, Metric::kIp, CodeKind::kI8);
  binary_on_i8.index = "BHNSW32";
  EXPECT_EQ(engine->create_collection("x", binary_on_i8).status().code(), StatusCode::kInvalidArgument);
  auto bad_index = config_for(64, Metric::kIp, CodeKind::kI8);
  bad_index.index = "NoSuchIndex7";
  EXPECT_EQ(engine->create_collection("x", bad_index).status().code(), StatusCode::kInvalidArgument);

  auto c = engine->create_collection("c", config_for(4, Metric::kCos, CodeKind::kI8, 10));
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(engine->create_collection("c", config_for(4, Metric::kCos, CodeKind::kI8)).status().code(),
            StatusCode::kAlreadyExists);
  const float ok[4] = {1, 2, 3, 4}, nan[4] = {1, NAN, 3, 4}, three[3] = {1, 2, 3};
  std::vector<PointInput> good{{PointId::number(1), ok, std::nullopt}};
  ASSERT_TRUE((*c)->upsert(good).is_ok());
  std::vector<PointInput> with_nan{{PointId::number(2), ok, std::nullopt}, {PointId::number(3), nan, std::nullopt}};
  EXPECT_EQ((*c)->upsert(with_nan).code(), StatusCode::kInvalidArgument);
  std::vector<PointInput> short_vec{{PointId::number(4), three, std::nullopt}};
  EXPECT_EQ((*c)->upsert(short_vec).code(), StatusCode::kInvalidArgument);
  std::vector<PointInput> not_object{{PointId::number(5), ok, json::array({1})}};
  EXPECT_EQ((*c)->upsert(not_object).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->count(), 1u) << "a rejected batch must not be partly applied";

  SearchRequest req;
  req.queries = {ok, 4};
  req.nq = 1;
  req.limit = 0;
  EXPECT_EQ((*c)->search(req).status().code(), StatusCode::kInvalidArgument);
  req.limit = 10;
  req.offset = kernels::kMaxK;
  EXPECT_EQ((*c)->search(req).status().code(), StatusCode::kInvalidArgument);
  req.offset = 0;
  req.queries = {nan, 4};
  EXPECT_EQ((*c)->search(req).status().code(), StatusCode::kInvalidArgument);
  req.queries = {three, 3};
  EXPECT_EQ((*c)->search(req).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine->collection("nope").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(engine->drop_collection("nope").code(), StatusCode::kNotFound);

  // Dropping removes the data; a stale handle cannot write it back.
  ASSERT_TRUE(engine->drop_collection("c").is_ok());
  EXPECT_EQ((*c)->upsert(good).code(), StatusCode::kNotFound);
  auto again = engine->create_collection("c", config_for(4, Metric::kCos, CodeKind::kI8, 10));
  ASSERT_TRUE(again.is_ok());
  EXPECT_EQ((*again)->count(), 0u);
}

TEST(Config, JsonRoundTripAndErrorsNameTheKey) {
  auto cfg = config_for(128, Metric::kL2, CodeKind::kE4M3);
  cfg.pca.variance_fraction = 0.95;
  cfg.index = "HNSW32";
  cfg.hnsw_ef_construction = 100;
  cfg.vector_name = "text";
  cfg.keep_originals = false;
  auto back = config_from_json(config_to_json(cfg));
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(config_to_json(*back), config_to_json(cfg));
  auto r = config_from_json(json{{"dim", 8}, {"codec", {{"kind", "int4"}}}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("codec.kind"), std::string::npos) << r.status().to_string();
  r = config_from_json(json{{"dim", 8}, {"unknown", 1}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("unknown"), std::string::npos);
  r = config_from_json(json{{"dim", "8"}});
  EXPECT_FALSE(r.is_ok());
  r = config_from_json(json{{"dim", 8}, {"pca", {{"variance_fraction", 1.5}}}});
  EXPECT_FALSE(r.is_ok());
  r = config_from_json(json{{"dim", 8}, {"hnsw_ef_construction", 100}});  // no HNSW index
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("hnsw_ef_construction"), std::string::npos);
  r = config_from_json(json{{"dim", 8}, {"index", "HNSW16"}, {"hnsw_ef_construction", 5000}});
  EXPECT_FALSE(r.is_ok());
}

// ---- concurrency ----------------------------------------------------------------------------------

// Writers upsert batches of 16 points that share a "batch" payload value while readers count and
// search with a filter on a batch: a reader sees all 16 points of a batch or none of them.
TEST(Concurrency, ReadersNeverSeeAHalfAppliedBatch) {
  TempDir dir;
  auto engine = open_engine(dir.path(), EngineOptions{.threads = 1});
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("c", config_for(16, Metric::kCos, CodeKind::kI8, 256));
  ASSERT_TRUE(c.is_ok());
  const Matrix base = clustered(16 * 60, 16, 91);
  std::atomic<int> written{0};
  std::atomic<bool> failed{false};
  std::thread writer([&] {
    for (int b = 0; b < 60; ++b) {
      std::vector<PointInput> pts(16);
      std::vector<json> payloads(16, json{{"batch", b}});
      for (int i = 0; i < 16; ++i) {
        pts[i] = {PointId::number(static_cast<std::uint64_t>(b * 16 + i)), {base.row(b * 16 + i), 16}, payloads[i]};
      }
      WriteOptions wo;
      wo.sync = false;
      if (!(*c)->upsert(pts, wo).is_ok()) failed = true;
      written = b + 1;
    }
  });
  std::vector<std::thread> readers;
  std::atomic<int> checks{0};
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      std::mt19937 rng(t);
      while (written < 60) {
        const int b = static_cast<int>(rng() % 60);
        auto f = Filter::parse(json{{"must", {{{"key", "batch"}, {"match", {{"value", b}}}}}}});
        const std::size_t n = (*c)->count(&*f).value();
        if (n != 0 && n != 16) failed = true;
        SearchRequest req;
        req.queries = {base.row(b * 16), 16};
        req.nq = 1;
        req.limit = 32;
        req.filter = &*f;
        auto res = (*c)->search(req);
        if (!res.is_ok() || ((*res)[0].size() != 0 && (*res)[0].size() != 16)) failed = true;
        ++checks;
      }
    });
  }
  writer.join();
  for (auto& r : readers) r.join();
  EXPECT_FALSE(failed.load());
  EXPECT_GT(checks.load(), 0);
  EXPECT_EQ((*c)->count(), 960u);
}

// The compact id -> row table against std::unordered_map under random assigns, erases and lookups
// (with many collisions: ids from a small range so probe runs overlap and deletions shift).
TEST(RowIndexTest, MatchesAReferenceMapUnderChurn) {
  RowIndex index;
  std::unordered_map<PointId, std::uint32_t, PointIdHash> ref;
  std::vector<PointId> row_ids;
  std::mt19937_64 rng(7);
  for (int step = 0; step < 200000; ++step) {
    const PointId id =
        rng() % 4 ? PointId::number(rng() % 5000) : PointId{PointId::Kind::kUuid, rng() % 3, rng() % 2000};
    const int op = static_cast<int>(rng() % 10);
    if (op < 5) {
      row_ids.push_back(id);
      const auto row = static_cast<std::uint32_t>(row_ids.size() - 1);
      const auto old = index.assign(id, row, row_ids);
      const auto it = ref.find(id);
      ASSERT_EQ(old.has_value(), it != ref.end());
      if (old) {
        ASSERT_EQ(*old, it->second);
      }
      ref[id] = row;
    } else if (op < 8) {
      const auto removed = index.erase(id, row_ids);
      const auto it = ref.find(id);
      ASSERT_EQ(removed.has_value(), it != ref.end());
      if (removed) {
        ASSERT_EQ(*removed, it->second);
        ref.erase(it);
      }
    } else {
      const auto found = index.find(id, row_ids);
      const auto it = ref.find(id);
      ASSERT_EQ(found.has_value(), it != ref.end());
      if (found) {
        ASSERT_EQ(*found, it->second);
      }
    }
    ASSERT_EQ(index.size(), ref.size());
  }
  for (const auto& [id, row] : ref) ASSERT_EQ(index.find(id, row_ids), std::optional<std::uint32_t>(row));
  EXPECT_LT(index.memory_bytes(), 16 * ref.size() + 1024) << "about 4 / 0.7 bytes per entry, up to doubling";
}

TEST(ThreadPoolTest, BoundedQueueRefusesWorkWhenFull) {
  ThreadPool pool(1, 2);
  std::mutex gate;
  gate.lock();
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool.submit([&] {
                    std::lock_guard l(gate);
                    ++ran;
                  })
                  .is_ok());
  // The worker is blocked on the gate (or about to be); fill the queue.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(pool.submit([&] { ++ran; }).is_ok());
  ASSERT_TRUE(pool.submit([&] { ++ran; }).is_ok());
  EXPECT_EQ(pool.submit([&] { ++ran; }).code(), StatusCode::kResourceExhausted);
  gate.unlock();
  while (ran.load() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(ran.load(), 3);
}

}  // namespace
}  // namespace vecstash::engine
