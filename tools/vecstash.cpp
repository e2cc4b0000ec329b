// The `vecstash` command line. Subcommands:
//   serve               the REST server (docs/API.md)
//   ingest, query, inspect  clients of a running server (upload a vector file, search, show collections)
//   anchors, model      anchor sets and registered models of a collection (cross-model queries)
//   bench crossmodel    queries of one embedding model against a corpus of another (anchors)
//   bench compression   storage versus accuracy of every code kind x PCA level (docs/BENCHMARKS.md)
//   bench search        collections end to end against FAISS (docs/BENCHMARKS.md)
//
// Results go to stdout (tables) and to the files named by --csv / --svg; progress and errors go to
// stderr through spdlog. Exit status: 0 success, 1 a run failed or no data set was available,
// 2 bad flags (CLI11 parse errors included).
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <omp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "benchmarks/compression_sweep.h"
#include "benchmarks/crossmodel_bench.h"
#include "benchmarks/datasets.h"
#include "benchmarks/report.h"
#include "benchmarks/scale_bench.h"
#include "benchmarks/search_bench.h"
#include "client_commands.h"
#include "serve_command.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/anchors.h"
#include "vecstash/kernels/gpu.h"

namespace {

namespace bench = vecstash::bench;

constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

struct CompressionArgs {
  std::string dataset;
  std::string data_root = "../shared/data";
  std::string embeddings_root;
  std::string base;
  std::string queries;  // a count N or, with --base, a query file
  std::string groundtruth;
  std::string metric;
  std::string pca = "none,100,75,50,25";
  std::string kinds = "all";
  std::size_t k = 10;
  std::size_t rescore_factor = 4;
  std::size_t train_sample = 100000;
  std::uint64_t seed = 42;
  int threads = 0;
  std::string backend = "auto";
  double min_time = 0.2;
  std::string csv;
  std::string svg;
};

void install_logging(bool verbose, bool quiet) {
  auto logger = spdlog::stderr_color_mt("vecstash");
  logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(quiet ? spdlog::level::warn : verbose ? spdlog::level::debug : spdlog::level::info);
  vecstash::set_log_sink([](vecstash::LogLevel level, std::string_view message) {
    switch (level) {
      case vecstash::LogLevel::kDebug:
        spdlog::debug("{}", message);
        break;
      case vecstash::LogLevel::kInfo:
        spdlog::info("{}", message);
        break;
      case vecstash::LogLevel::kWarn:
        spdlog::warn("{}", message);
        break;
      case vecstash::LogLevel::kError:
        spdlog::error("{}", message);
        break;
    }
  });
}

bool all_digits(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) { return c >= '0' && c <= '9'; });
}

std::vector<std::string> split_names(const std::string& s) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= s.size()) {
    const auto comma = s.find(',', start);
    std::string item = s.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

std::string dataset_help() {
  std::string s = "Named data sets (under --data-root):\n";
  for (const auto& name : bench::named_datasets()) {
    s += fmt::format("  {:<14} {}\n", name, bench::describe_dataset(name));
  }
  s += fmt::format("  {:<14} {}\n", "all", fmt::join(bench::standard_datasets(), ", "));
  s += "Code kinds (--kinds, comma-separated; a kind selects all its variants): ";
  std::vector<std::string> names;
  for (const auto& v : bench::standard_code_variants()) names.push_back(v.name);
  s += fmt::format("{}\n", fmt::join(names, ", "));
  return s;
}

struct SearchArgs {
  std::string datasets = "glove100k,sift10k";
  std::string data_root = "../shared/data";
  std::string embeddings_root;
  std::size_t queries = 1000;
  std::string kinds = "f32,e4m3,i8,b1";
  std::string approximate = "i8:HNSW32,e4m3:HNSW32,b1:BHNSW32";
  std::string ef = "64,128";
  std::size_t k = 10;
  double oversampling = 4.0;
  int threads = 1;
  std::size_t calibration_sample = 10000;
  int ef_construction = 0;
  bool no_peers = false;
  double min_time = 0.5;
  std::string work_dir;
  std::string csv;
  std::size_t synthetic_rows = 20000;
  std::size_t synthetic_dim = 64;
};

}  // namespace

// OpenBLAS (behind FAISS's flat search) reads OPENBLAS_NUM_THREADS when it loads; this sets it later.
extern "C" void openblas_set_num_threads(int) __attribute__((weak));

namespace {

struct ScaleArgs {
  std::size_t rows = 1'000'000;
  std::size_t dim = 384;
  std::string dataset;
  std::string data_root = "../shared/data";
  std::string kind = "i8";
  std::string index;
  std::string probes = "16,32";
  std::size_t queries = 200;
  std::size_t batch = 1000;
  std::size_t synced_rows = 20000;
  bool no_payloads = false;
  int threads = 0;
  std::string work_dir;
  bool keep = false;
  std::string out;
  std::string csv;
};

int run_bench_scale(const ScaleArgs& args) {
  bench::ScaleBenchOptions o;
  o.rows = args.rows;
  o.dim = args.dim;
  o.dataset = args.dataset;
  o.data_root = args.data_root;
  o.kind = args.kind;
  o.index = args.index;
  o.probes.clear();
  for (const auto& p : split_names(args.probes)) {
    if (!all_digits(p) || std::stoi(p) < 1) {
      spdlog::error("--probes: '{}' is not a positive integer", p);
      return kExitUsage;
    }
    o.probes.push_back(std::stoi(p));
  }
  if (!vecstash::parse_code_kind(args.kind)) {
    spdlog::error("--kind: unknown code kind '{}'", args.kind);
    return kExitUsage;
  }
  o.queries = args.queries;
  o.batch = args.batch;
  o.synced_rows = args.synced_rows;
  o.payloads = !args.no_payloads;
  o.threads = args.threads;
  o.work_dir = args.work_dir;
  o.keep = args.keep;
  auto r = bench::run_scale_bench(o);
  if (!r.is_ok()) {
    spdlog::error("bench scale: {}", r.status().to_string());
    return 1;
  }
  const std::string report = bench::format_scale_report({*r});
  std::fputs(report.c_str(), stdout);
  for (const auto& [path, text] :
       {std::pair{args.out, report}, std::pair{args.csv, bench::scale_results_to_csv({*r})}}) {
    if (path.empty()) continue;
    if (const auto s = bench::write_text_file(path, text); !s.is_ok()) {
      spdlog::error("{}", s.to_string());
      return 1;
    }
  }
  return 0;
}

int run_bench_search(const SearchArgs& args) {
  bench::SearchBenchOptions o;
  o.kinds = split_names(args.kinds);
  o.approximate = split_names(args.approximate);
  o.hnsw_ef.clear();
  for (const auto& e : split_names(args.ef)) {
    if (!all_digits(e) || std::stoi(e) < 1) {
      spdlog::error("--ef: '{}' is not a positive integer", e);
      return kExitUsage;
    }
    o.hnsw_ef.push_back(std::stoi(e));
  }
  if (o.hnsw_ef.empty()) o.hnsw_ef.push_back(64);
  o.k = args.k;
  o.oversampling = args.oversampling;
  o.threads = args.threads;
  o.calibration_sample = args.calibration_sample;
  o.hnsw_ef_construction = args.ef_construction;
  o.peers = !args.no_peers;
  o.min_time = args.min_time;
  o.work_dir = args.work_dir.empty() ? std::filesystem::temp_directory_path() / "vecstash-bench-search"
                                     : std::filesystem::path(args.work_dir);
  for (const auto& k : o.kinds) {
    if (!vecstash::parse_code_kind(k)) {
      spdlog::error("--kinds: unknown code kind '{}'", k);
      return kExitUsage;
    }
  }
  omp_set_num_threads(args.threads > 0 ? args.threads : omp_get_num_procs());
  if (openblas_set_num_threads) openblas_set_num_threads(args.threads > 0 ? args.threads : omp_get_num_procs());

  std::vector<bench::SearchBenchRow> all;
  for (const auto& name : split_names(args.datasets)) {
    bench::DatasetOptions dopt;
    dopt.data_root = args.data_root;
    dopt.embeddings_root = args.embeddings_root;
    dopt.max_queries = args.queries;
    auto ds = name == "synthetic" ? vecstash::Result<bench::Dataset>(bench::make_synthetic_dataset(
                                        args.synthetic_rows, args.synthetic_dim, args.queries, 42))
                                  : bench::load_named_dataset(name, dopt);
    if (!ds.is_ok()) {
      spdlog::error("{}", ds.status().to_string());
      return kExitFailure;
    }
    spdlog::info("{}: {} x {} base, {} queries, metric {}", name, ds->base.rows, ds->base.cols, ds->queries.rows,
                 vecstash::to_string(ds->metric));
    auto rows = bench::run_search_bench(*ds, o);
    if (!rows.is_ok()) {
      spdlog::error("{}: {}", name, rows.status().to_string());
      return kExitFailure;
    }
    all.insert(all.end(), rows->begin(), rows->end());
  }
  std::error_code ec;
  std::filesystem::remove_all(o.work_dir, ec);
  std::fputs(bench::format_search_table(all).c_str(), stdout);
  if (!args.csv.empty()) {
    const auto s = bench::write_text_file(args.csv, bench::search_rows_to_csv(all));
    if (!s.is_ok()) {
      spdlog::error("{}", s.to_string());
      return kExitFailure;
    }
  }
  return 0;
}

const bench::CrossModelOptions kCrossDefaults{};

struct CrossModelArgs {
  std::string dataset = "scifact";
  std::string corpus_model = "minilm";
  std::string query_model = "wordllama";
  std::string data_root = "../shared/data";
  std::string embeddings_root;
  // Defaults: those of bench::CrossModelOptions, so that the two cannot drift apart.
  std::string anchors = fmt::format("{}", fmt::join(kCrossDefaults.anchors, ","));
  std::string strategies = fmt::format("{}", fmt::join(kCrossDefaults.strategies, ","));
  std::string methods = fmt::format("{}", fmt::join(kCrossDefaults.methods, ","));
  std::string kinds = fmt::format("{}", fmt::join(kCrossDefaults.kinds, ","));
  std::size_t kinds_anchors = kCrossDefaults.kinds_anchors;
  std::string kinds_strategy = kCrossDefaults.kinds_strategy;
  std::string relative_kind = kCrossDefaults.relative_kind;
  bool no_center = !kCrossDefaults.center;
  double lambda = kCrossDefaults.lambda;
  float hubness_weight = kCrossDefaults.hubness_weight;
  std::uint32_t hubness_neighbours = kCrossDefaults.hubness_neighbours;
  std::uint64_t seed = kCrossDefaults.seed;
  int threads = kCrossDefaults.threads;
  std::string work_dir;
  std::string out;
  std::string csv;
};

int run_bench_crossmodel(const CrossModelArgs& args) {
  bench::CrossModelOptions o;
  const std::filesystem::path emb =
      args.embeddings_root.empty() ? bench::default_embeddings_root() : std::filesystem::path(args.embeddings_root);
  o.corpus_model = emb / (args.dataset + "-" + args.corpus_model);
  o.query_model = emb / (args.dataset + "-" + args.query_model);
  o.qrels_test = std::filesystem::path(args.data_root) / args.dataset / "qrels" / "test.tsv";
  const auto train = std::filesystem::path(args.data_root) / args.dataset / "qrels" / "train.tsv";
  const auto strategies = split_names(args.strategies);
  const bool mixed = std::find(strategies.begin(), strategies.end(), "mixed") != strategies.end() ||
                     (!split_names(args.kinds).empty() && args.kinds_strategy == "mixed");
  if (mixed) o.qrels_train = train;
  o.name_a = args.corpus_model;
  o.name_b = args.query_model;
  o.anchors.clear();
  for (const auto& a : split_names(args.anchors)) {
    if (!all_digits(a) || std::stoul(a) < 2) {
      spdlog::error("--anchors: '{}' is not an integer >= 2", a);
      return kExitUsage;
    }
    o.anchors.push_back(std::stoul(a));
  }
  o.strategies = strategies;
  for (const auto& st : o.strategies) {
    if (st != "mixed" && !vecstash::engine::parse_anchor_strategy(st).is_ok()) {
      spdlog::error("--strategies: '{}' is not random, kmeans, farthest or mixed", st);
      return kExitUsage;
    }
  }
  o.methods = split_names(args.methods);
  for (const auto& m : o.methods) {
    if (const auto parsed = bench::parse_bench_method(m); !parsed.is_ok()) {
      spdlog::error("--methods: '{}' is not one of {}, or a mapped one + \"+hubness\"", m,
                    fmt::join(vecstash::engine::cross_method_names(), ", "));
      return kExitUsage;
    }
  }
  o.kinds = split_names(args.kinds);
  o.kinds_anchors = args.kinds_anchors;
  o.kinds_strategy = args.kinds_strategy;
  o.relative_kind = args.relative_kind;
  o.center = !args.no_center;
  o.lambda = args.lambda;
  o.hubness_weight = args.hubness_weight;
  o.hubness_neighbours = args.hubness_neighbours;
  o.seed = args.seed;
  o.threads = args.threads;
  o.work_dir = args.work_dir.empty() ? std::filesystem::temp_directory_path() / "vecstash-bench-crossmodel"
                                     : std::filesystem::path(args.work_dir);
  for (const auto& folder : {o.corpus_model, o.query_model}) {
    if (!std::filesystem::exists(folder / "corpus.fvecs")) {
      spdlog::error("{}: no embeddings there; make them with benchmarks/embed/embed_beir.py (docs/BENCHMARKS.md)",
                    folder.string());
      return kExitFailure;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto rows = bench::run_crossmodel_bench(o);
  if (!rows.is_ok()) {
    spdlog::error("{}", rows.status().to_string());
    return kExitFailure;
  }
  const std::string report = bench::format_crossmodel_report(*rows, o) +
                             fmt::format("\nWhole run: {:.0f} s.\n",
                                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  std::fputs(report.c_str(), stdout);
  for (const auto& [path, text] :
       {std::pair{args.out, report}, std::pair{args.csv, bench::crossmodel_rows_to_csv(*rows)}}) {
    if (path.empty()) continue;
    const auto s = bench::write_text_file(path, text);
    if (!s.is_ok()) {
      spdlog::error("{}", s.to_string());
      return kExitFailure;
    }
  }
  return 0;
}

int run_bench_compression(const CompressionArgs& args) {
  // ---- validate the flags once, before any data is read ----
  auto variants = bench::parse_code_variants(args.kinds);
  if (!variants.is_ok()) {
    spdlog::error("--kinds: {}", variants.status().message());
    return kExitUsage;
  }
  auto pca = bench::parse_pca_levels(args.pca);
  if (!pca.is_ok()) {
    spdlog::error("--pca: {}", pca.status().message());
    return kExitUsage;
  }
  if (args.dataset.empty() == args.base.empty()) {
    spdlog::error("give either --dataset NAME or --base FILE --queries FILE --metric l2|cos|ip");
    return kExitUsage;
  }
  std::size_t max_queries = 0;
  std::string query_file;
  if (!args.queries.empty()) {
    if (all_digits(args.queries)) {
      max_queries = std::stoull(args.queries);
      if (max_queries == 0) {
        spdlog::error("--queries: give a positive number of queries (or, with --base, a query file)");
        return kExitUsage;
      }
    } else if (!args.base.empty()) {
      query_file = args.queries;
    } else {
      spdlog::error("--queries '{}': with --dataset give a number of queries; query files go with --base",
                    args.queries);
      return kExitUsage;
    }
  }

  bench::SweepOptions options;
  options.variants = std::move(variants).value();
  options.pca_percents = std::move(pca).value();
  options.k = args.k;
  options.k_large = std::max<std::size_t>(100, args.k);
  options.rescore_factor = args.rescore_factor;
  options.train_sample = args.train_sample;
  options.seed = args.seed;
  options.threads = args.threads;
  options.min_timing_s = args.min_time;
  options.progress = [](std::string_view line) { spdlog::info("{}", line); };

  // ---- backend: the GPU when asked for or (auto) when one is usable; gpu_available() logs once why not ----
  std::unique_ptr<vecstash::kernels::GpuContext> gpu;
  if (args.backend == "gpu" || (args.backend == "auto" && vecstash::kernels::gpu_available())) {
    auto ctx = vecstash::kernels::GpuContext::create();
    if (!ctx.is_ok()) {
      spdlog::error("--backend {}: {}", args.backend, ctx.status().to_string());
      return kExitFailure;
    }
    gpu = std::move(ctx).value();
    spdlog::info("encoding and scanning on the GPU: {}", vecstash::kernels::gpu_description());
  }
  options.gpu = gpu.get();

  // ---- which data sets ----
  struct Job {
    std::string name;
    bool optional;  // part of --dataset all: skipped (with a warning) when missing
  };
  std::vector<Job> jobs;
  if (!args.base.empty()) {
    if (query_file.empty()) {
      spdlog::error("--base needs --queries FILE");
      return kExitUsage;
    }
    if (args.metric.empty()) {
      spdlog::error("--base needs --metric l2|cos|ip");
      return kExitUsage;
    }
    jobs.push_back({"", false});
  } else {
    const auto known = bench::named_datasets();
    for (const auto& name : split_names(args.dataset)) {
      if (name == "all") {
        for (const auto& s : bench::standard_datasets()) jobs.push_back({s, true});
      } else if (std::find(known.begin(), known.end(), name) != known.end()) {
        jobs.push_back({name, false});
      } else {
        spdlog::error("--dataset: unknown data set '{}' (known: {}, all)", name, fmt::join(known, ", "));
        return kExitUsage;
      }
    }
    if (jobs.empty()) {
      spdlog::error("--dataset: no data set named");
      return kExitUsage;
    }
  }
  std::optional<vecstash::Metric> metric;
  if (!args.metric.empty()) {
    metric = vecstash::parse_metric(args.metric);
    if (!metric || *metric == vecstash::Metric::kHamming) {
      spdlog::error("--metric '{}': use l2, cos or ip", args.metric);
      return kExitUsage;
    }
  }

  // ---- run ----
  std::vector<bench::SweepReport> reports;
  std::vector<std::string> skipped;
  for (const Job& job : jobs) {
    vecstash::Result<bench::Dataset> ds = vecstash::Status::internal("unset");
    if (job.name.empty()) {
      ds = bench::load_files_dataset(args.base, query_file, args.groundtruth, *metric, 0);
    } else {
      bench::DatasetOptions dopt;
      dopt.data_root = args.data_root;
      dopt.embeddings_root = args.embeddings_root;
      dopt.max_queries = max_queries;
      dopt.seed = args.seed;
      spdlog::info("loading {} from {}", job.name, dopt.data_root.string());
      ds = bench::load_named_dataset(job.name, dopt);
    }
    if (!ds.is_ok()) {
      if (job.optional && ds.status().code() == vecstash::StatusCode::kNotFound) {
        spdlog::warn("skipping {}: {}", job.name, ds.status().message());
        skipped.push_back(job.name);
        continue;
      }
      spdlog::error("{}", ds.status().message());
      return kExitFailure;
    }
    spdlog::info("{}: {} base rows x {} dims, {} queries; {} configurations", ds->name, ds->base.rows, ds->base.cols,
                 ds->queries.rows, options.variants.size() * options.pca_percents.size());
    auto report = bench::run_compression_sweep(*ds, options);
    if (!report.is_ok()) {
      spdlog::error("{}: {}", ds->name, report.status().to_string());
      return kExitFailure;
    }
    std::fputs(bench::format_table(*report).c_str(), stdout);
    std::fputs("\n", stdout);
    std::fflush(stdout);
    reports.push_back(std::move(report).value());
  }
  if (!skipped.empty()) {
    spdlog::warn("skipped (data not found under {}): {}", args.data_root, fmt::join(skipped, ", "));
  }
  if (reports.empty()) {
    spdlog::error("no data set was available under {} (set --data-root)", args.data_root);
    return kExitFailure;
  }

  // ---- files ----
  if (!args.csv.empty()) {
    if (auto s = bench::write_text_file(args.csv, bench::to_csv(reports)); !s.is_ok()) {
      spdlog::error("--csv: {}", s.message());
      return kExitFailure;
    }
    spdlog::info("wrote {}", args.csv);
  }
  if (!args.svg.empty()) {
    for (const auto& r : reports) {
      const std::filesystem::path path = reports.size() == 1 && args.svg.find("{dataset}") == std::string::npos
                                             ? std::filesystem::path(args.svg)
                                             : bench::per_dataset_path(args.svg, r.dataset);
      if (auto s = bench::write_text_file(path, bench::render_svg(r)); !s.is_ok()) {
        spdlog::error("--svg: {}", s.message());
        return kExitFailure;
      }
      spdlog::info("wrote {}", path.string());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vecstash: a vector store for compressed embeddings"};
  app.require_subcommand(1);
  bool verbose = false, quiet = false;
  app.add_flag("-v,--verbose", verbose, "Debug logging");
  app.add_flag("-q,--quiet", quiet, "Only warnings and errors on stderr");

  CLI::App* bench_cmd = app.add_subcommand("bench", "Benchmarks");
  bench_cmd->require_subcommand(1);
  bench_cmd->fallthrough();  // -v / -q may follow the subcommands

  CompressionArgs args;
  CLI::App* compression = bench_cmd->add_subcommand(
      "compression",
      "Storage versus accuracy: every code kind x PCA level, recall@k (and nDCG@10 with qrels) against exact "
      "float32 search, encode and scan speed, and codes + float32 rescoring of the top 4k");
  compression->footer(dataset_help());
  compression->fallthrough();
  auto* dataset_opt = compression->add_option("--dataset", args.dataset,
                                              "Named data set(s), comma-separated, or 'all' (the four standard "
                                              "sets; missing ones are skipped)");
  compression->add_option("--data-root", args.data_root, "Folder of the named data sets")->capture_default_str();
  compression->add_option(
      "--embeddings-root", args.embeddings_root,
      "Cache of locally made embeddings (scifact-minilm, scifact-wordllama; "
      "benchmarks/embed/embed_beir.py). Default: $VECSTASH_EMBEDDINGS or ~/.cache/vecstash/embeddings");
  auto* base_opt = compression->add_option("--base", args.base, "Generic: base vectors (.fvecs/.bvecs[.gz])");
  compression->add_option("--queries", args.queries,
                          "N: use the first N queries (self-queries for sets without queries); "
                          "with --base: the query file");
  compression->add_option("--groundtruth", args.groundtruth, "Generic: shipped exact neighbours (.ivecs)")
      ->needs(base_opt);
  compression->add_option("--metric", args.metric, "Generic: l2, cos or ip")->needs(base_opt);
  dataset_opt->excludes(base_opt);
  compression
      ->add_option("--pca", args.pca,
                   "PCA levels: none (original coordinates) or percent of dimensions kept (100 = centred + rotated)")
      ->capture_default_str();
  compression->add_option("--kinds", args.kinds, "Code kinds or variants, comma-separated, or 'all'")
      ->capture_default_str();
  compression->add_option("--k", args.k, "k of recall@k; rescoring reads the top 4k (recall@100 is always reported)")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  compression
      ->add_option("--rescore-factor", args.rescore_factor,
                   "Candidates rescored with float32 per result (r = factor x k); 0 disables")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{0}, std::size_t{40}));
  compression->add_option("--train-sample", args.train_sample, "Rows sampled (fixed seed) to fit PCA and codecs")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{2}, std::size_t{100000000}));
  compression->add_option("--seed", args.seed, "Seed for samples and self-queries")->capture_default_str();
  compression->add_option("--threads", args.threads, "Kernel threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  compression
      ->add_option("--backend", args.backend,
                   "Where codes are encoded and scanned: auto (the GPU when one is usable, else the CPU), cpu, gpu")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "gpu"}));
  compression
      ->add_option("--min-time", args.min_time,
                   "Seconds to repeat each timed encode and scan (fastest run reported; 0 = once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  compression->add_option("--csv", args.csv, "Write all results as CSV");
  compression->add_option("--svg", args.svg,
                          "Write the trade-off plot (several data sets: one file each, NAME-<dataset>.svg, or "
                          "put {dataset} in the name)");

  SearchArgs sargs;
  CLI::App* search = bench_cmd->add_subcommand(
      "search",
      "Collections end to end: ingest rate (bulk and synced), exact and approximate queries/s and recall@k per "
      "code kind, with and without rescoring, memory per vector; FAISS IndexFlat, SQ8 and HNSW in the same run");
  search->fallthrough();
  search->add_option("--dataset", sargs.datasets, "Named data sets, comma-separated (or 'synthetic')")
      ->capture_default_str();
  search->add_option("--data-root", sargs.data_root, "Folder of the named data sets")->capture_default_str();
  search->add_option(
      "--embeddings-root", sargs.embeddings_root,
      "Cache of locally made embeddings (default: $VECSTASH_EMBEDDINGS or ~/.cache/vecstash/embeddings)");
  search->add_option("--queries", sargs.queries, "Use the first N queries")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  search->add_option("--kinds", sargs.kinds, "Code kinds of the exact configurations")->capture_default_str();
  search->add_option("--approximate", sargs.approximate, "Approximate configurations KIND:INDEX, comma-separated")
      ->capture_default_str();
  search->add_option("--ef", sargs.ef, "HNSW efSearch values")->capture_default_str();
  search->add_option("--k", sargs.k, "k of recall@k")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000}));
  search->add_option("--oversampling", sargs.oversampling, "Candidates rescored per result")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 100.0));
  search->add_option("--threads", sargs.threads, "Threads for vecstash, FAISS and OpenBLAS (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  search
      ->add_option("--ef-construction", sargs.ef_construction,
                   "HNSW build breadth of the approximate collections (0 = FAISS's default, 40)")
      ->capture_default_str()
      ->check(CLI::Range(0, 4096));
  search->add_option("--calibration-sample", sargs.calibration_sample, "Points that calibrate each collection")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{2}, std::size_t{10000000}));
  search->add_flag("--no-peers", sargs.no_peers, "Skip the FAISS reference indexes");
  search->add_option("--min-time", sargs.min_time, "Seconds to repeat each query batch (fastest run reported)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 60.0));
  search->add_option("--work-dir", sargs.work_dir, "Where the benchmark databases are created (default: the temp dir)");
  search->add_option("--csv", sargs.csv, "Write the results as CSV");
  search->add_option("--synthetic-rows", sargs.synthetic_rows, "Rows of the 'synthetic' data set")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{100}, std::size_t{100000000}));
  search->add_option("--synthetic-dim", sargs.synthetic_dim, "Dimension of the 'synthetic' data set")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{2}, std::size_t{65536}));

  ScaleArgs scargs;
  CLI::App* scale = bench_cmd->add_subcommand(
      "scale",
      "A collection at scale through a real `vecstash serve`: ingest rate (bulk and synced), server RSS per point "
      "(steady and peak, from /proc), disk per point, reopen time, exact and approximate queries/s and recall@10 "
      "with rescoring from disk, and 1 %-filtered queries with a keyword index");
  scale->add_option("--rows", scargs.rows, "Rows of the generated data")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1000}, std::size_t{1} << 32));
  scale->add_option("--dim", scargs.dim, "Dimension of the generated data")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{2}, std::size_t{65536}));
  scale->add_option("--dataset", scargs.dataset, "A named data set instead of generated rows (e.g. glove100k)");
  scale->add_option("--data-root", scargs.data_root, "Folder of the named data sets")->capture_default_str();
  scale->add_option("--kind", scargs.kind, "Code kind")->capture_default_str();
  scale->add_option("--index", scargs.index, "Approximate index (e.g. IVF4096 or HNSW32; empty: exact only)");
  scale->add_option("--probes", scargs.probes, "ivf_nprobe (IVF) or hnsw_ef (HNSW) values, comma-separated")
      ->capture_default_str();
  scale->add_option("--queries", scargs.queries, "Held-out queries")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  scale->add_option("--batch", scargs.batch, "Points per upsert of the bulk phase")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000}));
  scale->add_option("--synced-rows", scargs.synced_rows, "Rows added at the end with synced writes (64 per request)")
      ->capture_default_str();
  scale->add_flag("--no-payloads", scargs.no_payloads, "No payloads (and no filtered queries)");
  scale->add_option("--threads", scargs.threads, "The server's kernel threads per search (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  scale->add_option("--work-dir", scargs.work_dir, "Where the data directory is created (default: the temp dir)");
  scale->add_flag("--keep", scargs.keep, "Keep the data directory");
  scale->add_option("--out", scargs.out, "Write the report (Markdown)");
  scale->add_option("--csv", scargs.csv, "Write the results as CSV");

  vecstash::tools::ServeArgs serve_args;
  CrossModelArgs xargs;
  CLI::App* crossmodel = bench_cmd->add_subcommand(
      "crossmodel", "Queries embedded by one model against a corpus embedded by another, through anchors");
  crossmodel->add_option("--dataset", xargs.dataset, "BEIR set (folder under --data-root, with qrels/)")
      ->capture_default_str();
  crossmodel->add_option("--corpus-model", xargs.corpus_model, "Model A, whose embeddings the collection holds")
      ->capture_default_str();
  crossmodel->add_option("--query-model", xargs.query_model, "Model B, which embeds the queries and the anchors")
      ->capture_default_str();
  crossmodel->add_option("--data-root", xargs.data_root, "Folder of the data sets (qrels)")->capture_default_str();
  crossmodel->add_option("--embeddings-root", xargs.embeddings_root,
                         "Embeddings cache (default $VECSTASH_EMBEDDINGS or ~/.cache/vecstash/embeddings)");
  crossmodel->add_option("--anchors", xargs.anchors, "Anchor counts, comma-separated")->capture_default_str();
  crossmodel->add_option("--strategies", xargs.strategies, "random, kmeans, farthest, mixed (comma-separated)")
      ->capture_default_str();
  crossmodel
      ->add_option("--methods", xargs.methods,
                   fmt::format("Methods, comma-separated: {}; a mapped one + \"+hubness\" adds the hubness "
                               "correction (the plain ones are measured without)",
                               fmt::join(vecstash::engine::cross_method_names(), ", ")))
      ->capture_default_str();
  crossmodel->add_option("--kinds", xargs.kinds, "Codes-only corpus kinds measured at --kinds-anchors ('' = none)")
      ->capture_default_str();
  crossmodel->add_option("--kinds-anchors", xargs.kinds_anchors, "Anchors for the --kinds runs")
      ->capture_default_str()
      ->check(CLI::Range(std::size_t{2}, std::size_t{8192}));
  crossmodel->add_option("--kinds-strategy", xargs.kinds_strategy, "Anchor selection for the --kinds runs")
      ->capture_default_str();
  crossmodel->add_option("--relative-kind", xargs.relative_kind, "Code kind of the stored relative vectors")
      ->capture_default_str();
  crossmodel->add_flag("--no-center", xargs.no_center, "Relative vectors without subtracting the anchors' mean");
  crossmodel->add_option("--lambda", xargs.lambda, "Affine map: pull towards the Procrustes map")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e6));
  crossmodel->add_option("--hubness-weight", xargs.hubness_weight, "Hubness correction weight of the registered model")
      ->capture_default_str()
      ->check(CLI::Range(0.0f, 2.0f));
  crossmodel
      ->add_option("--hubness-neighbours", xargs.hubness_neighbours,
                   "Hubness correction: mapped anchors averaged per point")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  crossmodel->add_option("--seed", xargs.seed, "Seed of the anchor selection")->capture_default_str();
  crossmodel->add_option("--threads", xargs.threads, "Kernel threads (0 = all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  crossmodel->add_option("--work-dir", xargs.work_dir, "Where the temporary database goes");
  crossmodel->add_option("--out", xargs.out, "Also write the report (markdown) here");
  crossmodel->add_option("--csv", xargs.csv, "Write all rows as CSV");

  CLI::App* serve = vecstash::tools::add_serve_command(app, serve_args);
  vecstash::tools::IngestArgs ingest_args;
  CLI::App* ingest = vecstash::tools::add_ingest_command(app, ingest_args);
  vecstash::tools::QueryArgs query_args;
  CLI::App* query = vecstash::tools::add_query_command(app, query_args);
  vecstash::tools::InspectArgs inspect_args;
  CLI::App* inspect = vecstash::tools::add_inspect_command(app, inspect_args);
  vecstash::tools::AnchorsArgs anchors_args;
  CLI::App* anchors = vecstash::tools::add_anchors_command(app, anchors_args);
  vecstash::tools::ModelArgs model_args;
  CLI::App* model = vecstash::tools::add_model_command(app, model_args);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);  // prints the message (or the help, code 0)
    return code == 0 ? 0 : kExitUsage;
  }
  install_logging(verbose, quiet);
  if (compression->parsed()) return run_bench_compression(args);
  if (search->parsed()) return run_bench_search(sargs);
  if (scale->parsed()) return run_bench_scale(scargs);
  if (crossmodel->parsed()) return run_bench_crossmodel(xargs);
  if (serve->parsed()) return vecstash::tools::run_serve(serve_args, verbose || quiet);
  if (ingest->parsed()) return vecstash::tools::run_ingest(ingest_args);
  if (query->parsed()) return vecstash::tools::run_query(query_args);
  if (inspect->parsed()) return vecstash::tools::run_inspect(inspect_args);
  if (anchors->parsed()) return vecstash::tools::run_anchors(anchors_args);
  if (model->parsed()) return vecstash::tools::run_model(model_args);
  std::fputs(app.help().c_str(), stderr);
  return kExitUsage;
}
