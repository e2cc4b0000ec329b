#include "benchmarks/compression_sweep.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <thread>

#include "benchmarks/metrics.h"
#include "vecstash/kernels/pca.h"
#include "vecstash/kernels/search.h"

namespace vecstash::bench {
namespace {

constexpr std::size_t kNdcgK = 10;

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

std::vector<std::string_view> split_commas(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    const auto comma = s.find(',');
    auto item = s.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.push_back(item);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

FloatMatrix gather_rows(MatrixView<const float> m, const std::vector<std::size_t>& rows) {
  FloatMatrix out(rows.size(), m.cols);
  for (std::size_t i = 0; i < rows.size(); ++i) std::copy_n(m.row(rows[i]), m.cols, out.row(i));
  return out;
}

MatrixView<const std::int64_t> ids_view(const kernels::TopK& t) { return {t.ids.data(), t.nq, t.k}; }

// The first `k` columns of a wider result (best first, so this is the top-k).
kernels::TopK prefix(const kernels::TopK& t, std::size_t k, Metric metric) {
  kernels::TopK out;
  out.resize(t.nq, k, metric);
  for (std::size_t q = 0; q < t.nq; ++q) {
    std::copy_n(t.ids.data() + q * t.k, k, out.ids.data() + q * k);
    std::copy_n(t.scores.data() + q * t.k, k, out.scores.data() + q * k);
  }
  return out;
}

// Run `fn` until `min_seconds` have passed (at least once, at most kMaxRuns times) and return the
// fastest run: small data sets finish in milliseconds, where one run is mostly noise.
constexpr int kMaxRuns = 20;
template <typename Fn>
Result<double> fastest_run(double min_seconds, Fn&& fn) {
  double best = 1e300, total = 0.0;
  for (int run = 0; run < kMaxRuns && (run == 0 || total < min_seconds); ++run) {
    const auto start = Clock::now();
    VECSTASH_RETURN_IF_ERROR(fn());
    const double s = seconds_since(start);
    best = std::min(best, s);
    total += s;
  }
  return best;
}

Status with_context(const Status& s, std::string_view what) {
  return {s.code(), fmt::format("{}: {}", what, s.message())};
}

}  // namespace

std::vector<CodeVariant> standard_code_variants() {
  std::vector<CodeVariant> v;
  auto add = [&](std::string name, CodeKind kind, ScaleMode scale = ScaleMode::kNone, double clip = 0.0,
                 bool hamming = false) {
    CodeVariant c;
    c.name = std::move(name);
    c.codec.kind = kind;
    c.codec.scale = scale;
    c.codec.int8_clip_percent = clip;
    c.hamming = hamming;
    v.push_back(std::move(c));
  };
  add("f32", CodeKind::kF32);
  add("f16", CodeKind::kF16);
  add("bf16", CodeKind::kBF16);
  for (CodeKind kind : {CodeKind::kE4M3, CodeKind::kE5M2}) {
    for (ScaleMode mode : {ScaleMode::kNone, ScaleMode::kPerVector, ScaleMode::kPerDim}) {
      add(fmt::format("{}:{}", to_string(kind), to_string(mode)), kind, mode);
    }
  }
  add("i8:minmax", CodeKind::kI8);
  add("i8:clip0.1", CodeKind::kI8, ScaleMode::kNone, 0.1);
  add("b1:asym", CodeKind::kB1);
  add("b1:hamming", CodeKind::kB1, ScaleMode::kNone, 0.0, true);
  return v;
}

Result<std::vector<CodeVariant>> parse_code_variants(std::string_view list) {
  const auto all = standard_code_variants();
  std::vector<CodeVariant> out;
  auto add_unique = [&](const CodeVariant& v) {
    for (const auto& o : out) {
      if (o.name == v.name) return;
    }
    out.push_back(v);
  };
  for (std::string_view item : split_commas(list)) {
    bool matched = false;
    for (const auto& v : all) {
      const std::string_view kind_name = to_string(v.codec.kind);
      if (item == "all" || item == v.name || item == kind_name ||
          (parse_code_kind(item) && *parse_code_kind(item) == v.codec.kind)) {
        add_unique(v);
        matched = true;
      }
    }
    if (!matched) {
      std::vector<std::string> names;
      for (const auto& v : all) names.push_back(v.name);
      return Status::invalid_argument(fmt::format(
          "unknown code kind '{}' (known: all, a kind such as e4m3, or one of {})", item, fmt::join(names, ", ")));
    }
  }
  if (out.empty()) return Status::invalid_argument("no code kinds selected");
  // Keep the standard order whatever order they were given in.
  std::vector<CodeVariant> ordered;
  for (const auto& v : all) {
    for (const auto& o : out) {
      if (o.name == v.name) ordered.push_back(o);
    }
  }
  return ordered;
}

std::string pca_label(int percent) { return percent == kNoPca ? "none" : fmt::format("{}%", percent); }

Result<std::vector<int>> parse_pca_levels(std::string_view list) {
  std::vector<int> out;
  for (std::string_view item : split_commas(list)) {
    int value = 0;
    if (item == "none") {
      value = kNoPca;
    } else {
      const auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), value);
      if (ec != std::errc() || ptr != item.data() + item.size() || value < 1 || value > 100) {
        return Status::invalid_argument(
            fmt::format("bad PCA level '{}': give 'none' or percentages of dimensions kept, integers 1..100", item));
      }
    }
    if (std::find(out.begin(), out.end(), value) == out.end()) out.push_back(value);
  }
  if (out.empty()) return Status::invalid_argument("no PCA levels given");
  // "none" first, then by decreasing dimension (increasing compression).
  std::sort(out.begin(), out.end(), [](int a, int b) {
    if (a == kNoPca || b == kNoPca) return a == kNoPca && b != kNoPca;
    return a > b;
  });
  return out;
}

Metric code_scoring_metric(const CodeVariant& variant, Metric search_metric, bool unit_rows) {
  if (variant.hamming) return Metric::kHamming;
  // Unit rows: L2 to the binary reconstruction orders neighbours like cosine does and, unlike the
  // inner product, is not biased by the reconstruction's norm; b1 needs no stored norm for it.
  if (variant.codec.kind == CodeKind::kB1 && unit_rows) return Metric::kL2;
  return search_metric;
}

bool needs_stored_norm(const CodeVariant& variant, Metric scoring_metric) {
  if (scoring_metric == Metric::kCos) return true;
  return scoring_metric == Metric::kL2 && variant.codec.kind != CodeKind::kB1;
}

Result<SweepReport> run_compression_sweep(const Dataset& dataset, const SweepOptions& options) {
  if (dataset.base.empty() || dataset.queries.empty()) {
    return Status::invalid_argument(fmt::format("{}: the base and the queries must be non-empty", dataset.name));
  }
  if (dataset.base.cols != dataset.queries.cols) {
    return Status::invalid_argument(fmt::format("{}: base dimension {} != query dimension {}", dataset.name,
                                                dataset.base.cols, dataset.queries.cols));
  }
  if (!dataset.qrels.empty() && dataset.qrels.size() != dataset.queries.rows) {
    return Status::invalid_argument(fmt::format("{}: judgments for {} queries, {} query rows", dataset.name,
                                                dataset.qrels.size(), dataset.queries.rows));
  }
  if (options.k == 0 || options.k > kernels::kMaxK) {
    return Status::invalid_argument(fmt::format("k must be in 1..{}", kernels::kMaxK));
  }
  auto say = [&](std::string_view line) {
    if (options.progress) options.progress(line);
  };

  SweepReport report;
  report.dataset = dataset.name;
  report.dataset_metric = dataset.metric;
  report.search_metric = dataset.metric == Metric::kCos ? Metric::kIp : dataset.metric;
  report.base_rows = dataset.base.rows;
  report.dim = dataset.base.cols;
  report.queries = dataset.queries.rows;
  report.k = options.k;
  report.k_large = std::min(std::max(options.k_large, options.k), kernels::kMaxK);
  report.rescore_factor = options.rescore_factor;
  report.threads = options.threads > 0 ? options.threads : static_cast<int>(std::thread::hardware_concurrency());
  if (options.gpu) report.backend = "gpu: " + kernels::gpu_description();
  report.notes = dataset.notes;
  const Metric metric = report.search_metric;
  const std::size_t n = dataset.base.rows;
  const std::size_t d = dataset.base.cols;
  const std::size_t k = report.k;
  const std::size_t k_large = report.k_large;

  // Cosine: normalise once; every later step (PCA, codes, ground truth, rescoring) sees unit rows.
  FloatMatrix base = dataset.base;
  FloatMatrix queries = dataset.queries;
  if (dataset.metric == Metric::kCos) {
    normalize_rows(base);
    normalize_rows(queries);
    report.notes.push_back("cosine: base and queries L2-normalised, scored as inner product (ip)");
  }

  // Ground truth: exact float32 search with the same metric.
  kernels::TopK truth;
  auto start = Clock::now();
  VECSTASH_RETURN_IF_ERROR(
      with_context(kernels::search_f32(queries.view(), base.view(), {metric, k_large, options.threads}, &truth),
                   "exact float32 search"));
  const double exact_s = seconds_since(start);
  report.notes.push_back(fmt::format("ground truth: exact float32 search ({}), top-{}, {:.2f} s ({:.0f} queries/s)",
                                     to_string(metric), k_large, exact_s, queries.rows / std::max(exact_s, 1e-9)));
  if (!dataset.groundtruth.empty()) {
    if (dataset.groundtruth.rows < queries.rows) {
      return Status::invalid_argument(fmt::format("{}: shipped ground truth has {} rows for {} queries", dataset.name,
                                                  dataset.groundtruth.rows, queries.rows));
    }
    const auto shipped = widen_ids(dataset.groundtruth);
    const MatrixView<const std::int64_t> shipped_view(shipped.data(), queries.rows, dataset.groundtruth.cols);
    std::string line = "sanity: computed vs shipped ground truth:";
    for (const std::size_t kk : {k, k_large}) {
      if (kk > shipped_view.cols) continue;
      auto r = recall_at_k(ids_view(truth), shipped_view, kk);
      if (!r.is_ok()) return r.status();
      line += fmt::format(" recall@{} = {:.4f}", kk, *r);
      if (k == k_large) break;
    }
    report.notes.push_back(line);
    say(line);
  }
  if (!dataset.qrels.empty()) {
    auto nd = mean_ndcg_at_k(ids_view(truth), dataset.qrels, std::min(kNdcgK, truth.k));
    if (!nd.is_ok()) return nd.status();
    report.exact_ndcg = nd->mean;
    report.ndcg_queries = nd->evaluated;
    const std::string line = fmt::format("exact float32 nDCG@{} = {:.4f} over {} judged queries (linear gain rel)",
                                         kNdcgK, nd->mean, nd->evaluated);
    report.notes.push_back(line);
    say(line);
  }

  const auto sample_rows = sample_indices(n, options.train_sample ? options.train_sample : n, options.seed);
  const bool sampled = sample_rows.size() < n;
  report.train_rows = sample_rows.size();
  if (sampled) {
    report.notes.push_back(
        fmt::format("PCA and codecs trained on {} of {} base rows (seed {})", sample_rows.size(), n, options.seed));
  }
  const FloatMatrix sample = sampled ? gather_rows(base.view(), sample_rows) : FloatMatrix();
  const MatrixView<const float> sample_view = sampled ? sample.view() : base.view();

  const std::size_t r_small = std::min({options.rescore_factor * k, n, kernels::kMaxK});
  const std::size_t r_large = std::min({options.rescore_factor * k_large, n, kernels::kMaxK});
  const std::size_t total = options.pca_percents.size() * options.variants.size();
  std::size_t done = 0;

  for (const int pct : options.pca_percents) {
    const std::size_t dim_out =
        pct == kNoPca ? d : std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(d * pct / 100.0)));
    FloatMatrix base_t, queries_t, sample_t;
    MatrixView<const float> base_v = base.view(), queries_v = queries.view(), train_v = sample_view;
    double explained = 1.0;
    if (pct != kNoPca) {
      auto pca = kernels::Pca::fit(sample_view, {dim_out, 1.0}, options.threads);
      if (!pca.is_ok()) {
        if (pca.status().code() == StatusCode::kUnavailable) {
          const std::string line = fmt::format("PCA {} skipped: {}", pca_label(pct), pca.status().to_string());
          report.notes.push_back(line);
          say(line);
          done += options.variants.size();
          continue;
        }
        return with_context(pca.status(), fmt::format("PCA fit ({} of {} dims)", dim_out, d));
      }
      explained = pca->explained_variance_ratio();
      base_t = FloatMatrix(n, dim_out);
      queries_t = FloatMatrix(queries.rows, dim_out);
      VECSTASH_RETURN_IF_ERROR(
          with_context(pca->transform(base.view(), base_t.mut(), true, options.threads), "PCA transform"));
      VECSTASH_RETURN_IF_ERROR(with_context(
          pca->transform_queries(queries.view(), queries_t.mut(), metric, options.threads), "PCA query transform"));
      base_v = base_t.view();
      queries_v = queries_t.view();
      if (sampled) {
        sample_t = gather_rows(base_v, sample_rows);
        train_v = sample_t.view();
      } else {
        train_v = base_v;
      }
    }

    for (const CodeVariant& variant : options.variants) {
      const std::string what = fmt::format("{} pca {}", variant.name, pca_label(pct));
      auto codec = kernels::Codec::train(variant.codec, train_v);
      if (!codec.is_ok()) return with_context(codec.status(), what + ": train");
      const Metric scoring = code_scoring_metric(variant, metric, dataset.metric == Metric::kCos);
      const bool norms_needed = needs_stored_norm(variant, scoring);

      std::vector<std::uint8_t> codes(n * codec->code_size());
      std::vector<float> norms(norms_needed ? n : 0);
      auto encode_s = fastest_run(options.min_timing_s, [&] {
        const Status s = options.gpu ? options.gpu->encode(*codec, base_v, codes, norms)
                                     : codec->encode(base_v, codes, norms, options.threads);
        return with_context(s, what + ": encode");
      });
      if (!encode_s.is_ok()) return encode_s.status();
      const kernels::CodeView view{codes.data(), n, norms_needed ? norms.data() : nullptr};
      const kernels::SearchParams search_params{scoring, k_large, options.threads};
      if (options.gpu) VECSTASH_RETURN_IF_ERROR(with_context(options.gpu->upload_codes(*codec, view), what + ": upload"));

      kernels::TopK found;
      auto scan_s = fastest_run(options.min_timing_s, [&] {
        const Status s = options.gpu ? options.gpu->search(queries_v, search_params, &found)
                                     : kernels::search_cpu(*codec, queries_v, view, search_params, &found);
        return with_context(s, what + ": search");
      });
      if (!scan_s.is_ok()) return scan_s.status();

      SweepRow row;
      row.variant = variant.name;
      row.kind = variant.codec.kind;
      row.scale = variant.codec.scale;
      row.int8_clip_percent = variant.codec.int8_clip_percent;
      row.hamming = variant.hamming;
      row.pca_percent = pct;
      row.dim = dim_out;
      row.explained_variance = explained;
      row.bytes_per_vector = codec->code_size() + (norms_needed ? sizeof(float) : 0);
      row.compression_ratio = static_cast<double>(4 * d) / static_cast<double>(row.bytes_per_vector);
      row.encode_vectors_per_s = n / std::max(*encode_s, 1e-9);
      row.scan_queries_per_s = queries.rows / std::max(*scan_s, 1e-9);
      row.scan_vectors_per_s = row.scan_queries_per_s * static_cast<double>(n);
      auto r1 = recall_at_k(ids_view(found), ids_view(truth), k);
      auto r2 = recall_at_k(ids_view(found), ids_view(truth), k_large);
      if (!r1.is_ok()) return r1.status();
      if (!r2.is_ok()) return r2.status();
      row.recall_k = *r1;
      row.recall_k_large = *r2;
      if (!dataset.qrels.empty()) {
        auto nd = mean_ndcg_at_k(ids_view(found), dataset.qrels, std::min(kNdcgK, found.k));
        if (!nd.is_ok()) return nd.status();
        row.ndcg = nd->mean;
      }

      if (options.rescore_factor > 0) {
        // Candidates from the codes, then exact float32 scores in the original space.
        kernels::TopK candidates;
        VECSTASH_RETURN_IF_ERROR(
            with_context(kernels::search_cpu(*codec, queries_v, view, {scoring, r_large, options.threads}, &candidates),
                         what + ": candidate search"));
        kernels::TopK rescored_small, rescored_large;
        const kernels::TopK cand_small = prefix(candidates, std::min(r_small, candidates.k), scoring);
        VECSTASH_RETURN_IF_ERROR(with_context(kernels::rescore_f32(queries.view(), base.view(), cand_small,
                                                                   {metric, k, options.threads}, &rescored_small),
                                              what + ": rescore"));
        VECSTASH_RETURN_IF_ERROR(with_context(kernels::rescore_f32(queries.view(), base.view(), candidates,
                                                                   {metric, k_large, options.threads}, &rescored_large),
                                              what + ": rescore"));
        auto rs1 = recall_at_k(ids_view(rescored_small), ids_view(truth), k);
        auto rs2 = recall_at_k(ids_view(rescored_large), ids_view(truth), k_large);
        if (!rs1.is_ok()) return rs1.status();
        if (!rs2.is_ok()) return rs2.status();
        row.rescore_recall_k = *rs1;
        row.rescore_recall_k_large = *rs2;
        if (!dataset.qrels.empty() && rescored_small.k >= kNdcgK) {
          auto nd = mean_ndcg_at_k(ids_view(rescored_small), dataset.qrels, kNdcgK);
          if (!nd.is_ok()) return nd.status();
          row.rescore_ndcg = nd->mean;
        }
      }

      ++done;
      say(
          fmt::format("{} [{}/{}] {:<11} pca {:>4} ({:>3} d) {:>5} B/vec  recall@{} {:.4f}  recall@{} {:.4f}{}  "
                      "encode {:.3g} vec/s  scan {:.4g} q/s",
                      report.dataset, done, total, variant.name, pca_label(pct), dim_out, row.bytes_per_vector, k,
                      row.recall_k, k_large, row.recall_k_large,
                      row.rescore_recall_k ? fmt::format("  rescored {:.4f}", *row.rescore_recall_k) : "",
                      row.encode_vectors_per_s, row.scan_queries_per_s));
      report.rows.push_back(std::move(row));
    }
  }
  return report;
}

}  // namespace vecstash::bench
