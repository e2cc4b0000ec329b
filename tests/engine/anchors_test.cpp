// Anchor sets, relative vectors and cross-model queries through the engine: strategies, queries in a
// second model's space by each method, relative vectors following writes and compaction, persistence
// across restarts, and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <set>
#include <tuple>

#include "testing/random_data.h"
#include "testing/temp_dir.h"
#include "vecstash/engine/engine.h"

namespace vecstash::engine {

// Readable ids in failure messages.
void PrintTo(const PointId& id, std::ostream* os) { *os << id.to_string(); }

namespace {

using testing::Matrix;
using testing::TempDir;

constexpr std::size_t kDimA = 24;
constexpr std::size_t kDimB = 32;

// Clustered rows (a shared offset, 16 centres, noise), like embeddings.
Matrix clustered(std::size_t n, std::size_t d, std::uint64_t seed) {
  return testing::clustered_rows(n, d, seed, 16, 0.4f, 0.5f);
}

// A kDimA x kDimB matrix with orthonormal rows: x -> x Q is an isometry from model A's space into
// model B's, so model B "embeds" exactly what model A does.
Matrix isometry(std::uint64_t seed) {
  return testing::to_float(testing::orthonormal_rows(kDimA, kDimB, seed), kDimA, kDimB);
}

Matrix times(const Matrix& x, const Matrix& q) {
  Matrix out(x.rows, q.cols);
  for (std::size_t i = 0; i < x.rows; ++i)
    for (std::size_t k = 0; k < x.cols; ++k)
      for (std::size_t j = 0; j < q.cols; ++j) out.row(i)[j] += x.row(i)[k] * q.row(k)[j];
  return out;
}

std::unique_ptr<Engine> open_engine(const std::filesystem::path& dir) {
  EngineOptions o;
  o.threads = 2;
  auto e = Engine::open(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

CollectionConfig config_of(CodeKind kind, bool keep_originals = true) {
  CollectionConfig c;
  c.dim = kDimA;
  c.metric = Metric::kCos;
  c.codec.kind = kind;
  c.keep_originals = keep_originals;
  c.calibration_sample = 200;
  return c;
}

void ingest(Collection& c, const Matrix& m, std::size_t first_id) {
  std::vector<PointInput> pts(m.rows);
  for (std::size_t i = 0; i < m.rows; ++i) {
    pts[i].id = PointId::number(first_id + i);
    pts[i].vector = {m.row(i), m.cols};
  }
  ASSERT_TRUE(c.upsert(pts).is_ok());
}

// Collection "a" (float32, cosine) holding `n` clustered points with ids 0..n-1.
std::shared_ptr<Collection> clustered_collection(Engine& e, std::size_t n, std::uint64_t seed) {
  auto c = e.create_collection("a", config_of(CodeKind::kF32));
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  if (!c.is_ok()) return nullptr;
  ingest(**c, clustered(n, kDimA, seed), 0);
  return *c;
}

// clustered_collection() with an anchor set of `count` anchors (k-means, the default strategy).
std::shared_ptr<Collection> anchored_collection(Engine& e, std::size_t n, std::uint64_t seed, std::size_t count) {
  auto c = clustered_collection(e, n, seed);
  if (!c) return nullptr;
  AnchorRequest req;
  req.count = count;
  const auto set = c->set_anchors(req);
  EXPECT_TRUE(set.is_ok()) << set.status().to_string();
  return set.is_ok() ? c : nullptr;
}

std::vector<std::vector<PointId>> ids_of(const Result<std::vector<std::vector<ScoredPoint>>>& r) {
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  std::vector<std::vector<PointId>> out;
  if (!r.is_ok()) return out;
  for (const auto& q : *r) {
    out.emplace_back();
    for (const auto& p : q) out.back().push_back(p.id);
  }
  return out;
}

Result<std::vector<std::vector<ScoredPoint>>> query(const Collection& c, const Matrix& q, const std::string& space,
                                                    std::optional<CrossMethod> method = std::nullopt,
                                                    bool relative_input = false, std::size_t limit = 10,
                                                    std::optional<float> hubness_weight = std::nullopt) {
  SearchRequest r;
  r.queries = q.data;
  r.nq = q.rows;
  r.limit = limit;
  r.exact = true;
  r.space.name = space;
  r.space.method = method;
  r.space.relative_input = relative_input;
  r.space.hubness_weight = hubness_weight;
  return c.search(r);
}

// A model's query without the hubness correction (the map alone).
Result<std::vector<std::vector<ScoredPoint>>> plain_query(const Collection& c, const Matrix& q, const std::string& space,
                                                          std::optional<CrossMethod> method = std::nullopt) {
  return query(c, q, space, method, false, 10, 0.0f);
}

// The model B embeddings of the anchors: the anchors' A vectors mapped by the isometry.
ModelRequest model_b(const Collection& c, const Matrix& q, const std::string& name = "model_b") {
  auto anchors = c.anchor_vectors();
  EXPECT_TRUE(anchors.is_ok());
  Matrix a(anchors->size() / kDimA, kDimA);
  a.data = *anchors;
  ModelRequest m;
  m.name = name;
  m.dim = kDimB;
  m.vectors = times(a, q).data;
  return m;
}

TEST(Anchors, StrategiesPickDistinctExistingPointsDeterministically) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = clustered_collection(*e, 600, 1);
  for (auto strategy : {AnchorStrategy::kRandom, AnchorStrategy::kKMeans, AnchorStrategy::kFarthest}) {
    AnchorRequest req;
    req.strategy = strategy;
    req.count = 40;
    req.seed = 7;
    auto info = c->set_anchors(req);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->count, 40u);
    EXPECT_EQ(info->strategy, strategy);
    std::set<PointId> distinct(info->ids.begin(), info->ids.end());
    EXPECT_EQ(distinct.size(), 40u) << anchor_strategy_name(strategy);
    for (const PointId& id : info->ids) EXPECT_LT(id.lo, 600u);
    EXPECT_EQ(info->relative_rows, 600u);
    auto again = c->set_anchors(req);
    ASSERT_TRUE(again.is_ok());
    EXPECT_EQ(again->ids, info->ids) << "same seed, same anchors: " << anchor_strategy_name(strategy);
    EXPECT_EQ(again->version, info->version + 1);
  }
  // Farthest-point sampling spreads out: its anchors' mean pairwise cosine is below a random set's.
  auto spread = [&](AnchorStrategy s) {
    AnchorRequest req;
    req.strategy = s;
    req.count = 16;
    EXPECT_TRUE(c->set_anchors(req).is_ok());
    auto v = *c->anchor_vectors();
    double sum = 0;
    for (std::size_t i = 0; i < 16; ++i)
      for (std::size_t j = i + 1; j < 16; ++j) {
        double dot = 0;
        for (std::size_t k = 0; k < kDimA; ++k) dot += double(v[i * kDimA + k]) * v[j * kDimA + k];
        sum += dot;
      }
    return sum / (16 * 15 / 2);
  };
  EXPECT_LT(spread(AnchorStrategy::kFarthest), spread(AnchorStrategy::kRandom));
}

TEST(Anchors, CrossModelQueriesMatchNativeQueriesForAnIsometricModel) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = *e->create_collection("a", config_of(CodeKind::kF32));
  const Matrix data = clustered(800, kDimA, 2);
  ingest(*c, data, 0);
  AnchorRequest req;
  req.count = 64;
  req.relative_kind = CodeKind::kF32;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  const Matrix q = isometry(3);
  auto info = c->register_model(model_b(*c, q));
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_GT(info->procrustes_fit_cosine, 0.999);
  EXPECT_EQ(info->default_method, CrossMethod::kLocal);
  EXPECT_EQ(info->hubness_weight, kDefaultHubnessWeight);
  EXPECT_EQ(info->hubness_neighbours, kDefaultHubnessNeighbours);

  // The maps alone (hubness weight 0 per query) reproduce the native ranking.
  const Matrix queries_a = clustered(20, kDimA, 4);
  const Matrix queries_b = times(queries_a, q);
  const auto native = ids_of(query(*c, queries_a, ""));
  EXPECT_EQ(ids_of(plain_query(*c, queries_b, "model_b")), native);
  EXPECT_EQ(ids_of(plain_query(*c, queries_b, "model_b", CrossMethod::kProcrustes)), native);
  // Local: the anchors' residuals are rounding noise, so the correction changes nothing that matters.
  EXPECT_EQ(ids_of(plain_query(*c, queries_b, "model_b", CrossMethod::kLocal)), native);
  // Affine with its default pull towards Procrustes: the same map when the spaces are isometric.
  EXPECT_EQ(ids_of(plain_query(*c, queries_b, "model_b", CrossMethod::kAffine)), native);
  // Relative: cosines to the anchors are preserved by an isometry, so B's relative query equals A's.
  const auto relative_a = ids_of(query(*c, queries_a, "relative"));
  EXPECT_EQ(ids_of(query(*c, queries_b, "model_b", CrossMethod::kRelative)), relative_a);
  // Relative search of a stored point's own vector finds that point first.
  Matrix own(1, kDimA);
  std::copy_n(data.row(123), kDimA, own.row(0));
  auto self = query(*c, own, "relative");
  ASSERT_TRUE(self.is_ok());
  EXPECT_EQ((*self)[0][0].id, PointId::number(123));
  EXPECT_NEAR((*self)[0][0].score, 1.0f, 1e-4f);
}

// Model B sees each point through the isometry plus an offset that depends on the point's cluster (a
// piecewise map: no linear map is exact). The local method, fitted on the anchors alone, recovers more
// of the native neighbours than Procrustes; its chosen parameters and answers survive a restart.
TEST(Anchors, LocalMethodCorrectsANonLinearModelAndPersists) {
  TempDir dir;
  const Matrix q = isometry(20);
  constexpr std::size_t kClusters = 16;
  std::mt19937_64 rng(21);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Matrix centres(kClusters, kDimA), offsets(kClusters, kDimB);
  for (auto& v : centres.data) v = g(rng);
  for (auto& v : offsets.data) v = 0.5f * g(rng);
  auto points = [&](std::size_t n, std::vector<std::size_t>* labels) {
    Matrix x(n, kDimA);
    for (std::size_t i = 0; i < n; ++i) {
      labels->push_back(rng() % kClusters);
      for (std::size_t j = 0; j < kDimA; ++j) x.row(i)[j] = centres.row(labels->back())[j] + 0.5f * g(rng);
    }
    testing::normalize_rows(x);  // the collection is cosine: what it stores, and its anchors, are unit vectors
    return x;
  };
  auto bend = [&](const Matrix& x, const std::vector<std::size_t>& labels) {
    Matrix y = times(x, q);
    for (std::size_t i = 0; i < y.rows; ++i)
      for (std::size_t j = 0; j < kDimB; ++j) y.row(i)[j] += offsets.row(labels[i])[j];
    return y;
  };
  std::vector<std::size_t> data_labels, query_labels;
  const Matrix data = points(2000, &data_labels);
  const Matrix queries_a = points(60, &query_labels);
  const Matrix queries_b = bend(queries_a, query_labels);
  auto overlap = [](const std::vector<std::vector<PointId>>& got, const std::vector<std::vector<PointId>>& want) {
    std::size_t hits = 0, total = 0;
    for (std::size_t i = 0; i < want.size(); ++i) {
      const std::set<PointId> w(want[i].begin(), want[i].end());
      for (const PointId& id : got[i]) hits += w.count(id);
      total += want[i].size();
    }
    return static_cast<double>(hits) / static_cast<double>(total);
  };
  std::vector<std::vector<PointId>> local_before;
  ModelInfo chosen;
  {
    auto e = open_engine(dir.path());
    auto c = *e->create_collection("a", config_of(CodeKind::kF32));
    ingest(*c, data, 0);
    AnchorRequest req;
    req.strategy = AnchorStrategy::kRandom;
    req.count = 400;
    req.store_relative = false;
    auto set = c->set_anchors(req);
    ASSERT_TRUE(set.is_ok()) << set.status().to_string();
    Matrix a(set->ids.size(), kDimA);
    std::vector<std::size_t> anchor_labels;
    for (std::size_t i = 0; i < set->ids.size(); ++i) {
      const std::size_t row = static_cast<std::size_t>(set->ids[i].lo);  // ids are the data's row numbers
      std::copy_n(data.row(row), kDimA, a.row(i));
      anchor_labels.push_back(data_labels[row]);
    }
    ModelRequest m;
    m.name = "bent";
    m.dim = kDimB;
    m.vectors = bend(a, anchor_labels).data;
    auto info = c->register_model(m);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_GT(info->local_weight, 0.0f);
    EXPECT_GT(info->local_fit_cosine, info->procrustes_fit_cosine);
    const auto native = ids_of(query(*c, queries_a, ""));
    const double procrustes = overlap(ids_of(query(*c, queries_b, "bent", CrossMethod::kProcrustes)), native);
    local_before = ids_of(query(*c, queries_b, "bent", CrossMethod::kLocal));
    const double local = overlap(local_before, native);
    std::printf(
        "[ local ] k %u, temperature %g, weight %g (leave-one-out cos %.4f, Procrustes fit %.4f); "
        "overlap with the native top-10: procrustes %.3f, local %.3f\n",
        info->local_neighbours, info->local_temperature, info->local_weight, info->local_fit_cosine,
        info->procrustes_fit_cosine, procrustes, local);
    EXPECT_GT(local, procrustes + 0.05);
    EXPECT_EQ(ids_of(query(*c, queries_b, "bent")), local_before);  // the default method
    chosen = *info;
  }
  auto e = open_engine(dir.path());
  auto c = *e->collection("a");
  auto info = c->anchors();
  ASSERT_TRUE(info.has_value());
  ASSERT_EQ(info->models.size(), 1u);
  const ModelInfo& m = info->models[0];
  EXPECT_EQ(m.local_neighbours, chosen.local_neighbours);
  EXPECT_EQ(m.local_temperature, chosen.local_temperature);
  EXPECT_EQ(m.local_weight, chosen.local_weight);
  EXPECT_EQ(m.local_fit_cosine, chosen.local_fit_cosine);
  EXPECT_EQ(ids_of(query(*c, queries_b, "bent", CrossMethod::kLocal)), local_before);
}

TEST(Anchors, LocalParametersCanBeFixedAndAreValidated) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = anchored_collection(*e, 300, 30, 40);
  ASSERT_TRUE(c);
  const Matrix q = isometry(31);
  ModelRequest m = model_b(*c, q);
  m.local_neighbours = 5;
  m.local_temperature = 0.3f;
  m.local_weight = 0.5f;
  auto info = c->register_model(m);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->local_neighbours, 5u);
  EXPECT_EQ(info->local_temperature, 0.3f);
  EXPECT_EQ(info->local_weight, 0.5f);
  for (auto bad : {std::tuple<std::uint32_t, float, float>{0, 0.1f, 0.5f},
                   {41, 0.1f, 0.5f},
                   {4, 0.0f, 0.5f},
                   {4, 0.1f, -1.0f},
                   {4, 0.1f, 3.0f}}) {
    ModelRequest b = model_b(*c, q, "bad");
    b.local_neighbours = std::get<0>(bad);
    b.local_temperature = std::get<1>(bad);
    b.local_weight = std::get<2>(bad);
    EXPECT_EQ(c->register_model(b).status().code(), StatusCode::kInvalidArgument) << std::get<0>(bad);
  }
  EXPECT_EQ(c->anchors()->models.size(), 1u);  // the rejected ones left nothing behind
  EXPECT_TRUE(info->warnings.empty());         // 40 anchors for 32 and 24 dimensions

  // Fewer anchors than dimensions: registered, with a warning that is kept across a reload of the list.
  AnchorRequest req;
  req.count = 20;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  auto few = c->register_model(model_b(*c, q));
  ASSERT_TRUE(few.is_ok()) << few.status().to_string();
  ASSERT_EQ(few->warnings.size(), 1u);
  EXPECT_NE(few->warnings[0].find("under-determined"), std::string::npos) << few->warnings[0];
  EXPECT_EQ(c->anchors()->models.at(0).warnings, few->warnings);
}

TEST(Anchors, RelativeQueriesGivenAsRelativeVectors) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = clustered_collection(*e, 300, 5);
  AnchorRequest req;
  req.strategy = AnchorStrategy::kRandom;
  req.count = 20;
  req.center = false;
  req.relative_kind = CodeKind::kF32;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  const auto anchors = *c->anchor_vectors();
  const Matrix qa = clustered(5, kDimA, 6);
  // The relative vector by hand: cosine of the query with each (unit) anchor.
  Matrix rel(5, 20);
  for (std::size_t i = 0; i < 5; ++i) {
    double qn = 0;
    for (std::size_t k = 0; k < kDimA; ++k) qn += double(qa.row(i)[k]) * qa.row(i)[k];
    for (std::size_t a = 0; a < 20; ++a) {
      double dot = 0, an = 0;
      for (std::size_t k = 0; k < kDimA; ++k) {
        dot += double(qa.row(i)[k]) * anchors[a * kDimA + k];
        an += double(anchors[a * kDimA + k]) * anchors[a * kDimA + k];
      }
      rel.row(i)[a] = float(dot / std::sqrt(qn * an));
    }
  }
  EXPECT_EQ(ids_of(query(*c, rel, "relative", std::nullopt, true)), ids_of(query(*c, qa, "relative")));
}

TEST(Anchors, RelativeVectorsFollowWritesCompactionAndRestart) {
  TempDir dir;
  const Matrix q = isometry(8);
  const Matrix queries_a = clustered(10, kDimA, 9);
  const Matrix queries_b = times(queries_a, q);
  std::vector<std::vector<PointId>> relative_before, model_before, procrustes_before;
  {
    auto e = open_engine(dir.path());
    auto c = *e->create_collection("a", config_of(CodeKind::kI8));
    ingest(*c, clustered(500, kDimA, 10), 0);
    AnchorRequest req;
    req.count = 32;
    req.relative_kind = CodeKind::kE4M3;
    ASSERT_TRUE(c->set_anchors(req).is_ok());
    ASSERT_TRUE(c->register_model(model_b(*c, q)).is_ok());
    // New points get relative vectors; deleted ones are never returned.
    const Matrix more = clustered(100, kDimA, 11);
    ingest(*c, more, 1000);
    Matrix own(1, kDimA);
    std::copy_n(more.row(42), kDimA, own.row(0));
    auto self = query(*c, own, "relative");
    ASSERT_TRUE(self.is_ok());
    EXPECT_EQ((*self)[0][0].id, PointId::number(1042));
    std::vector<PointId> gone;
    for (std::size_t i = 0; i < 300; ++i) gone.push_back(PointId::number(i));
    ASSERT_TRUE(c->erase(gone).is_ok());
    auto after = ids_of(query(*c, queries_a, "relative", std::nullopt, false, 50));
    for (const auto& row : after)
      for (const PointId& id : row) EXPECT_TRUE(id.lo >= 300) << id.to_string();
    relative_before = ids_of(query(*c, queries_a, "relative"));
    model_before = ids_of(query(*c, queries_b, "model_b", CrossMethod::kRelative));
    procrustes_before = ids_of(query(*c, queries_b, "model_b"));
    auto reclaimed = c->compact();
    ASSERT_TRUE(reclaimed.is_ok());
    EXPECT_EQ(*reclaimed, 300u);
    EXPECT_EQ(ids_of(query(*c, queries_a, "relative")), relative_before);
    EXPECT_EQ(c->anchors()->relative_rows, 300u);
  }
  auto e = open_engine(dir.path());
  auto c = *e->collection("a");
  auto info = c->anchors();
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->count, 32u);
  EXPECT_EQ(info->relative_kind, CodeKind::kE4M3);
  ASSERT_EQ(info->models.size(), 1u);
  EXPECT_EQ(info->models[0].name, "model_b");
  EXPECT_EQ(info->models[0].dim, kDimB);
  EXPECT_EQ(ids_of(query(*c, queries_a, "relative")), relative_before);
  EXPECT_EQ(ids_of(query(*c, queries_b, "model_b", CrossMethod::kRelative)), model_before);
  EXPECT_EQ(ids_of(query(*c, queries_b, "model_b")), procrustes_before);
}

TEST(Anchors, CodesOnlyCollectionRecomputesRelativeVectorsAtCalibration) {
  TempDir dir;
  const Matrix queries = clustered(8, kDimA, 12);
  std::vector<std::vector<PointId>> before;
  {
    auto e = open_engine(dir.path());
    auto cfg = config_of(CodeKind::kI8, /*keep_originals=*/false);
    cfg.calibration_sample = 400;
    auto c = *e->create_collection("a", cfg);
    ingest(*c, clustered(300, kDimA, 13), 0);  // not calibrated yet: relative from the float rows
    AnchorRequest req;
    req.strategy = AnchorStrategy::kRandom;
    req.count = 24;
    ASSERT_TRUE(c->set_anchors(req).is_ok());
    ingest(*c, clustered(200, kDimA, 14), 300);  // crosses the sample: calibrates, originals dropped
    ASSERT_TRUE(c->info().calibrated);
    before = ids_of(query(*c, queries, "relative"));
    EXPECT_EQ(c->anchors()->relative_rows, 500u);
  }
  auto e = open_engine(dir.path());
  auto c = *e->collection("a");
  // Rebuilt on open from the decoded codes, as it was after calibration.
  EXPECT_EQ(ids_of(query(*c, queries, "relative")), before);
}

TEST(Anchors, SuppliedAnchorsAndIds) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = *e->create_collection("a", config_of(CodeKind::kF16));
  const Matrix data = clustered(200, kDimA, 15);
  ingest(*c, data, 0);
  AnchorRequest by_ids;
  by_ids.strategy = AnchorStrategy::kIds;
  by_ids.ids = {PointId::number(5), PointId::number(50), PointId::number(150)};
  auto info = c->set_anchors(by_ids);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->ids, by_ids.ids);
  AnchorRequest supplied;
  supplied.strategy = AnchorStrategy::kVectors;
  const Matrix items = clustered(4, kDimA, 16);
  supplied.ids = {PointId::number(9001), PointId::number(9002), PointId::number(9003), PointId::number(9004)};
  supplied.vectors = items.data;
  info = c->set_anchors(supplied);
  ASSERT_TRUE(info.is_ok()) << info.status().to_string();
  EXPECT_EQ(info->ids, supplied.ids);
  // Stored normalised (cosine collection).
  const auto v = *c->anchor_vectors();
  double n = 0;
  for (std::size_t k = 0; k < kDimA; ++k) n += double(v[k]) * v[k];
  EXPECT_NEAR(n, 1.0, 1e-5);
}

TEST(Anchors, ReplacingAnchorsRemovesModelsAndClearingRemovesEverything) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = clustered_collection(*e, 200, 17);
  AnchorRequest req;
  req.count = 16;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  const Matrix q = isometry(18);
  ASSERT_TRUE(c->register_model(model_b(*c, q)).is_ok());
  ASSERT_EQ(c->anchors()->models.size(), 1u);
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  EXPECT_TRUE(c->anchors()->models.empty());
  const Matrix qb = times(clustered(2, kDimA, 19), q);
  EXPECT_EQ(query(*c, qb, "model_b").status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(c->clear_anchors().is_ok());
  EXPECT_FALSE(c->anchors().has_value());
  EXPECT_EQ(c->clear_anchors().code(), StatusCode::kNotFound);
  EXPECT_EQ(query(*c, clustered(1, kDimA, 20), "relative").status().code(), StatusCode::kInvalidArgument);
  // A dropped collection's anchors do not come back with a new collection of the same name.
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  ASSERT_TRUE(e->drop_collection("a").is_ok());
  auto again = *e->create_collection("a", config_of(CodeKind::kF32));
  EXPECT_FALSE(again->anchors().has_value());
}

TEST(Anchors, BadInputIsRejectedAndChangesNothing) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = clustered_collection(*e, 100, 21);
  const Matrix q = isometry(22);
  // No anchors yet.
  ModelRequest early;
  early.name = "m";
  early.dim = kDimB;
  EXPECT_EQ(c->register_model(early).status().code(), StatusCode::kFailedPrecondition);
  auto bad = [&](AnchorRequest r) { return c->set_anchors(r).status().code(); };
  AnchorRequest r;
  r.count = 1;
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  r.count = 101;  // more than the points
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  r.count = 10;
  r.relative_kind = CodeKind::kB1;
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  r.relative_kind = CodeKind::kF16;
  r.ids = {PointId::number(1)};
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);  // ids with kmeans
  r.strategy = AnchorStrategy::kIds;
  r.ids = {PointId::number(1), PointId::number(1)};
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  r.ids = {PointId::number(1), PointId::number(5000)};
  EXPECT_EQ(bad(r), StatusCode::kNotFound);
  r.strategy = AnchorStrategy::kVectors;
  r.ids = {PointId::number(1), PointId::number(2)};
  r.vectors.assign(kDimA * 2 - 1, 0.5f);
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  r.vectors.assign(kDimA * 2, 0.5f);
  r.vectors[3] = NAN;
  EXPECT_EQ(bad(r), StatusCode::kInvalidArgument);
  EXPECT_FALSE(c->anchors().has_value());

  AnchorRequest ok;
  ok.count = 10;
  ASSERT_TRUE(c->set_anchors(ok).is_ok());
  ModelRequest m = model_b(*c, q);
  ModelRequest short_vectors = m;
  short_vectors.vectors.pop_back();
  EXPECT_EQ(c->register_model(short_vectors).status().code(), StatusCode::kInvalidArgument);
  ModelRequest nan_vectors = m;
  nan_vectors.vectors[7] = INFINITY;
  EXPECT_EQ(c->register_model(nan_vectors).status().code(), StatusCode::kInvalidArgument);
  ModelRequest clash = m;
  clash.name = "relative";
  EXPECT_EQ(c->register_model(clash).status().code(), StatusCode::kInvalidArgument);
  ModelRequest bad_name = m;
  bad_name.name = "a b";
  EXPECT_EQ(c->register_model(bad_name).status().code(), StatusCode::kInvalidArgument);
  ModelRequest bad_lambda = m;
  bad_lambda.lambda = -1;
  EXPECT_EQ(c->register_model(bad_lambda).status().code(), StatusCode::kInvalidArgument);
  ModelRequest stale = m;
  stale.anchors_version = c->anchors()->version + 1;  // made for another anchor set
  EXPECT_EQ(c->register_model(stale).status().code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(c->anchors()->models.empty());
  m.anchors_version = c->anchors()->version;
  ASSERT_TRUE(c->register_model(m).is_ok());

  const Matrix qa = clustered(2, kDimA, 23);
  EXPECT_EQ(query(*c, qa, "model_b").status().code(), StatusCode::kInvalidArgument);  // wrong dimension
  EXPECT_EQ(query(*c, qa, "nope").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qa, "relative", CrossMethod::kAffine).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qa, "", CrossMethod::kAffine).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qa, "relative", std::nullopt, true).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c->remove_model("nope").code(), StatusCode::kNotFound);
  ASSERT_TRUE(c->remove_model("model_b").is_ok());
  EXPECT_TRUE(c->anchors()->models.empty());
}

TEST(Anchors, WithoutStoredRelativeVectorsOnlyMapsAnswer) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = clustered_collection(*e, 300, 24);
  AnchorRequest req;
  req.count = 32;
  req.store_relative = false;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  EXPECT_EQ(c->anchors()->relative_rows, 0u);
  const Matrix q = isometry(25);
  ASSERT_TRUE(c->register_model(model_b(*c, q)).is_ok());
  const Matrix qa = clustered(4, kDimA, 26);
  EXPECT_EQ(ids_of(plain_query(*c, times(qa, q), "model_b")), ids_of(query(*c, qa, "")));
  EXPECT_EQ(query(*c, times(qa, q), "model_b", CrossMethod::kRelative).status().code(),
            StatusCode::kFailedPrecondition);
}

// ---- hubness correction ---------------------------------------------------------------------------

// Brute-force reference of the hubness-corrected search for an isometric model, whose Procrustes map
// sends the model's anchors onto the collection's anchor vectors: score(p) = cos(q, p) - w r(p), r(p)
// the mean of p's k highest cosines to the anchors.
struct HubReference {
  std::vector<PointId> ids;
  Matrix points;  // unit rows
  std::vector<double> r;
};
HubReference hub_reference(const Collection& c, std::size_t k) {
  HubReference h;
  ScrollRequest all;
  all.limit = 100000;
  all.with_vector = true;
  all.with_payload = false;
  auto page = c.scroll(all);
  EXPECT_TRUE(page.is_ok());
  auto anchors = c.anchor_vectors();
  EXPECT_TRUE(anchors.is_ok());
  const std::size_t m = anchors->size() / kDimA;
  h.points = Matrix(page->points.size(), kDimA);
  for (std::size_t i = 0; i < page->points.size(); ++i) {
    h.ids.push_back(page->points[i].id);
    std::copy_n(page->points[i].vector->data(), kDimA, h.points.row(i));
  }
  testing::normalize_rows(h.points);
  for (std::size_t i = 0; i < h.points.rows; ++i) {
    std::vector<double> cos(m);
    for (std::size_t a = 0; a < m; ++a) {
      double dot = 0, aa = 0;
      for (std::size_t j = 0; j < kDimA; ++j) {
        dot += double(h.points.row(i)[j]) * (*anchors)[a * kDimA + j];
        aa += double((*anchors)[a * kDimA + j]) * (*anchors)[a * kDimA + j];
      }
      cos[a] = dot / std::sqrt(aa);
    }
    std::partial_sort(cos.begin(), cos.begin() + static_cast<std::ptrdiff_t>(k), cos.end(), std::greater<>());
    double sum = 0;
    for (std::size_t a = 0; a < k; ++a) sum += cos[a];
    h.r.push_back(sum / static_cast<double>(k));
  }
  return h;
}

// The corrected results must be the reference's top 10, with its scores.
void expect_hub_results(const Result<std::vector<std::vector<ScoredPoint>>>& got, const HubReference& h,
                        const Matrix& queries_a, double weight, const std::string& what) {
  ASSERT_TRUE(got.is_ok()) << what << ": " << got.status().to_string();
  Matrix qa = queries_a;
  testing::normalize_rows(qa);
  for (std::size_t qi = 0; qi < qa.rows; ++qi) {
    std::vector<std::pair<double, std::size_t>> s;
    for (std::size_t i = 0; i < h.points.rows; ++i) {
      double dot = 0;
      for (std::size_t j = 0; j < kDimA; ++j) dot += double(qa.row(qi)[j]) * h.points.row(i)[j];
      s.emplace_back(dot - weight * h.r[i], i);
    }
    std::sort(s.begin(), s.end(), std::greater<>());
    const auto& res = (*got)[qi];
    ASSERT_EQ(res.size(), 10u) << what;
    for (std::size_t rank = 0; rank < 10; ++rank) {
      EXPECT_NEAR(res[rank].score, s[rank].first, 2e-4) << what << " query " << qi << " rank " << rank;
      const bool separated = std::fabs(s[rank].first - s[rank + 1].first) > 1e-4 &&
                             (rank == 0 || std::fabs(s[rank - 1].first - s[rank].first) > 1e-4);
      if (separated) {
        EXPECT_EQ(res[rank].id, h.ids[s[rank].second]) << what << " query " << qi << " rank " << rank;
      }
    }
  }
}

TEST(Anchors, HubnessCorrectionMatchesItsDefinitionThroughWritesCompactionAndRestart) {
  TempDir dir;
  const Matrix q = isometry(40);
  const Matrix queries_a = clustered(12, kDimA, 41);
  const Matrix queries_b = times(queries_a, q);
  std::vector<std::vector<ScoredPoint>> before_restart;
  {
    auto e = open_engine(dir.path());
    auto c = clustered_collection(*e, 700, 42);
    AnchorRequest req;
    req.strategy = AnchorStrategy::kRandom;
    req.count = 60;
    ASSERT_TRUE(c->set_anchors(req).is_ok());
    ModelRequest m = model_b(*c, q);
    m.hubness_neighbours = 7;
    auto info = c->register_model(m);
    ASSERT_TRUE(info.is_ok()) << info.status().to_string();
    EXPECT_EQ(info->hubness_weight, 0.5f);
    EXPECT_EQ(info->hubness_neighbours, 7u);
    HubReference h = hub_reference(*c, 7);
    // Every mapped method ranks with the correction by default; a query may change its weight.
    for (auto method : {CrossMethod::kProcrustes, CrossMethod::kAffine, CrossMethod::kLocal}) {
      expect_hub_results(query(*c, queries_b, "model_b", method), h, queries_a, 0.5,
                         std::string(cross_method_name(method)));
    }
    expect_hub_results(query(*c, queries_b, "model_b", std::nullopt, false, 10, 1.5f), h, queries_a, 1.5, "w 1.5");
    expect_hub_results(plain_query(*c, queries_b, "model_b"), h, queries_a, 0.0, "w 0");
    // The correction changes the answers here (else this test would show nothing).
    EXPECT_NE(ids_of(query(*c, queries_b, "model_b")), ids_of(plain_query(*c, queries_b, "model_b")));

    // New points get their terms; deleted ones leave with compaction.
    ingest(*c, clustered(300, kDimA, 43), 5000);
    std::vector<PointId> gone;
    for (std::size_t i = 0; i < 700; i += 2) gone.push_back(PointId::number(i));
    ASSERT_TRUE(c->erase(gone).is_ok());
    h = hub_reference(*c, 7);
    expect_hub_results(query(*c, queries_b, "model_b"), h, queries_a, 0.5, "after writes");
    auto reclaimed = c->compact();
    ASSERT_TRUE(reclaimed.is_ok());
    EXPECT_EQ(*reclaimed, 350u);
    expect_hub_results(query(*c, queries_b, "model_b"), h, queries_a, 0.5, "after compaction");
    before_restart = *query(*c, queries_b, "model_b");
    // A filter restricts the corrected search as any other.
    auto odd = Filter::parse(nlohmann::json::parse(
        R"({"must":[{"has_id":[5001,5003,5005,5007,5009,5011,5013,5015,5017,5019,5021,5023]}]})"));
    ASSERT_TRUE(odd.is_ok()) << odd.status().to_string();
    SearchRequest fr;
    fr.queries = queries_b.data;
    fr.nq = queries_b.rows;
    fr.filter = &*odd;
    fr.space.name = "model_b";
    auto filtered = c->search(fr);
    ASSERT_TRUE(filtered.is_ok()) << filtered.status().to_string();
    for (const auto& res : *filtered) {
      ASSERT_EQ(res.size(), 10u);
      for (const auto& p : res) EXPECT_TRUE(p.id.lo >= 5001 && p.id.lo <= 5023 && p.id.lo % 2 == 1);
    }
  }
  auto e = open_engine(dir.path());
  auto c = *e->collection("a");
  ASSERT_EQ(c->anchors()->models.size(), 1u);
  EXPECT_EQ(c->anchors()->models[0].hubness_neighbours, 7u);
  EXPECT_EQ(c->anchors()->models[0].hubness_weight, 0.5f);
  const auto after = query(*c, queries_b, "model_b");
  ASSERT_TRUE(after.is_ok());
  for (std::size_t i = 0; i < after->size(); ++i) {
    ASSERT_EQ((*after)[i].size(), before_restart[i].size());
    for (std::size_t j = 0; j < before_restart[i].size(); ++j) {
      EXPECT_EQ((*after)[i][j].id, before_restart[i][j].id);
      EXPECT_NEAR((*after)[i][j].score, before_restart[i][j].score, 1e-5);
    }
  }
}

TEST(Anchors, HubnessCorrectionOverAnIndexAndOverCodes) {
  TempDir dir;
  auto e = open_engine(dir.path());
  const Matrix q = isometry(50);
  const Matrix data = clustered(1500, kDimA, 51);
  const Matrix queries_a = clustered(20, kDimA, 52);
  const Matrix queries_b = times(queries_a, q);
  // HNSW over int8 codes with rescoring: the index's candidates, re-ranked, agree with the exact scan.
  CollectionConfig cfg = config_of(CodeKind::kI8);
  cfg.index = "HNSW16";
  auto c = *e->create_collection("a", cfg);
  ingest(*c, data, 0);
  ASSERT_TRUE(c->info().calibrated);
  AnchorRequest req;
  req.count = 80;
  ASSERT_TRUE(c->set_anchors(req).is_ok());
  ASSERT_TRUE(c->register_model(model_b(*c, q)).is_ok());
  SearchRequest r;
  r.queries = queries_b.data;
  r.nq = queries_b.rows;
  r.space.name = "model_b";
  r.hnsw_ef = 256;
  const auto indexed = ids_of(c->search(r));
  r.exact = true;
  const auto exact = ids_of(c->search(r));
  std::size_t same = 0;
  for (std::size_t i = 0; i < exact.size(); ++i) {
    const std::set<PointId> want(exact[i].begin(), exact[i].end());
    for (const PointId& id : indexed[i]) same += want.count(id);
  }
  EXPECT_GE(same, 190u) << "of 200";
  expect_hub_results(c->search(r), hub_reference(*c, kDefaultHubnessNeighbours), queries_a, 0.5, "i8 exact");
  // Without rescoring: the index's int8 scores plus the terms, against the exact int8 scan with them.
  r.rescore = false;
  const auto exact_codes = ids_of(c->search(r));
  r.exact = false;
  const auto indexed_codes = ids_of(c->search(r));
  same = 0;
  for (std::size_t i = 0; i < exact_codes.size(); ++i) {
    const std::set<PointId> want(exact_codes[i].begin(), exact_codes[i].end());
    for (const PointId& id : indexed_codes[i]) same += want.count(id);
  }
  EXPECT_GE(same, 190u) << "of 200, without rescoring";
  EXPECT_NE(exact_codes, ids_of(plain_query(*c, queries_b, "model_b")));

  // Codes only (no originals): the terms come from the decoded codes and are recomputed when the
  // collection calibrates; e4m3 is close enough to the float32 reference for the same top 10.
  auto d = *e->create_collection("b", config_of(CodeKind::kE4M3, false));
  ingest(*d, clustered(150, kDimA, 53), 0);  // below calibration_sample: float32 pending rows
  AnchorRequest dreq;
  dreq.count = 50;
  ASSERT_TRUE(d->set_anchors(dreq).is_ok());
  ASSERT_TRUE(d->register_model(model_b(*d, q)).is_ok());
  expect_hub_results(query(*d, queries_b, "model_b"), hub_reference(*d, 10), queries_a, 0.5, "uncalibrated");
  ingest(*d, clustered(150, kDimA, 54), 1000);  // crosses calibration_sample: now e4m3 codes only
  ASSERT_TRUE(d->info().calibrated);
  auto got = query(*d, queries_b, "model_b");
  ASSERT_TRUE(got.is_ok());
  const auto plain = ids_of(plain_query(*d, queries_b, "model_b"));
  EXPECT_NE(ids_of(got), plain);
}

TEST(Anchors, HubnessParametersAreValidated) {
  TempDir dir;
  auto e = open_engine(dir.path());
  auto c = anchored_collection(*e, 300, 60, 20);  // fewer anchors than kHubnessDefaultMinAnchors
  ASSERT_TRUE(c);
  const Matrix q = isometry(61);
  AnchorRequest req;
  req.count = 20;
  for (float w : {-0.1f, 2.5f, NAN}) {
    ModelRequest m = model_b(*c, q);
    m.hubness_weight = w;
    EXPECT_EQ(c->register_model(m).status().code(), StatusCode::kInvalidArgument) << w;
  }
  for (std::uint32_t k : {0u, 21u}) {  // at most the 20 anchors
    ModelRequest m = model_b(*c, q);
    m.hubness_weight = 0.5f;
    m.hubness_neighbours = k;
    EXPECT_EQ(c->register_model(m).status().code(), StatusCode::kInvalidArgument) << k;
  }
  ModelRequest no_weight = model_b(*c, q);  // neighbours without a correction to use them
  no_weight.hubness_neighbours = 5;
  no_weight.hubness_weight = 0.0f;
  EXPECT_EQ(c->register_model(no_weight).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(c->anchors()->models.empty());
  // 20 anchors, fewer than kHubnessDefaultMinAnchors: off unless asked for.
  auto info = c->register_model(model_b(*c, q, "off"));
  ASSERT_TRUE(info.is_ok());
  EXPECT_EQ(info->hubness_weight, 0.0f);
  EXPECT_EQ(info->hubness_neighbours, 0u);
  ModelRequest asked_for = model_b(*c, q);
  asked_for.hubness_weight = 0.5f;
  auto on = c->register_model(asked_for);
  ASSERT_TRUE(on.is_ok());
  EXPECT_EQ(on->hubness_weight, 0.5f);
  EXPECT_EQ(on->hubness_neighbours, 10u);
  const Matrix qa = clustered(2, kDimA, 62);
  const Matrix qb = times(qa, q);
  // Per query: in [0, 2]; only for a model registered with one; never for relative or native queries.
  EXPECT_EQ(query(*c, qb, "model_b", std::nullopt, false, 10, 2.5f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qb, "model_b", std::nullopt, false, 10, -1.0f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qb, "off", std::nullopt, false, 10, 0.5f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(query(*c, qb, "off", std::nullopt, false, 10, 0.0f).is_ok());
  EXPECT_EQ(ids_of(query(*c, qb, "off")), ids_of(plain_query(*c, qb, "model_b")));
  EXPECT_EQ(query(*c, qb, "model_b", CrossMethod::kRelative, false, 10, 0.5f).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qa, "relative", std::nullopt, false, 10, 0.5f).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(query(*c, qa, "", std::nullopt, false, 10, 0.5f).status().code(), StatusCode::kInvalidArgument);
  // Euclidean collections: off by default, and refused when asked for.
  CollectionConfig l2 = config_of(CodeKind::kF32);
  l2.metric = Metric::kL2;
  auto d = *e->create_collection("l2", l2);
  ingest(*d, clustered(100, kDimA, 63), 0);
  ASSERT_TRUE(d->set_anchors(req).is_ok());
  auto l2_info = d->register_model(model_b(*d, q));
  ASSERT_TRUE(l2_info.is_ok()) << l2_info.status().to_string();
  EXPECT_EQ(l2_info->hubness_weight, 0.0f);
  ModelRequest asked = model_b(*d, q, "asked");
  asked.hubness_weight = 0.5f;
  EXPECT_EQ(d->register_model(asked).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vecstash::engine
