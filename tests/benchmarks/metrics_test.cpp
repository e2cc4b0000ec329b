#include "benchmarks/metrics.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "benchmarks/compression_sweep.h"
#include "benchmarks/report.h"
#include "testing/random_data.h"

namespace vecstash::bench {
namespace {

MatrixView<const std::int64_t> ids(const std::vector<std::int64_t>& v, std::size_t rows, std::size_t cols) {
  return {v.data(), rows, cols};
}

// ---- recall@k ----

TEST(Recall, HandComputedCases) {
  const std::vector<std::int64_t> found = {1, 2, 3,  //
                                           4, 5, 6};
  const std::vector<std::int64_t> truth = {3, 2, 9,  //
                                           7, 8, 4};
  // k = 3: query 0 finds {2, 3} of {3, 2, 9}; query 1 finds {4} of {7, 8, 4}: (2/3 + 1/3) / 2.
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 2, 3), ids(truth, 2, 3), 3), 0.5);
  // k = 2: {1, 2} vs {3, 2} -> 1/2; {4, 5} vs {7, 8} -> 0.
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 2, 3), ids(truth, 2, 3), 2), 0.25);
  // k = 1: 1 vs 3, 4 vs 7.
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 2, 3), ids(truth, 2, 3), 1), 0.0);
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(truth, 2, 3), ids(truth, 2, 3), 3), 1.0);
}

TEST(Recall, OrderWithinTheTopKDoesNotMatter) {
  const std::vector<std::int64_t> found = {9, 8, 7, 1};
  const std::vector<std::int64_t> truth = {7, 8, 9, 2};
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 1, 4), ids(truth, 1, 4), 3), 1.0);
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 1, 4), ids(truth, 1, 4), 4), 0.75);
}

TEST(Recall, WiderResultsAreCutAtK) {
  // Found has 4 columns, truth 2: recall@2 uses found[0..2) only.
  const std::vector<std::int64_t> found = {5, 6, 1, 2};
  const std::vector<std::int64_t> truth = {1, 2};
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 1, 4), ids(truth, 1, 2), 2), 0.0);
}

TEST(Recall, MissingTruthEntriesAreNotCounted) {
  // A base with 2 rows searched at k = 3: the truth ends in -1, the denominator is 2.
  const std::vector<std::int64_t> found = {1, 0, -1};
  const std::vector<std::int64_t> truth = {0, 1, -1};
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(found, 1, 3), ids(truth, 1, 3), 3), 1.0);
  // A duplicated id in the result counts once.
  const std::vector<std::int64_t> dup = {0, 0, 5};
  EXPECT_DOUBLE_EQ(*recall_at_k(ids(dup, 1, 3), ids(truth, 1, 3), 3), 0.5);
}

TEST(Recall, BadShapesAreInvalidArgument) {
  const std::vector<std::int64_t> a = {1, 2, 3, 4};
  EXPECT_EQ(recall_at_k(ids(a, 2, 2), ids(a, 1, 4), 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(recall_at_k(ids(a, 2, 2), ids(a, 2, 2), 3).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(recall_at_k(ids(a, 2, 2), ids(a, 2, 2), 0).status().code(), StatusCode::kInvalidArgument);
}

// ---- nDCG@k ----

TEST(Ndcg, HandComputedCase) {
  // Judgments: row 5 relevance 2, row 7 relevance 1. Ranking: 5, 1, 7.
  // DCG = 2 / log2(2) + 0 + 1 / log2(4) = 2.5; ideal = 2 / log2(2) + 1 / log2(3).
  const std::vector<Judgment> j = {{5, 2}, {7, 1}};
  const std::vector<std::int64_t> ranking = {5, 1, 7, 8, 9, 10, 11, 12, 13, 14};
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranking, j, 10), 2.5 / (2.0 + 1.0 / std::log2(3.0)));
  // Cut at 2: DCG = 2, ideal = 2 + 1 / log2(3).
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranking, j, 2), 2.0 / (2.0 + 1.0 / std::log2(3.0)));
  // Cut at 1: both 2.
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranking, j, 1), 1.0);
}

TEST(Ndcg, LinearGainNotExponential) {
  // Relevance 3 at rank 2 only: DCG = 3 / log2(3); ideal = 3. With 2^rel - 1 the ratio would be the same,
  // so mix grades: rel 3 at rank 2 and rel 1 at rank 1 -> DCG = 1 + 3 / log2(3), ideal = 3 + 1 / log2(3).
  const std::vector<Judgment> j = {{1, 1}, {2, 3}};
  const std::vector<std::int64_t> ranking = {1, 2};
  EXPECT_DOUBLE_EQ(ndcg_at_k(ranking, j, 10), (1.0 + 3.0 / std::log2(3.0)) / (3.0 + 1.0 / std::log2(3.0)));
}

TEST(Ndcg, PerfectZeroAndEdgeCases) {
  const std::vector<Judgment> j = {{4, 1}, {2, 1}};
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{2, 4, 0}, j, 10), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{4, 2}, j, 10), 1.0);
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{0, 1, 3}, j, 10), 0.0);
  // A relevant row just past the cut-off counts for nothing.
  std::vector<std::int64_t> late(11, 0);
  late[10] = 4;
  EXPECT_DOUBLE_EQ(ndcg_at_k(late, {{4, 1}}, 10), 0.0);
  // Only zero-relevance judgments: no ideal gain, nDCG 0 (as pytrec_eval).
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{4}, {{4, 0}}, 10), 0.0);
  // -1 entries ("no result") are skipped.
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{-1, 4}, {{4, 1}}, 10), 1.0 / std::log2(3.0));
}

TEST(Ndcg, JudgedDocumentsMissingFromTheBaseCountInTheIdeal) {
  // Row 3 (relevance 1) found at rank 1; another relevant document is not in the base (row -1).
  const std::vector<Judgment> j = {{3, 1}, {-1, 1}};
  EXPECT_DOUBLE_EQ(ndcg_at_k(std::vector<std::int64_t>{3, -1}, j, 10), 1.0 / (1.0 + 1.0 / std::log2(3.0)));
}

TEST(Ndcg, MeanSkipsQueriesWithoutJudgments) {
  const std::vector<std::int64_t> found = {1, 2,  //
                                           3, 4,  //
                                           5, 6};
  const Qrels qrels = {{{1, 1}}, {}, {{6, 1}}};
  auto r = mean_ndcg_at_k(ids(found, 3, 2), qrels, 2);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->evaluated, 2u);
  EXPECT_DOUBLE_EQ(r->mean, (1.0 + 1.0 / std::log2(3.0)) / 2.0);
  EXPECT_EQ(mean_ndcg_at_k(ids(found, 3, 2), Qrels(2), 2).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(mean_ndcg_at_k(ids(found, 3, 2), qrels, 3).status().code(), StatusCode::kInvalidArgument);
}

TEST(WidenIds, KeepsValues) {
  Matrix<std::int32_t> m(1, 3);
  m.data = {0, 7, 2147483647};
  EXPECT_EQ(widen_ids(m), (std::vector<std::int64_t>{0, 7, 2147483647}));
}

// ---- flag parsing ----

TEST(CodeVariants, StandardSetAndParsing) {
  const auto all = standard_code_variants();
  EXPECT_EQ(all.size(), 13u);
  auto e4 = parse_code_variants("e4m3");
  ASSERT_TRUE(e4.is_ok());
  ASSERT_EQ(e4->size(), 3u);
  EXPECT_EQ((*e4)[2].name, "e4m3:dim");
  EXPECT_EQ((*e4)[2].codec.scale, ScaleMode::kPerDim);
  auto mixed = parse_code_variants("i8:clip0.1, f32,b1:hamming,f32");
  ASSERT_TRUE(mixed.is_ok());
  ASSERT_EQ(mixed->size(), 3u);  // standard order, no duplicates
  EXPECT_EQ((*mixed)[0].name, "f32");
  EXPECT_EQ((*mixed)[1].name, "i8:clip0.1");
  EXPECT_DOUBLE_EQ((*mixed)[1].codec.int8_clip_percent, 0.1);
  EXPECT_TRUE((*mixed)[2].hamming);
  EXPECT_EQ(parse_code_variants("int8")->size(), 2u);
  EXPECT_EQ(parse_code_variants("all")->size(), 13u);
  auto bad = parse_code_variants("e4m3,fp4");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("fp4"), std::string::npos);
  EXPECT_FALSE(parse_code_variants("").is_ok());
}

TEST(PcaLevels, Parsing) {
  auto p = parse_pca_levels("25,100, 50,50,none");
  ASSERT_TRUE(p.is_ok());
  EXPECT_EQ(*p, (std::vector<int>{kNoPca, 100, 50, 25}));
  EXPECT_EQ(pca_label(kNoPca), "none");
  EXPECT_EQ(pca_label(75), "75%");
  for (const char* bad : {"0", "101", "50,x", "7.5", ""}) {
    EXPECT_FALSE(parse_pca_levels(bad).is_ok()) << bad;
  }
}

// ---- the sweep, end to end on generated data (needs the CPU kernels) ----

Dataset small_dataset(Metric metric) {
  Dataset ds;
  ds.name = metric == Metric::kL2 ? "tiny-l2" : "tiny-cos";
  ds.metric = metric;
  const auto base = vecstash::testing::anisotropic(400, 16, 61);
  const auto queries = vecstash::testing::anisotropic(25, 16, 62);
  ds.base = FloatMatrix(base.rows, base.cols);
  ds.base.data = base.data;
  ds.queries = FloatMatrix(queries.rows, queries.cols);
  ds.queries.data = queries.data;
  return ds;
}

TEST(Sweep, L2RowsAndInvariants) {
  SweepOptions opt;
  opt.variants = *parse_code_variants("f32,e4m3:dim,i8:minmax,b1:asym,b1:hamming");
  opt.pca_percents = {kNoPca, 100, 50};
  opt.threads = 1;
  opt.min_timing_s = 0.0;
  auto r = run_compression_sweep(small_dataset(Metric::kL2), opt);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->search_metric, Metric::kL2);
  ASSERT_EQ(r->rows.size(), 15u);
  const SweepRow& f32 = r->rows[0];
  EXPECT_EQ(f32.variant, "f32");
  EXPECT_EQ(f32.pca_percent, kNoPca);
  EXPECT_EQ(f32.bytes_per_vector, 16u * 4 + 4);  // + the stored squared norm
  EXPECT_DOUBLE_EQ(f32.compression_ratio, 64.0 / 68.0);
  EXPECT_DOUBLE_EQ(f32.recall_k, 1.0);
  EXPECT_DOUBLE_EQ(f32.recall_k_large, 1.0);
  ASSERT_TRUE(f32.rescore_recall_k.has_value());
  EXPECT_DOUBLE_EQ(*f32.rescore_recall_k, 1.0);
  EXPECT_FALSE(f32.ndcg.has_value());
  EXPECT_EQ(r->rows[1].bytes_per_vector, 16u + 4);  // e4m3, per-dim scale: no per-row bytes
  EXPECT_EQ(r->rows[2].bytes_per_vector, 16u + 4);  // i8
  EXPECT_EQ(r->rows[3].bytes_per_vector, 8u);       // b1: one 64-bit word; its L2 needs no stored norm
  EXPECT_EQ(r->rows[4].bytes_per_vector, 8u);       // b1 hamming: no norm
  // PCA at 100%: every dimension kept (centred and rotated), so float32 search is still exact.
  const SweepRow& full = r->rows[5];
  EXPECT_EQ(full.pca_percent, 100);
  EXPECT_EQ(full.dim, 16u);
  EXPECT_NEAR(full.explained_variance, 1.0, 1e-9);
  EXPECT_GE(full.recall_k, 0.99);
  const SweepRow& half = r->rows[10];
  EXPECT_EQ(half.pca_percent, 50);
  EXPECT_EQ(half.dim, 8u);
  EXPECT_GT(half.explained_variance, 0.5);
  EXPECT_LT(half.explained_variance, 1.0);
  for (const SweepRow& row : r->rows) {
    EXPECT_GE(row.recall_k, 0.0);
    EXPECT_LE(row.recall_k, 1.0);
    EXPECT_GT(row.encode_vectors_per_s, 0.0);
    EXPECT_GT(row.scan_queries_per_s, 0.0);
    ASSERT_TRUE(row.rescore_recall_k.has_value());
    ASSERT_TRUE(row.rescore_recall_k_large.has_value());
    // Candidates from exact float32 codes contain the answer, so rescoring them is exact.
    if (row.variant == "f32" && row.pca_percent == kNoPca) {
      EXPECT_DOUBLE_EQ(*row.rescore_recall_k, 1.0);
    }
  }

  const std::string table = format_table(*r);
  EXPECT_NE(table.find("recall@10"), std::string::npos);
  EXPECT_NE(table.find("+ originals on disk"), std::string::npos);
  const std::vector<SweepReport> reports = {*r};
  const std::string csv = to_csv(reports);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 16);  // header + 15 rows
  EXPECT_EQ(csv.rfind("dataset,metric,", 0), 0u);
  const std::string svg = render_svg(*r);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("b1:hamming"), std::string::npos);
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 10, true);
}

TEST(Sweep, CosineIsNormalisedAndScoredAsInnerProduct) {
  SweepOptions opt;
  opt.variants = *parse_code_variants("f32,e4m3:none");
  opt.pca_percents = {kNoPca};
  opt.rescore_factor = 0;
  opt.threads = 1;
  opt.min_timing_s = 0.0;
  Dataset ds = small_dataset(Metric::kCos);
  ds.qrels = Qrels(ds.queries.rows);
  ds.qrels[0] = {{3, 1}};
  auto r = run_compression_sweep(ds, opt);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->search_metric, Metric::kIp);
  ASSERT_EQ(r->rows.size(), 2u);
  EXPECT_EQ(r->rows[0].bytes_per_vector, 64u);  // no stored norm for inner product
  EXPECT_EQ(r->rows[1].bytes_per_vector, 16u);
  EXPECT_DOUBLE_EQ(r->rows[0].recall_k, 1.0);
  EXPECT_FALSE(r->rows[0].rescore_recall_k.has_value());
  ASSERT_TRUE(r->exact_ndcg.has_value());
  EXPECT_EQ(r->ndcg_queries, 1u);
  ASSERT_TRUE(r->rows[0].ndcg.has_value());
  EXPECT_DOUBLE_EQ(*r->rows[0].ndcg, *r->exact_ndcg);
}

TEST(Sweep, ShippedGroundTruthIsCheckedAndBadInputRejected) {
  SweepOptions opt;
  opt.variants = *parse_code_variants("f32");
  opt.pca_percents = {kNoPca};
  opt.threads = 1;
  opt.min_timing_s = 0.0;
  Dataset ds = small_dataset(Metric::kL2);
  ds.groundtruth = Matrix<std::int32_t>(ds.queries.rows, 1);  // deliberately wrong: all row 0
  auto r = run_compression_sweep(ds, opt);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  bool sanity = false;
  for (const auto& n : r->notes) sanity |= n.find("sanity: computed vs shipped ground truth") != std::string::npos;
  EXPECT_TRUE(sanity);

  Dataset empty = small_dataset(Metric::kL2);
  empty.queries = FloatMatrix();
  EXPECT_EQ(run_compression_sweep(empty, opt).status().code(), StatusCode::kInvalidArgument);
}

TEST(Report, PerDatasetPath) {
  EXPECT_EQ(per_dataset_path("docs/bench/plot.svg", "sift10k"), std::filesystem::path("docs/bench/plot-sift10k.svg"));
  EXPECT_EQ(per_dataset_path("out/{dataset}.svg", "glove100k"), std::filesystem::path("out/glove100k.svg"));
}

}  // namespace
}  // namespace vecstash::bench
