// Benchmark data sets: the named sets in ../shared/data (see its README.md), a BEIR-style folder of
// embeddings with relevance judgments, and generic base/query files.
//
// A data set is base rows, query rows, the metric it is meant to be searched with, and optionally
// shipped ground truth (row ids of the exact top-k) and graded relevance judgments (qrels).
// Nothing here is needed to build or to run the unit tests: a missing file is a NotFound Status
// naming the file, which the command line reports (or, in an --dataset all run, skips).
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "benchmarks/vecs_io.h"
#include "vecstash/common/status.h"
#include "vecstash/common/types.h"

namespace vecstash::bench {

/// One relevance judgment of a query: a base row (or -1 when the judged document is not in the
/// base) and its graded relevance (0 = judged not relevant).
struct Judgment {
  std::int64_t row = -1;
  int relevance = 0;
};

/// Per query row, its judgments (empty = the query has none and is skipped by nDCG).
using Qrels = std::vector<std::vector<Judgment>>;

struct Dataset {
  std::string name;
  /// kL2, kCos or kIp. The sweep normalises kCos rows and scores them as kIp.
  Metric metric = Metric::kL2;
  FloatMatrix base;
  FloatMatrix queries;
  /// Shipped exact neighbours (queries.rows x k row ids into base), or empty.
  Matrix<std::int32_t> groundtruth;
  /// Relevance judgments, one entry per query row, or empty when the set has none.
  Qrels qrels;
  /// How the queries, ground truth or judgments were obtained, for the report.
  std::vector<std::string> notes;
};

struct DatasetOptions {
  /// Folder holding the named sets (sift10k/, glove100k/, ...).
  std::filesystem::path data_root = "../shared/data";
  /// Use only the first N queries (0 = all). For sets without queries: the number of self-queries
  /// (0 = kDefaultSelfQueries).
  std::size_t max_queries = 0;
  /// Seed for choosing self-queries.
  std::uint64_t seed = 42;
  /// Where benchmarks/embed/embed_beir.py caches locally made embeddings (scifact-minilm, ...).
  /// Empty: $VECSTASH_EMBEDDINGS, else ~/.cache/vecstash/embeddings.
  std::filesystem::path embeddings_root;
};

inline constexpr std::size_t kDefaultSelfQueries = 100;

/// Names accepted by load_named_dataset, in a stable order.
std::vector<std::string> named_datasets();
/// The embeddings cache: $VECSTASH_EMBEDDINGS, else ~/.cache/vecstash/embeddings.
std::filesystem::path default_embeddings_root();
/// The four sets of the standard report (`--dataset all`).
std::vector<std::string> standard_datasets();
/// One line describing a named set (metric, sizes, ground truth), for --help.
std::string describe_dataset(std::string_view name);

/// A generated, embedding-like set (cosine) for machines without ../shared/data. Deterministic for a seed.
Dataset make_synthetic_dataset(std::size_t rows, std::size_t dim, std::size_t queries, std::uint64_t seed);

/// Load a named set from options.data_root ("synthetic" is generated and needs no files). Unknown name: InvalidArgument listing the known names;
/// a missing file: NotFound naming it.
Result<Dataset> load_named_dataset(std::string_view name, const DatasetOptions& options);

/// Generic files: base and queries (.fvecs/.bvecs, optionally .gz), optional ground truth (.ivecs),
/// metric kL2, kCos or kIp. `max_queries` as in DatasetOptions (0 = all).
Result<Dataset> load_files_dataset(const std::filesystem::path& base, const std::filesystem::path& queries,
                                   const std::filesystem::path& groundtruth, Metric metric,
                                   std::size_t max_queries = 0);

/// A BEIR-style folder of embeddings in the vecstash layout: corpus.fvecs + corpus_ids.txt,
/// queries_<split>.fvecs + queries_<split>_ids.txt (or queries.fvecs + queries_ids.txt, the split's
/// queries, as benchmarks/embed/embed_beir.py writes them), optional groundtruth_<split>_cosine_top100.ivecs,
/// and the qrels TSV `qrels_tsv`. Metric kCos.
Result<Dataset> load_beir_embeddings(const std::filesystem::path& folder, const std::filesystem::path& qrels_tsv,
                                     std::string_view split = "test", std::size_t max_queries = 0);

/// One id per line (surrounding whitespace trimmed, blank lines skipped).
Result<std::vector<std::string>> read_id_lines(const std::filesystem::path& path);

/// query id -> (document id -> relevance), from a TSV with the header `query-id corpus-id score`.
using QrelsById = std::unordered_map<std::string, std::unordered_map<std::string, int>>;
Result<QrelsById> read_qrels_tsv(const std::filesystem::path& path);

/// Map judgments by id to rows. Documents missing from `base_ids` keep row -1 (they still count in
/// the ideal DCG, as in BEIR's evaluation).
Qrels map_qrels(const QrelsById& qrels, const std::vector<std::string>& query_ids,
                const std::vector<std::string>& base_ids);

/// `count` distinct indices in [0, n), chosen with a portable generator (same on every platform),
/// returned in increasing order. count >= n gives all indices.
std::vector<std::size_t> sample_indices(std::size_t n, std::size_t count, std::uint64_t seed);

}  // namespace vecstash::bench
