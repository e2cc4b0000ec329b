#include "benchmarks/crossmodel_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "benchmarks/datasets.h"
#include "benchmarks/metrics.h"
#include "vecstash/engine/engine.h"

namespace vecstash::bench {

namespace {

using engine::AnchorRequest;
using engine::AnchorStrategy;
using engine::Collection;
using engine::CrossMethod;
using engine::ModelRequest;
using engine::PointId;
using engine::PointInput;
using engine::SearchRequest;

// Ids of training queries used as anchors ("mixed"): far above any corpus row.
constexpr std::uint64_t kQueryAnchorBase = 1'000'000'000ULL;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// BEIR recall@k: per query with judgments, the share of its relevant documents in the top k.
double recall_at(const std::vector<std::int64_t>& found, std::size_t k, const Qrels& qrels) {
  double sum = 0;
  std::size_t n = 0;
  for (std::size_t q = 0; q < qrels.size(); ++q) {
    std::set<std::int64_t> relevant;
    std::size_t total = 0;
    for (const Judgment& j : qrels[q]) {
      if (j.relevance > 0) {
        ++total;
        if (j.row >= 0) relevant.insert(j.row);
      }
    }
    if (total == 0) continue;
    std::size_t hit = 0;
    for (std::size_t i = 0; i < k; ++i) hit += relevant.count(found[q * k + i]);
    sum += static_cast<double>(hit) / static_cast<double>(total);
    ++n;
  }
  return n ? sum / static_cast<double>(n) : 0.0;
}

struct Scores {
  double ndcg = 0, recall = 0, qps = 0;
};

Result<Scores> evaluate(const Collection& c, const FloatMatrix& queries, const Qrels& qrels, const std::string& space,
                        std::optional<CrossMethod> method, std::optional<float> hubness_weight = std::nullopt) {
  constexpr std::size_t k = 10;
  SearchRequest r;
  r.queries = queries.data;
  r.nq = queries.rows;
  r.limit = k;
  r.space.name = space;
  r.space.method = method;
  r.space.hubness_weight = hubness_weight;
  const auto t0 = std::chrono::steady_clock::now();
  auto res = c.search(r);
  const double took = seconds_since(t0);
  if (!res.is_ok()) return res.status();
  std::vector<std::int64_t> found(queries.rows * k, -1);
  for (std::size_t q = 0; q < res->size(); ++q) {
    for (std::size_t i = 0; i < (*res)[q].size() && i < k; ++i)
      found[q * k + i] = static_cast<std::int64_t>((*res)[q][i].id.lo);
  }
  auto nd = mean_ndcg_at_k(MatrixView<const std::int64_t>(found.data(), queries.rows, k), qrels, k);
  if (!nd.is_ok()) return nd.status();
  return Scores{nd->mean, recall_at(found, k, qrels), took > 0 ? static_cast<double>(queries.rows) / took : 0.0};
}

Result<std::shared_ptr<Collection>> make_collection(engine::Engine& e, const std::string& name, const FloatMatrix& base,
                                                    CodeKind kind, bool keep_originals) {
  engine::CollectionConfig cfg;
  cfg.dim = base.cols;
  cfg.metric = Metric::kCos;
  cfg.codec.kind = kind;
  cfg.keep_originals = keep_originals;
  cfg.calibration_sample = 10000;
  auto c = e.create_collection(name, cfg);
  if (!c.is_ok()) return c.status();
  std::vector<PointInput> pts(base.rows);
  for (std::size_t i = 0; i < base.rows; ++i) {
    pts[i].id = PointId::number(i);
    pts[i].vector = {base.row(i), base.cols};
  }
  engine::WriteOptions wo;
  wo.sync = false;
  VECSTASH_RETURN_IF_ERROR((*c)->upsert(pts, wo));
  if (!(*c)->info().calibrated) VECSTASH_RETURN_IF_ERROR((*c)->calibrate());
  return c;
}

struct Side {
  Dataset test;   // corpus + test queries
  Dataset train;  // corpus + training queries (may be empty)
};

Result<Side> load_side(const std::filesystem::path& folder, const CrossModelOptions& o) {
  Side s;
  auto test = load_beir_embeddings(folder, o.qrels_test, "test");
  if (!test.is_ok()) return test.status();
  s.test = std::move(*test);
  if (!o.qrels_train.empty()) {
    auto train = load_beir_embeddings(folder, o.qrels_train, "train");
    if (!train.is_ok()) return train.status();
    s.train = std::move(*train);
  }
  return s;
}

// Anchor request for `strategy`. "mixed": as many training queries as the count allows (all 809 of
// SciFact from 809 anchors up), the rest random corpus documents; supplied as vectors.
Result<AnchorRequest> anchor_request(const std::string& strategy, std::size_t count, const Side& a,
                                     const CrossModelOptions& o) {
  AnchorRequest req;
  req.count = count;
  req.seed = o.seed;
  req.center = o.center;
  const auto rk = parse_code_kind(o.relative_kind);
  if (!rk) return Status::invalid_argument("unknown relative kind '" + o.relative_kind + "'");
  req.relative_kind = *rk;
  if (strategy == "mixed") {  // training queries, then random corpus documents
    // Queries are what the test queries look like: take all the training queries the count allows.
    const std::size_t nq = std::min(count, a.train.queries.rows);
    if (nq == 0) return Status::invalid_argument("mixed anchors need training queries (--qrels-train)");
    req.strategy = AnchorStrategy::kVectors;
    const auto docs = sample_indices(a.test.base.rows, count - nq, o.seed);
    const auto queries = sample_indices(a.train.queries.rows, nq, o.seed + 1);
    const std::size_t dim = a.test.base.cols;
    for (std::size_t d : docs) {
      req.ids.push_back(PointId::number(d));
      req.vectors.insert(req.vectors.end(), a.test.base.row(d), a.test.base.row(d) + dim);
    }
    for (std::size_t q : queries) {
      req.ids.push_back(PointId::number(kQueryAnchorBase + q));
      req.vectors.insert(req.vectors.end(), a.train.queries.row(q), a.train.queries.row(q) + dim);
    }
    return req;
  }
  auto s = engine::parse_anchor_strategy(strategy);
  if (!s.is_ok()) return s.status();
  req.strategy = *s;
  return req;
}

// B's embeddings of the anchor items, in the anchor set's order.
ModelRequest model_request(const std::vector<PointId>& ids, const Side& b, const CrossModelOptions& o) {
  ModelRequest m;
  m.name = "model_b";
  m.dim = b.test.base.cols;
  m.lambda = o.lambda;
  m.hubness_weight = o.hubness_weight;
  m.hubness_neighbours = o.hubness_neighbours;
  for (const PointId& id : ids) {
    const float* v = id.lo >= kQueryAnchorBase ? b.train.queries.row(id.lo - kQueryAnchorBase) : b.test.base.row(id.lo);
    m.vectors.insert(m.vectors.end(), v, v + m.dim);
  }
  return m;
}

}  // namespace

Result<BenchMethod> parse_bench_method(std::string_view name) {
  constexpr std::string_view kHub = "+hubness";
  const bool hub = name.size() > kHub.size() && name.ends_with(kHub);
  auto m = engine::parse_cross_method(hub ? name.substr(0, name.size() - kHub.size()) : name);
  if (!m.is_ok()) return m.status();
  if (hub && *m == CrossMethod::kRelative) {
    return Status::invalid_argument("'" + std::string(name) + "': the hubness correction applies to the mapped methods");
  }
  return BenchMethod{*m, hub};
}

Result<std::vector<CrossModelRow>> run_crossmodel_bench(const CrossModelOptions& o) {
  auto a = load_side(o.corpus_model, o);
  if (!a.is_ok()) return a.status();
  auto b = load_side(o.query_model, o);
  if (!b.is_ok()) return b.status();
  if (a->test.base.rows != b->test.base.rows || a->test.queries.rows != b->test.queries.rows ||
      a->train.queries.rows != b->train.queries.rows) {
    return Status::invalid_argument("the two embedding folders do not hold the same documents and queries");
  }
  {
    auto ia = read_id_lines(o.corpus_model / "corpus_ids.txt");
    auto ib = read_id_lines(o.query_model / "corpus_ids.txt");
    if (!ia.is_ok()) return ia.status();
    if (!ib.is_ok()) return ib.status();
    if (*ia != *ib) return Status::invalid_argument("the two embedding folders list different documents");
  }
  engine::EngineOptions eo;
  eo.threads = o.threads;
  std::error_code ec;
  std::filesystem::remove_all(o.work_dir / "crossmodel-db", ec);
  auto eng = engine::Engine::open(o.work_dir / "crossmodel-db", eo);
  if (!eng.is_ok()) return eng.status();
  std::vector<CrossModelRow> rows;
  std::vector<BenchMethod> methods;
  for (const auto& m : o.methods) {
    auto pm = parse_bench_method(m);
    if (!pm.is_ok()) return pm.status();
    if (pm->hubness && o.hubness_weight <= 0.0f) {
      return Status::invalid_argument("'" + m + "' needs a hubness weight above 0");
    }
    methods.push_back(*pm);
  }

  // Native baselines.
  auto ca = make_collection(**eng, "a_f32", a->test.base, CodeKind::kF32, true);
  if (!ca.is_ok()) return ca.status();
  auto cb = make_collection(**eng, "b_f32", b->test.base, CodeKind::kF32, true);
  if (!cb.is_ok()) return cb.status();
  for (auto [dir, c, q] : {std::tuple{"A->A", *ca, &a->test}, std::tuple{"B->B", *cb, &b->test}}) {
    auto s = evaluate(*c, q->queries, q->qrels, "", std::nullopt);
    if (!s.is_ok()) return s.status();
    rows.push_back({dir, "f32", "", 0, "native", s->ndcg, s->recall, 0, s->qps});
    fmt::print(stderr, "[crossmodel] {} native nDCG@10 {:.4f}\n", dir, s->ndcg);
  }
  VECSTASH_RETURN_IF_ERROR((*eng)->drop_collection("b_f32"));

  auto sweep = [&](Collection& c, const std::string& kind, const std::string& strategy, std::size_t count) -> Status {
    const auto t0 = std::chrono::steady_clock::now();
    auto req = anchor_request(strategy, count, *a, o);
    if (!req.is_ok()) return req.status();
    auto info = c.set_anchors(*req);
    if (!info.is_ok()) return info.status();
    auto model = c.register_model(model_request(info->ids, *b, o));
    if (!model.is_ok()) return model.status();
    const double setup = seconds_since(t0);
    for (const auto& [m, hub] : methods) {
      // Plain mapped methods: the map alone (weight 0); "+hubness": the model's weight.
      const std::optional<float> weight =
          m == CrossMethod::kRelative || hub ? std::nullopt : std::optional<float>(0.0f);
      auto s = evaluate(c, b->test.queries, b->test.qrels, "model_b", m, weight);
      if (!s.is_ok()) return s.status();
      std::string params;
      if (m == CrossMethod::kLocal) {
        params = fmt::format("k {} t {:g} w {:g} loo {:.4f}", model->local_neighbours, model->local_temperature,
                             model->local_weight, model->local_fit_cosine);
      }
      if (hub) {
        params += fmt::format("{}hubness k {} w {:g}", params.empty() ? "" : "; ", model->hubness_neighbours,
                              model->hubness_weight);
      }
      const std::string name = std::string(engine::cross_method_name(m)) + (hub ? "+hubness" : "");
      rows.push_back({"B->A", kind, strategy, count, name, s->ndcg, s->recall, setup, s->qps, params});
      fmt::print(stderr, "[crossmodel] B->A {} {} {} {}: nDCG@10 {:.4f} recall@10 {:.4f} (setup {:.1f}s)\n", kind,
                 strategy, count, name, s->ndcg, s->recall, setup);
    }
    return Status::ok();
  };
  for (const auto& strategy : o.strategies) {
    for (std::size_t count : o.anchors) {
      if (count > a->test.base.rows) continue;
      VECSTASH_RETURN_IF_ERROR(sweep(**ca, "f32", strategy, count));
    }
  }
  VECSTASH_RETURN_IF_ERROR((*eng)->drop_collection("a_f32"));
  for (const auto& kind : o.kinds) {
    const auto k = parse_code_kind(kind);
    if (!k) return Status::invalid_argument("unknown code kind '" + kind + "'");
    auto c = make_collection(**eng, "a_" + kind, a->test.base, *k, /*keep_originals=*/false);
    if (!c.is_ok()) return c.status();
    auto s = evaluate(**c, a->test.queries, a->test.qrels, "", std::nullopt);
    if (!s.is_ok()) return s.status();
    rows.push_back({"A->A", kind, "", 0, "native", s->ndcg, s->recall, 0, s->qps});
    VECSTASH_RETURN_IF_ERROR(sweep(**c, kind, o.kinds_strategy, o.kinds_anchors));
    VECSTASH_RETURN_IF_ERROR((*eng)->drop_collection("a_" + kind));
  }
  eng->reset();
  std::filesystem::remove_all(o.work_dir / "crossmodel-db", ec);
  return rows;
}

std::string crossmodel_rows_to_csv(const std::vector<CrossModelRow>& rows) {
  std::string out = "direction,corpus_kind,strategy,anchors,method,ndcg10,recall10,setup_s,queries_per_s,params\n";
  for (const auto& r : rows) {
    out += fmt::format("{},{},{},{},{},{:.4f},{:.4f},{:.2f},{:.0f},{}\n", r.direction, r.corpus_kind, r.strategy,
                       r.anchors, r.method, r.ndcg10, r.recall10, r.seconds, r.qps, r.params);
  }
  return out;
}

std::string format_crossmodel_report(const std::vector<CrossModelRow>& rows, const CrossModelOptions& o) {
  double aa = 0, bb = 0;
  for (const auto& r : rows) {
    if (r.direction == "A->A" && r.corpus_kind == "f32") aa = r.ndcg10;
    if (r.direction == "B->B") bb = r.ndcg10;
  }
  const double target = std::min(aa, bb);
  std::string out;
  out += fmt::format("Corpus embedded by A = {}; queries (and anchors) embedded by B = {}.\n\n", o.name_a, o.name_b);
  out += fmt::format("Native: A->A nDCG@10 {:.4f}, B->B nDCG@10 {:.4f}; the target is 90 % of the lower, {:.4f}.\n\n",
                     aa, bb, 0.9 * target);
  // nDCG@10 by strategy x anchors, one column per method (f32 corpus).
  out += "nDCG@10 of B's queries on A's corpus (float32 corpus), by anchor selection and count:\n\n";
  out += "| anchors | strategy |";
  for (const auto& m : o.methods) out += " " + m + " |";
  out += " best / min(A->A, B->B) |\n|---:|---|";
  for (std::size_t i = 0; i < o.methods.size(); ++i) out += "---:|";
  out += "---:|\n";
  std::map<std::pair<std::size_t, std::string>, std::map<std::string, const CrossModelRow*>> table;
  for (const auto& r : rows) {
    if (r.direction == "B->A" && r.corpus_kind == "f32") table[{r.anchors, r.strategy}][r.method] = &r;
  }
  const CrossModelRow* best = nullptr;
  for (const auto& [key, cells] : table) {
    out += fmt::format("| {} | {} |", key.first, key.second);
    double top = 0;
    for (const auto& m : o.methods) {
      const auto it = cells.find(m);
      if (it == cells.end()) {
        out += " |";
        continue;
      }
      out += fmt::format(" {:.4f} |", it->second->ndcg10);
      top = std::max(top, it->second->ndcg10);
      if (key.first <= 1024 && (!best || it->second->ndcg10 > best->ndcg10)) best = it->second;
    }
    out += fmt::format(" {:.1f} % |\n", target > 0 ? 100.0 * top / target : 0.0);
  }
  out += "\nRecall@10 (BEIR) and nDCG@10 of every configuration, corpus code kinds included:\n\n";
  out += "| direction | corpus | strategy | anchors | method | nDCG@10 | recall@10 | setup s | queries/s | parameters |\n";
  out += "|---|---|---|---:|---|---:|---:|---:|---:|---|\n";
  for (const auto& r : rows) {
    out += fmt::format("| {} | {} | {} | {} | {} | {:.4f} | {:.4f} | {:.1f} | {:.0f} | {} |\n", r.direction,
                       r.corpus_kind, r.strategy.empty() ? "-" : r.strategy, r.anchors ? std::to_string(r.anchors) : "-",
                       r.method, r.ndcg10, r.recall10, r.seconds, r.qps, r.params.empty() ? "-" : r.params);
  }
  if (best) {
    out += fmt::format(
        "\nBest with at most 1,024 anchors: {} anchors by {}, {} — nDCG@10 {:.4f} = {:.1f} % of min(A->A, B->B); "
        "M(B->A)/M(B->B) = {:.3f}, M(B->A)/M(A->A) = {:.3f}; compatibility M(B->A) > M(A->A): {}.\n",
        best->anchors, best->strategy, best->method, best->ndcg10, target > 0 ? 100.0 * best->ndcg10 / target : 0.0,
        bb > 0 ? best->ndcg10 / bb : 0.0, aa > 0 ? best->ndcg10 / aa : 0.0, best->ndcg10 > aa ? "yes" : "no");
  }
  return out;
}

}  // namespace vecstash::bench
