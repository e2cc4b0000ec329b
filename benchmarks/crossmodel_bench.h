// `vecstash bench crossmodel`: queries embedded by model B against a collection embedded by model A,
// through the engine's anchors (engine/include/vecstash/engine/anchors.h), on a BEIR set embedded by
// both models (benchmarks/embed/embed_beir.py).
//
// For each direction, a collection holds A's corpus; an anchor set is chosen (random, k-means or
// farthest-point sampling over the collection, or "mixed": the training-split queries (up to the
// count) and then random corpus documents, supplied as vectors); B is registered with its embeddings of the same
// anchor items; B's test queries are answered `using` B by each method (relative, procrustes,
// affine, local; the mapped ones also with the hubness correction, "<method>+hubness"). nDCG@10 and recall@10 (BEIR: share of the judged-relevant documents in the top 10) are
// reported beside A->A and B->B, the native searches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/anchors.h"

namespace vecstash::bench {

struct CrossModelOptions {
  std::filesystem::path corpus_model;  ///< embeddings folder of model A (corpus.fvecs, queries.fvecs, ids)
  std::filesystem::path query_model;   ///< embeddings folder of model B (same documents and queries)
  std::filesystem::path qrels_test;    ///< qrels of the test queries
  std::filesystem::path qrels_train;   ///< qrels of the training queries ("mixed" anchors); may be empty
  std::string name_a = "A";
  std::string name_b = "B";
  std::vector<std::size_t> anchors = {64, 128, 256, 512, 1024, 2048};
  std::vector<std::string> strategies = {"random", "kmeans", "farthest", "mixed"};
  /// A method name, or a mapped method's name + "+hubness": with the hubness correction at
  /// `hubness_weight` (the plain names are measured with weight 0).
  std::vector<std::string> methods = {"relative",          "procrustes",    "affine",        "local",
                                      "procrustes+hubness", "affine+hubness", "local+hubness"};
  /// Corpus code kinds measured at `kinds_anchors` anchors with `kinds_strategy` ("f32" is the
  /// full sweep; others are codes-only collections).
  std::vector<std::string> kinds = {"e4m3", "i8"};
  std::size_t kinds_anchors = 1024;
  std::string kinds_strategy = "mixed";
  std::string relative_kind = "f16";
  bool center = true;
  double lambda = 1.0;
  /// The registered model's hubness correction (engine/anchors.h defaults).
  float hubness_weight = 0.5f;
  std::uint32_t hubness_neighbours = 10;
  std::uint64_t seed = 42;
  int threads = 0;
  std::filesystem::path work_dir;
};

struct CrossModelRow {
  std::string direction;  ///< "B->A" (queries by B, corpus by A), "A->A", "B->B"
  std::string corpus_kind;
  std::string strategy;   ///< "" for the native rows
  std::size_t anchors = 0;
  std::string method;     ///< "native" for A->A and B->B
  double ndcg10 = 0;
  double recall10 = 0;
  double seconds = 0;     ///< anchors + model registration (+ relative vectors) for the first method
  double qps = 0;         ///< the test queries answered per second (one batch, the engine's threads)
  std::string params;     ///< method "local": the correction's parameters and leave-one-out fit
};

/// A bench method name: a cross-model method (engine::parse_cross_method), or a mapped one followed by
/// "+hubness" (with the hubness correction). InvalidArgument otherwise.
struct BenchMethod {
  engine::CrossMethod method = engine::CrossMethod::kLocal;
  bool hubness = false;
};
Result<BenchMethod> parse_bench_method(std::string_view name);

Result<std::vector<CrossModelRow>> run_crossmodel_bench(const CrossModelOptions& options);
std::string format_crossmodel_report(const std::vector<CrossModelRow>& rows, const CrossModelOptions& options);
std::string crossmodel_rows_to_csv(const std::vector<CrossModelRow>& rows);

}  // namespace vecstash::bench
