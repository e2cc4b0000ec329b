#include "benchmarks/search_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexScalarQuantizer.h>
#include <fmt/format.h>
#include <omp.h>

#include "benchmarks/metrics.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/engine.h"
#include "vecstash/kernels/search.h"

namespace vecstash::bench {
namespace {

using Clock = std::chrono::steady_clock;
using engine::CollectionConfig;
using engine::Engine;
using engine::PointId;
using engine::PointInput;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Fastest of repeated runs, at least one, until min_time has passed.
template <typename Fn>
Result<double> fastest(double min_time, Fn&& fn) {
  double best = 1e300, total = 0.0;
  do {
    const auto t0 = Clock::now();
    VECSTASH_RETURN_IF_ERROR(fn());
    const double s = seconds_since(t0);
    best = std::min(best, s);
    total += s;
  } while (total < min_time);
  return best;
}

FloatMatrix normalized(FloatMatrix m) {
  normalize_rows(m);
  return m;
}

struct Prepared {
  Metric metric;            // the collection metric
  FloatMatrix base, queries;  // normalised for cosine (for FAISS and the ground truth)
  Matrix<std::int64_t> truth;
};

Result<Prepared> prepare(const Dataset& d, const SearchBenchOptions& o) {
  Prepared p;
  p.metric = d.metric;
  p.base = d.metric == Metric::kCos ? normalized(d.base) : d.base;
  p.queries = d.metric == Metric::kCos ? normalized(d.queries) : d.queries;
  const auto t0 = Clock::now();
  kernels::TopK top;
  kernels::SearchParams sp{d.metric == Metric::kL2 ? Metric::kL2 : Metric::kIp, o.k, 0};
  VECSTASH_RETURN_IF_ERROR(kernels::search_f32(p.queries.view(), p.base.view(), sp, &top));
  p.truth = Matrix<std::int64_t>(p.queries.rows, o.k);
  p.truth.data = top.ids;
  log(LogLevel::kInfo, fmt::format("{}: exact float32 neighbours of {} queries in {:.1f} s", d.name, p.queries.rows,
                                   seconds_since(t0)));
  return p;
}

struct Loaded {
  std::unique_ptr<Engine> engine;
  std::shared_ptr<engine::Collection> collection;
  std::filesystem::path dir;
  engine::EngineOptions options;
  double ingest_vps = 0.0;
};

// Close the engine (which snapshots indexes) and time opening it again: reading ids, codes, originals
// and payloads back, and loading (or rebuilding) the index.
Result<double> reopen(Loaded& l) {
  l.collection.reset();
  l.engine.reset();
  const auto t0 = Clock::now();
  auto e = Engine::open(l.dir, l.options);
  if (!e.is_ok()) return e.status();
  const double s = seconds_since(t0);
  l.engine = std::move(*e);
  auto c = l.engine->collection("bench");
  if (!c.is_ok()) return c.status();
  l.collection = *c;
  return s;
}

Result<Loaded> load_collection(const Dataset& d, const SearchBenchOptions& o, const std::string& tag,
                               const CollectionConfig& config, bool synced) {
  const auto dir = o.work_dir / tag;
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  engine::EngineOptions eo;
  eo.threads = o.threads;
  eo.pool_threads = 1;
  auto e = Engine::open(dir, eo);
  if (!e.is_ok()) return e.status();
  Loaded l;
  l.engine = std::move(*e);
  l.dir = dir;
  l.options = eo;
  auto c = l.engine->create_collection("bench", config);
  if (!c.is_ok()) return c.status();
  l.collection = *c;
  const std::size_t batch = synced ? o.synced_batch : o.bulk_batch;
  engine::WriteOptions wo;
  wo.sync = synced;
  const auto t0 = Clock::now();
  std::vector<PointInput> pts;
  for (std::size_t begin = 0; begin < d.base.rows; begin += batch) {
    const std::size_t end = std::min(d.base.rows, begin + batch);
    pts.clear();
    for (std::size_t i = begin; i < end; ++i) {
      pts.push_back({PointId::number(i), {d.base.data.data() + i * d.base.cols, d.base.cols}, std::nullopt});
    }
    VECSTASH_RETURN_IF_ERROR(l.collection->upsert(pts, wo));
  }
  if (!l.collection->info().calibrated) VECSTASH_RETURN_IF_ERROR(l.collection->calibrate());
  l.ingest_vps = double(d.base.rows) / seconds_since(t0);
  return l;
}

struct Measured {
  double qps = 0.0;
  double recall = 0.0;
};

Result<Measured> measure(const engine::Collection& c, const Prepared& p, const SearchBenchOptions& o,
                         engine::SearchRequest req) {
  // The original (unnormalised) queries go in: the collection normalises cosine queries itself.
  req.nq = p.queries.rows;
  req.queries = {p.queries.data.data(), p.queries.data.size()};
  req.limit = o.k;
  std::vector<std::vector<engine::ScoredPoint>> results;
  auto t = fastest(o.min_time, [&]() -> Status {
    auto r = c.search(req);
    if (!r.is_ok()) return r.status();
    results = std::move(*r);
    return Status::ok();
  });
  if (!t.is_ok()) return t.status();
  Matrix<std::int64_t> found(p.queries.rows, o.k);
  std::fill(found.data.begin(), found.data.end(), -1);
  for (std::size_t i = 0; i < results.size(); ++i) {
    for (std::size_t j = 0; j < results[i].size() && j < o.k; ++j) {
      found.data[i * o.k + j] = static_cast<std::int64_t>(results[i][j].id.lo);
    }
  }
  auto recall = recall_at_k(found.view(), p.truth.view(), o.k);
  if (!recall.is_ok()) return recall.status();
  return Measured{double(p.queries.rows) / *t, *recall};
}

Result<Measured> measure_faiss(const faiss::Index& index, const Prepared& p, const SearchBenchOptions& o,
                               std::size_t nq, const faiss::SearchParameters* params = nullptr) {
  nq = std::min(nq, p.queries.rows);
  std::vector<float> dist(nq * o.k);
  std::vector<faiss::Index::idx_t> labels(nq * o.k);
  auto t = fastest(o.min_time, [&]() -> Status {
    try {
      index.search(static_cast<faiss::Index::idx_t>(nq), p.queries.data.data(), static_cast<faiss::Index::idx_t>(o.k),
                   dist.data(), labels.data(), params);
    } catch (const std::exception& e) {
      return Status::internal(std::string("faiss: ") + e.what());
    }
    return Status::ok();
  });
  if (!t.is_ok()) return t.status();
  Matrix<std::int64_t> found(nq, o.k), truth(nq, o.k);
  std::copy(labels.begin(), labels.end(), found.data.begin());
  std::copy_n(p.truth.data.begin(), nq * o.k, truth.data.begin());
  auto recall = recall_at_k(found.view(), truth.view(), o.k);
  if (!recall.is_ok()) return recall.status();
  return Measured{double(nq) / *t, *recall};
}

Result<CodeKind> kind_of(const std::string& name) {
  const auto k = parse_code_kind(name);
  if (!k) return Status::invalid_argument("unknown code kind '" + name + "'");
  return *k;
}

}  // namespace

Result<std::vector<SearchBenchRow>> run_search_bench(const Dataset& d, const SearchBenchOptions& o) {
  if (o.work_dir.empty()) return Status::invalid_argument("a work directory is required");
  if (d.base.rows == 0 || d.queries.rows == 0) return Status::invalid_argument(d.name + ": no base or no queries");
  auto prepared = prepare(d, o);
  if (!prepared.is_ok()) return prepared.status();
  const Prepared& p = *prepared;
  std::vector<SearchBenchRow> rows;
  const double n = double(d.base.rows);

  auto base_config = [&](CodeKind kind) {
    CollectionConfig c;
    c.dim = d.base.cols;
    c.metric = d.metric;
    c.codec.kind = kind;
    c.calibration_sample = o.calibration_sample;
    c.search.oversampling = o.oversampling;
    return c;
  };
  auto add_row = [&](const std::string& config, const std::string& ingest, double vps, const Measured& m,
                     const engine::Collection& c, double reopen_s = 0.0) {
    const auto info = c.info();
    SearchBenchRow r;
    r.dataset = d.name;
    r.system = "vecstash";
    r.config = config;
    r.ingest = ingest;
    r.ingest_vps = vps;
    r.qps = m.qps;
    r.recall = m.recall;
    r.bytes_per_vector = double(info.memory.total()) / double(std::max<std::size_t>(1, info.points));
    r.code_bytes = double(info.code_bytes);
    r.id_bytes = double(info.memory.ids) / double(std::max<std::size_t>(1, info.points));
    r.queries = p.queries.rows;
    r.reopen_s = reopen_s;
    rows.push_back(r);
    log(LogLevel::kInfo, fmt::format("{} {}: {:.0f} q/s, recall@{} {:.4f}, {:.1f} B/vector", d.name, config, m.qps,
                                     o.k, m.recall, r.bytes_per_vector));
  };

  // Exact configurations: originals kept (with and without rescoring).
  for (const auto& name : o.kinds) {
    auto kind = kind_of(name);
    if (!kind.is_ok()) return kind.status();
    auto loaded = load_collection(d, o, d.name + "-" + name, base_config(*kind), false);
    if (!loaded.is_ok()) return loaded.status();
    auto reopened = reopen(*loaded);
    if (!reopened.is_ok()) return reopened.status();
    for (bool rescore : {false, true}) {
      if (rescore && *kind == CodeKind::kF32) continue;
      engine::SearchRequest req;
      req.rescore = rescore;
      auto m = measure(*loaded->collection, p, o, req);
      if (!m.is_ok()) return m.status();
      add_row(name + " exact" + (rescore ? " +rescore" : ""), rescore ? "" : "bulk", rescore ? 0.0 : loaded->ingest_vps,
              *m, *loaded->collection, rescore ? 0.0 : *reopened);
    }
  }
  // Codes only (no originals): the memory figure of a compressed-only collection.
  for (const std::string name : {"i8", "b1"}) {
    if (std::find(o.kinds.begin(), o.kinds.end(), name) == o.kinds.end()) continue;
    auto cfg = base_config(*kind_of(name));
    cfg.keep_originals = false;
    auto loaded = load_collection(d, o, d.name + "-" + name + "-codes", cfg, false);
    if (!loaded.is_ok()) return loaded.status();
    auto m = measure(*loaded->collection, p, o, {});
    if (!m.is_ok()) return m.status();
    add_row(name + " exact, codes only", "bulk", loaded->ingest_vps, *m, *loaded->collection);
  }
  // Synced ingest (every batch fsynced before it is acknowledged).
  {
    auto loaded = load_collection(d, o, d.name + "-synced", base_config(CodeKind::kI8), true);
    if (!loaded.is_ok()) return loaded.status();
    SearchBenchRow r;
    r.dataset = d.name;
    r.system = "vecstash";
    r.config = fmt::format("i8, batches of {} synced", o.synced_batch);
    r.ingest = "synced";
    r.ingest_vps = loaded->ingest_vps;
    rows.push_back(r);
    log(LogLevel::kInfo, fmt::format("{} synced ingest: {:.0f} vectors/s", d.name, loaded->ingest_vps));
  }
  // Approximate configurations.
  for (const auto& spec : o.approximate) {
    const auto colon = spec.find(':');
    if (colon == std::string::npos) return Status::invalid_argument("approximate config '" + spec + "' is not KIND:INDEX");
    auto kind = kind_of(spec.substr(0, colon));
    if (!kind.is_ok()) return kind.status();
    auto cfg = base_config(*kind);
    cfg.index = spec.substr(colon + 1);
    if (cfg.index.find("HNSW") != std::string::npos) cfg.hnsw_ef_construction = o.hnsw_ef_construction;
    auto loaded = load_collection(d, o, d.name + "-ann-" + std::to_string(rows.size()), cfg, false);
    if (!loaded.is_ok()) return loaded.status();
    auto reopened = reopen(*loaded);
    if (!reopened.is_ok()) return reopened.status();
    for (int ef : o.hnsw_ef) {
      for (bool rescore : {false, true}) {
        engine::SearchRequest req;
        req.rescore = rescore;
        req.hnsw_ef = ef;
        auto m = measure(*loaded->collection, p, o, req);
        if (!m.is_ok()) return m.status();
        const bool first = ef == o.hnsw_ef.front() && !rescore;
        add_row(fmt::format("{} {} ef{}{}", spec.substr(0, colon), cfg.index, ef, rescore ? " +rescore" : ""),
                first ? "bulk" : "", first ? loaded->ingest_vps : 0.0, *m, *loaded->collection,
                first ? *reopened : 0.0);
      }
    }
  }

  if (o.peers) {
    const auto fmetric = d.metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
    const auto dim = static_cast<faiss::Index::idx_t>(d.base.cols);
    const auto nb = static_cast<faiss::Index::idx_t>(d.base.rows);
    auto faiss_row = [&](const std::string& config, double vps, const Measured& m, double bytes, std::size_t nq) {
      SearchBenchRow r;
      r.dataset = d.name;
      r.system = "faiss";
      r.config = config;
      r.ingest = vps > 0 ? "in memory" : "";
      r.ingest_vps = vps;
      r.qps = m.qps;
      r.recall = m.recall;
      r.bytes_per_vector = bytes;
      r.code_bytes = bytes;
      r.queries = nq;
      rows.push_back(r);
      log(LogLevel::kInfo, fmt::format("{} faiss {}: {:.0f} q/s, recall@{} {:.4f}", d.name, config, m.qps, o.k, m.recall));
    };
    try {
      {
        faiss::IndexFlat flat(dim, fmetric);
        const auto t0 = Clock::now();
        flat.add(nb, p.base.data.data());
        const double vps = n / seconds_since(t0);
        auto m = measure_faiss(flat, p, o, p.queries.rows);
        if (!m.is_ok()) return m.status();
        faiss_row(d.metric == Metric::kL2 ? "IndexFlatL2" : "IndexFlatIP", vps, *m, 4.0 * d.base.cols, p.queries.rows);
      }
      {
        faiss::IndexScalarQuantizer sq(dim, faiss::ScalarQuantizer::QT_8bit, fmetric);
        const auto t0 = Clock::now();
        sq.train(nb, p.base.data.data());
        sq.add(nb, p.base.data.data());
        const double vps = n / seconds_since(t0);
        auto m = measure_faiss(sq, p, o, o.sq8_queries);
        if (!m.is_ok()) return m.status();
        faiss_row("IndexScalarQuantizer SQ8", vps, *m, double(d.base.cols), std::min(o.sq8_queries, p.queries.rows));
      }
      {
        faiss::IndexHNSWFlat hnsw(static_cast<int>(dim), 32, fmetric);
        const auto t0 = Clock::now();
        hnsw.add(nb, p.base.data.data());
        const double vps = n / seconds_since(t0);
        for (int ef : o.hnsw_ef) {
          // FAISS 1.7.3 sizes the candidate queue from the index's own efSearch and ignores
          // SearchParametersHNSW::efSearch, so set it on the index.
          hnsw.hnsw.efSearch = ef;
          auto m = measure_faiss(hnsw, p, o, p.queries.rows);
          if (!m.is_ok()) return m.status();
          // Vectors plus level-0 links (2M neighbours of 4 bytes) and upper levels (about 1/M of that).
          const double bytes = 4.0 * d.base.cols + 2 * 32 * 4 * (1.0 + 1.0 / 32);
          faiss_row(fmt::format("IndexHNSWFlat M32 ef{}", ef), ef == o.hnsw_ef.front() ? vps : 0.0, *m, bytes,
                    p.queries.rows);
        }
      }
    } catch (const std::exception& e) {
      return Status::internal(std::string("faiss: ") + e.what());
    }
  }
  return rows;
}

std::string format_search_table(const std::vector<SearchBenchRow>& rows) {
  std::string s = fmt::format("{:<11} {:<9} {:<34} {:>9} {:>10} {:>9} {:>9} {:>8} {:>7} {:>6} {:>8}\n", "dataset", "system",
                              "configuration", "ingest", "vectors/s", "queries/s", "recall", "B/vec", "code B",
                              "ids B", "reopen s");
  for (const auto& r : rows) {
    s += fmt::format("{:<11} {:<9} {:<34} {:>9} {:>10} {:>9} {:>9} {:>8} {:>7} {:>6} {:>8}\n", r.dataset, r.system, r.config,
                     r.ingest, r.ingest_vps > 0 ? fmt::format("{:.0f}", r.ingest_vps) : "",
                     r.qps > 0 ? fmt::format("{:.0f}", r.qps) : "", r.qps > 0 ? fmt::format("{:.4f}", r.recall) : "",
                     r.bytes_per_vector > 0 ? fmt::format("{:.1f}", r.bytes_per_vector) : "",
                     r.code_bytes > 0 ? fmt::format("{:.0f}", r.code_bytes) : "",
                     r.id_bytes > 0 ? fmt::format("{:.0f}", r.id_bytes) : "",
                     r.reopen_s > 0 ? fmt::format("{:.2f}", r.reopen_s) : "");
  }
  return s;
}

std::string search_rows_to_csv(const std::vector<SearchBenchRow>& rows) {
  std::string s = "dataset,system,config,ingest,ingest_vps,qps,recall,bytes_per_vector,code_bytes,id_bytes,queries,reopen_s\n";
  for (const auto& r : rows) {
    s += fmt::format("{},{},\"{}\",{},{:.1f},{:.1f},{:.5f},{:.2f},{:.1f},{:.1f},{},{:.3f}\n", r.dataset, r.system, r.config,
                     r.ingest, r.ingest_vps, r.qps, r.recall, r.bytes_per_vector, r.code_bytes, r.id_bytes, r.queries,
                     r.reopen_s);
  }
  return s;
}

}  // namespace vecstash::bench
