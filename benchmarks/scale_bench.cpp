#include "benchmarks/scale_bench.h"

#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "benchmarks/datasets.h"
#include "benchmarks/embedding_stream.h"
#include "vecstash/api/client.h"
#include "vecstash/kernels/search.h"

extern char** environ;

namespace vecstash::bench {

namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::size_t kBuckets = 100;  // payload field "bucket": 1 % of the points each
constexpr std::size_t kQueryBatch = 50;
constexpr std::size_t kSingleQueries = 100;
constexpr std::size_t kTruthBlock = 65536;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A /proc/<pid>/status field in bytes (VmRSS, VmHWM), or 0.
std::size_t proc_status_bytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

std::size_t directory_bytes(const fs::path& dir) {
  std::size_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

std::string machine_line() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::size_t kb = 0;
  in >> key >> kb;
  return fmt::format("{} cores, {:.0f} GiB", std::thread::hardware_concurrency(), static_cast<double>(kb) / (1 << 20));
}

// `vecstash serve` in a child process.
class Server {
 public:
  Server() = default;
  Server(const Server&) = delete;
  ~Server() { stop(); }

  Status start(const fs::path& binary, const fs::path& data_dir, bool sync, int threads) {
    const fs::path port_file = data_dir.parent_path() / (data_dir.filename().string() + ".port");
    std::error_code ec;
    fs::remove(port_file, ec);
    std::vector<std::string> args = {binary.string(), "serve", "--data-dir",  data_dir.string(),
                                     "--port",        "0",     "--port-file", port_file.string(),
                                     "--log-level",   "warn",  "--threads",   std::to_string(threads)};
    std::vector<std::string> env;
    for (char** e = environ; *e != nullptr; ++e) {
      if (std::string_view(*e).rfind("VECSTASH_", 0) != 0) env.emplace_back(*e);
    }
    env.push_back(std::string("VECSTASH_SYNC_WRITES=") + (sync ? "true" : "false"));
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    if (posix_spawn(&pid_, binary.c_str(), nullptr, nullptr, argv.data(), envp.data()) != 0) {
      return Status::unavailable("cannot start " + binary.string());
    }
    for (int i = 0; i < 60000; ++i) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return Status::unavailable("the server exited while starting (see its log above)");
      }
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        auto client = api::HttpClient::create("http://127.0.0.1:" + std::to_string(port));
        if (!client.is_ok()) return client.status();
        client_ = std::move(*client);
        return Status::ok();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return Status::unavailable("the server did not start within 10 minutes");
  }

  void stop() {
    client_.reset();
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    for (int i = 0; i < 12000; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::size_t rss() const { return proc_status_bytes(pid_, "VmRSS"); }

  Result<json> call(api::Method method, const std::string& target, const std::string& body = {}) {
    auto r = client_->request(method, target, body);
    if (!r.is_ok()) return r.status();
    const json j = json::parse(r->body, nullptr, false);
    if (r->status != 200 || j.is_discarded()) {
      return Status::internal(
          fmt::format("{} {}: HTTP {}: {}", api::to_string(method), target, r->status, r->body.substr(0, 300)));
    }
    return j["result"];
  }

 private:
  pid_t pid_ = -1;
  std::unique_ptr<api::HttpClient> client_;
};

// The rows being ingested: generated, or a data set held in memory.
struct Source {
  std::size_t rows = 0, dim = 0;
  Metric metric = Metric::kCos;
  std::unique_ptr<EmbeddingStream> stream;
  Dataset dataset;
  std::vector<float> queries;  // nq x dim
  std::size_t nq = 0;

  void get(std::size_t first, std::size_t n, float* out) const {
    if (stream) {
      stream->rows(first, n, out);
    } else {
      std::copy_n(dataset.base.row(first), n * dim, out);
    }
  }
};

void normalize_rows(float* x, std::size_t n, std::size_t dim) {
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0;
    for (std::size_t j = 0; j < dim; ++j) s += static_cast<double>(x[i * dim + j]) * x[i * dim + j];
    const float inv = s > 0 ? static_cast<float>(1.0 / std::sqrt(s)) : 0.0f;
    for (std::size_t j = 0; j < dim; ++j) x[i * dim + j] *= inv;
  }
}

void append_float(std::string& out, float v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

std::string bucket_of(std::size_t i) { return fmt::format("b{:02}", i % kBuckets); }

// The upsert body of rows [first, first + n) into `body` (its capacity is reused).
void points_body(const Source& src, std::size_t first, std::size_t n, bool payloads, std::vector<float>& rows,
                 std::string& body) {
  rows.resize(n * src.dim);
  src.get(first, n, rows.data());
  body.clear();
  body += "{\"points\":[";
  for (std::size_t r = 0; r < n; ++r) {
    if (r) body += ',';
    fmt::format_to(std::back_inserter(body), "{{\"id\":{},\"vector\":[", first + r);
    for (std::size_t j = 0; j < src.dim; ++j) {
      if (j) body += ',';
      append_float(body, rows[r * src.dim + j]);
    }
    body += ']';
    if (payloads) {
      fmt::format_to(std::back_inserter(body),
                     ",\"payload\":{{\"bucket\":\"{}\",\"title\":\"Document {} of group {}\",\"n\":{}}}",
                     bucket_of(first + r), first + r, (first + r) % 997, first + r);
    }
    body += '}';
  }
  body += "]}";
}

// Upload rows [first, first + count) in batches; returns points per second.
Result<double> ingest(Server& server, const Source& src, std::size_t first, std::size_t count, std::size_t batch,
                      bool payloads, const std::string& what) {
  // The next body is built while the server works on the current one.
  std::vector<float> rows[2];
  std::string bodies[2];
  const auto t0 = Clock::now();
  auto last_log = t0;
  auto build = [&](std::size_t b, int slot) {
    points_body(src, b, std::min(batch, first + count - b), payloads, rows[slot], bodies[slot]);
  };
  build(first, 0);
  int slot = 0;
  for (std::size_t b = first; b < first + count; b += batch, slot ^= 1) {
    const std::size_t n = std::min(batch, first + count - b);
    std::thread next;
    if (b + batch < first + count) next = std::thread(build, b + batch, slot ^ 1);
    auto r = server.call(api::Method::kPut, "/collections/scale/points?wait=true", bodies[slot]);
    if (next.joinable()) next.join();
    if (!r.is_ok()) return r.status();
    if (seconds_since(last_log) > 15) {
      last_log = Clock::now();
      const double done = static_cast<double>(b + n - first);
      spdlog::info("{}: {:.0f} of {} points, {:.0f} points/s", what, done, count, done / seconds_since(t0));
    }
  }
  return static_cast<double>(count) / seconds_since(t0);
}

// Exact top-k over all rows (and, per query, among the rows of its bucket), streaming the source.
struct Truth {
  std::vector<std::vector<std::int64_t>> all, filtered;
};

void merge_topk(std::vector<std::pair<float, std::int64_t>>& best, const float* scores, const std::int64_t* ids,
                std::size_t n, std::size_t k) {
  for (std::size_t i = 0; i < n; ++i) {
    if (ids[i] >= 0) best.emplace_back(scores[i], ids[i]);
  }
  std::sort(best.begin(), best.end(),
            [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  if (best.size() > k) best.resize(k);
}

Truth exact_truth(const Source& src, std::size_t rows, std::size_t k, bool l2) {
  const std::size_t dim = src.dim, nq = src.nq;
  std::vector<float> q = src.queries;
  if (!l2) normalize_rows(q.data(), nq, dim);
  std::vector<std::vector<std::pair<float, std::int64_t>>> all(nq), filtered(nq);
  std::vector<float> block;
  const auto t0 = Clock::now();
  for (std::size_t b0 = 0; b0 < rows; b0 += kTruthBlock) {
    const std::size_t n = std::min(kTruthBlock, rows - b0);
    block.resize(n * dim);
    src.get(b0, n, block.data());
    if (!l2) normalize_rows(block.data(), n, dim);
    kernels::TopK top;
    const kernels::SearchParams sp{l2 ? Metric::kL2 : Metric::kIp, k, 0};
    if (!kernels::search_f32(MatrixView<const float>(q.data(), nq, dim), MatrixView<const float>(block.data(), n, dim),
                             sp, &top)
             .is_ok()) {
      continue;
    }
    const float sign = l2 ? -1.0f : 1.0f;
    for (std::size_t i = 0; i < nq; ++i) {
      std::vector<float> s(top.k);
      std::vector<std::int64_t> ids(top.k);
      for (std::size_t j = 0; j < top.k; ++j) {
        s[j] = sign * top.scores[i * top.k + j];
        ids[j] = top.ids[i * top.k + j] < 0 ? -1 : top.ids[i * top.k + j] + static_cast<std::int64_t>(b0);
      }
      merge_topk(all[i], s.data(), ids.data(), top.k, k);
    }
    // Filtered: the rows of each query's bucket in this block.
    for (std::size_t bucket = 0; bucket < kBuckets; ++bucket) {
      std::vector<std::size_t> qs;
      for (std::size_t i = bucket; i < nq; i += kBuckets) qs.push_back(i);
      if (qs.empty()) continue;
      std::vector<float> sub, qsub;
      std::vector<std::int64_t> map;
      for (std::size_t r = (bucket + kBuckets - b0 % kBuckets) % kBuckets; r < n; r += kBuckets) {
        sub.insert(sub.end(), block.begin() + static_cast<std::ptrdiff_t>(r * dim),
                   block.begin() + static_cast<std::ptrdiff_t>((r + 1) * dim));
        map.push_back(static_cast<std::int64_t>(b0 + r));
      }
      if (map.empty()) continue;
      for (std::size_t i : qs)
        qsub.insert(qsub.end(), q.begin() + static_cast<std::ptrdiff_t>(i * dim),
                    q.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
      kernels::TopK ft;
      if (!kernels::search_f32(MatrixView<const float>(qsub.data(), qs.size(), dim),
                               MatrixView<const float>(sub.data(), map.size(), dim), sp, &ft)
               .is_ok()) {
        continue;
      }
      for (std::size_t t = 0; t < qs.size(); ++t) {
        std::vector<float> s(ft.k);
        std::vector<std::int64_t> ids(ft.k);
        for (std::size_t j = 0; j < ft.k; ++j) {
          s[j] = sign * ft.scores[t * ft.k + j];
          const std::int64_t id = ft.ids[t * ft.k + j];
          ids[j] = id < 0 ? -1 : map[static_cast<std::size_t>(id)];
        }
        merge_topk(filtered[qs[t]], s.data(), ids.data(), ft.k, k);
      }
    }
    if (b0 % (kTruthBlock * 32) == 0 && b0 > 0) {
      spdlog::info("exact neighbours: {} of {} rows ({:.0f} s)", b0, rows, seconds_since(t0));
    }
  }
  Truth t;
  for (std::size_t i = 0; i < nq; ++i) {
    t.all.emplace_back();
    t.filtered.emplace_back();
    for (const auto& [s, id] : all[i]) t.all.back().push_back(id);
    for (const auto& [s, id] : filtered[i]) t.filtered.back().push_back(id);
  }
  return t;
}

std::string query_json(const Source& src, std::size_t i, std::size_t k, const json& params, const json& filter) {
  json body = {{"query", std::vector<float>(src.queries.begin() + static_cast<std::ptrdiff_t>(i * src.dim),
                                            src.queries.begin() + static_cast<std::ptrdiff_t>((i + 1) * src.dim))},
               {"limit", k}};
  if (!params.is_null()) body["params"] = params;
  if (!filter.is_null()) body["filter"] = filter;
  return body.dump();
}

double recall(const std::vector<std::vector<std::int64_t>>& got, const std::vector<std::vector<std::int64_t>>& truth,
              std::size_t k) {
  std::size_t hits = 0, total = 0;
  for (std::size_t i = 0; i < truth.size(); ++i) {
    const std::size_t want = std::min(k, truth[i].size());
    for (std::size_t j = 0; j < want; ++j) {
      hits += std::find(got[i].begin(), got[i].end(), truth[i][j]) != got[i].end() ? 1 : 0;
    }
    total += want;
  }
  return total ? static_cast<double>(hits) / static_cast<double>(total) : 1.0;
}

std::vector<std::int64_t> ids_of(const json& points) {
  std::vector<std::int64_t> out;
  for (const auto& p : points) out.push_back(p["id"].get<std::int64_t>());
  return out;
}

// All queries in batches of kQueryBatch: queries per second and the results.
Result<std::pair<double, std::vector<std::vector<std::int64_t>>>> batch_queries(Server& server, const Source& src,
                                                                                std::size_t k, const json& params) {
  std::vector<std::vector<std::int64_t>> got;
  const auto t0 = Clock::now();
  for (std::size_t b = 0; b < src.nq; b += kQueryBatch) {
    std::string body = "{\"searches\":[";
    for (std::size_t i = b; i < std::min(src.nq, b + kQueryBatch); ++i) {
      if (i != b) body += ',';
      body += query_json(src, i, k, params, nullptr);
    }
    body += "]}";
    auto r = server.call(api::Method::kPost, "/collections/scale/points/query/batch", body);
    if (!r.is_ok()) return r.status();
    for (const auto& res : *r) got.push_back(ids_of(res["points"]));
  }
  return std::make_pair(static_cast<double>(src.nq) / seconds_since(t0), std::move(got));
}

// One query per request, the first kSingleQueries queries, optionally each filtered to its bucket.
Result<std::pair<double, std::vector<std::vector<std::int64_t>>>> single_queries(Server& server, const Source& src,
                                                                                 std::size_t k, bool filtered) {
  std::vector<std::vector<std::int64_t>> got;
  const std::size_t n = std::min(kSingleQueries, src.nq);
  const json params = {{"exact", true}};
  const auto t0 = Clock::now();
  for (std::size_t i = 0; i < n; ++i) {
    const json filter =
        filtered ? json{{"must", json::array({json{{"key", "bucket"}, {"match", {{"value", bucket_of(i)}}}}})}}
                 : json();
    auto r = server.call(api::Method::kPost, "/collections/scale/points/query", query_json(src, i, k, params, filter));
    if (!r.is_ok()) return r.status();
    got.push_back(ids_of((*r)["points"]));
  }
  return std::make_pair(static_cast<double>(n) / seconds_since(t0), std::move(got));
}

Result<double> collection_memory(Server& server) {
  auto info = server.call(api::Method::kGet, "/collections/scale");
  if (!info.is_ok()) return info.status();
  return (*info)["config"]["vecstash"]["state"]["memory_bytes"]["total"].get<double>();
}

}  // namespace

Result<ScaleBenchResult> run_scale_bench(const ScaleBenchOptions& o) {
  Source src;
  ScaleBenchResult res;
  if (o.dataset.empty()) {
    src.rows = o.rows;
    src.dim = o.dim;
    src.stream = std::make_unique<EmbeddingStream>(o.dim, o.seed);
    src.nq = o.queries;
    src.queries.resize(src.nq * o.dim);
    src.stream->rows(o.rows + 1'000'000, src.nq, src.queries.data());  // held out: past every row
    res.dataset = fmt::format("generated {} x {}", o.rows, o.dim);
  } else {
    DatasetOptions dopt;
    dopt.data_root = o.data_root;
    dopt.max_queries = o.queries;
    auto ds = load_named_dataset(o.dataset, dopt);
    if (!ds.is_ok()) return ds.status();
    src.dataset = std::move(*ds);
    src.rows = src.dataset.base.rows;
    src.dim = src.dataset.base.cols;
    src.metric = src.dataset.metric;
    src.nq = src.dataset.queries.rows;
    src.queries.assign(src.dataset.queries.data.begin(), src.dataset.queries.data.end());
    res.dataset = o.dataset;
  }
  const bool l2 = src.metric == Metric::kL2;
  res.dim = src.dim;
  res.kind = o.kind;
  res.index = o.index;
  res.machine = machine_line();
  const std::size_t bulk_rows = src.rows > o.synced_rows ? src.rows - o.synced_rows : src.rows;
  const std::size_t synced_rows = src.rows - bulk_rows;

  fs::path binary = o.server;
  if (binary.empty()) binary = fs::read_symlink("/proc/self/exe");
  const fs::path work = o.work_dir.empty() ? fs::temp_directory_path() : o.work_dir;
  const fs::path data_dir = work / fmt::format("vecstash-scale-{}", getpid());
  std::error_code ec;
  fs::remove_all(data_dir, ec);
  struct Cleanup {
    fs::path dir;
    bool keep;
    ~Cleanup() {
      std::error_code e;
      if (!keep) fs::remove_all(dir, e);
    }
  } cleanup{data_dir, o.keep};

  Server server;
  VECSTASH_RETURN_IF_ERROR(server.start(binary, data_dir, /*sync=*/false, o.threads));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::size_t empty = server.rss();
  res.empty_rss = static_cast<double>(empty);
  json create = {{"vectors", {{"size", src.dim}, {"distance", l2 ? "Euclid" : "Cosine"}}},
                 {"vecstash", {{"codec", {{"kind", o.kind}}}}}};
  if (!o.index.empty()) create["vecstash"]["index"] = o.index;
  VECSTASH_RETURN_IF_ERROR(server.call(api::Method::kPut, "/collections/scale", create.dump()).status());

  // Bulk ingest, sampling the server's RSS.
  std::atomic<bool> sampling{true};
  std::atomic<std::size_t> peak{0};
  std::thread sampler([&] {
    while (sampling) {
      peak = std::max(peak.load(), server.rss());
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto bulk = ingest(server, src, 0, bulk_rows, o.batch, o.payloads, "bulk ingest");
  sampling = false;
  sampler.join();
  if (!bulk.is_ok()) return bulk.status();
  res.bulk_vps = *bulk;
  std::this_thread::sleep_for(std::chrono::seconds(3));
  const double n_bulk = static_cast<double>(bulk_rows);
  res.steady_rss_per_point = (static_cast<double>(server.rss()) - res.empty_rss) / n_bulk;
  res.peak_rss_per_point = (static_cast<double>(std::max(peak.load(), server.rss())) - res.empty_rss) / n_bulk;
  auto reported = collection_memory(server);
  if (!reported.is_ok()) return reported.status();
  res.reported_per_point = *reported / n_bulk;
  spdlog::info("bulk: {:.0f} points/s; RSS per point steady {:.0f} B, peak {:.0f} B; reported {:.0f} B", res.bulk_vps,
               res.steady_rss_per_point, res.peak_rss_per_point, res.reported_per_point);

  // Reopen with synced writes: time to the first answered query.
  server.stop();
  res.disk_per_point = static_cast<double>(directory_bytes(data_dir)) / n_bulk;
  const auto t_open = Clock::now();
  VECSTASH_RETURN_IF_ERROR(server.start(binary, data_dir, /*sync=*/true, o.threads));
  const std::string first_query = query_json(src, 0, o.k, nullptr, nullptr);
  while (true) {
    if (server.call(api::Method::kPost, "/collections/scale/points/query", first_query).is_ok()) break;
    if (seconds_since(t_open) > 3600) return Status::unavailable("the reopened server answers no query");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  res.reopen_s = seconds_since(t_open);
  spdlog::info("reopen to first answer: {:.2f} s", res.reopen_s);
  if (synced_rows > 0) {
    auto synced = ingest(server, src, bulk_rows, synced_rows, o.synced_batch, o.payloads, "synced ingest");
    if (!synced.is_ok()) return synced.status();
    res.synced_vps = *synced;
  }
  res.points = src.rows;

  spdlog::info("exact neighbours of {} queries over {} rows", src.nq, src.rows);
  const Truth truth = exact_truth(src, src.rows, o.k, l2);

  auto exact = batch_queries(server, src, o.k, json{{"exact", true}});
  if (!exact.is_ok()) return exact.status();
  res.exact_qps = exact->first;
  res.exact_recall = recall(exact->second, truth.all, o.k);
  spdlog::info("exact: {:.1f} queries/s, recall@{} {:.4f}", res.exact_qps, o.k, res.exact_recall);
  if (!o.index.empty()) {
    const bool ivf = o.index.rfind("IVF", 0) == 0;
    for (int p : o.probes) {
      auto a = batch_queries(server, src, o.k, json{{ivf ? "ivf_nprobe" : "hnsw_ef", p}});
      if (!a.is_ok()) return a.status();
      res.approx.push_back({p, a->first, recall(a->second, truth.all, o.k)});
      spdlog::info("{} {}: {:.1f} queries/s, recall@{} {:.4f}", ivf ? "nprobe" : "ef", p, a->first, o.k,
                   res.approx.back().recall);
    }
  }
  if (o.payloads) {
    const auto t_index = Clock::now();
    VECSTASH_RETURN_IF_ERROR(server
                                 .call(api::Method::kPut, "/collections/scale/index?wait=true",
                                       json{{"field_name", "bucket"}, {"field_schema", "keyword"}}.dump())
                                 .status());
    res.index_build_s = seconds_since(t_index);
    auto plain = single_queries(server, src, o.k, false);
    if (!plain.is_ok()) return plain.status();
    auto filtered = single_queries(server, src, o.k, true);
    if (!filtered.is_ok()) return filtered.status();
    res.unfiltered_qps = plain->first;
    res.filtered_qps = filtered->first;
    std::vector<std::vector<std::int64_t>> want(
        truth.filtered.begin(), truth.filtered.begin() + static_cast<std::ptrdiff_t>(filtered->second.size()));
    res.filtered_recall = recall(filtered->second, want, o.k);
    res.filtered_matches = src.rows / kBuckets;
    spdlog::info("one query per request: unfiltered {:.1f}/s, 1 % filter {:.1f}/s (recall {:.4f})", res.unfiltered_qps,
                 res.filtered_qps, res.filtered_recall);
  }
  res.reopen_rss_per_point = (static_cast<double>(server.rss()) - res.empty_rss) / static_cast<double>(src.rows);
  server.stop();
  return res;
}

std::string format_scale_report(const std::vector<ScaleBenchResult>& results) {
  std::string out;
  out +=
      "| data | points | kind | index | bulk ingest (pts/s) | synced ingest (pts/s) | RSS/pt steady | RSS/pt peak "
      "| reported/pt | RSS/pt after reopen | disk/pt | reopen (s) | exact q/s | exact recall@10 |\n";
  out += "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& r : results) {
    out += fmt::format(
        "| {} | {} | {} | {} | {:.0f} | {:.0f} | {:.0f} B | {:.0f} B | {:.0f} B | {:.0f} B | {:.0f} B | {:.2f} | "
        "{:.1f} | {:.4f} |\n",
        r.dataset, r.points, r.kind, r.index.empty() ? "-" : r.index, r.bulk_vps, r.synced_vps, r.steady_rss_per_point,
        r.peak_rss_per_point, r.reported_per_point, r.reopen_rss_per_point, r.disk_per_point, r.reopen_s, r.exact_qps,
        r.exact_recall);
  }
  bool any_approx = false, any_filter = false;
  for (const auto& r : results) {
    any_approx |= !r.approx.empty();
    any_filter |= r.filtered_qps > 0;
  }
  if (any_approx) {
    out += "\n| data | index | nprobe / ef | q/s | recall@10 |\n|---|---|---:|---:|---:|\n";
    for (const auto& r : results) {
      for (const auto& a : r.approx) {
        out += fmt::format("| {} | {} | {} | {:.1f} | {:.4f} |\n", r.dataset, r.index, a.probe, a.qps, a.recall);
      }
    }
  }
  if (any_filter) {
    out +=
        "\n| data | keyword index build (s) | unfiltered q/s (1 per request) | 1 %-filtered q/s | filtered / "
        "unfiltered "
        "time | filtered recall@10 |\n|---|---:|---:|---:|---:|---:|\n";
    for (const auto& r : results) {
      if (r.filtered_qps <= 0) continue;
      out += fmt::format("| {} | {:.2f} | {:.1f} | {:.1f} | {:.3f} | {:.4f} |\n", r.dataset, r.index_build_s,
                         r.unfiltered_qps, r.filtered_qps, r.unfiltered_qps / r.filtered_qps, r.filtered_recall);
    }
  }
  if (!results.empty()) out += "\nMachine: " + results.front().machine + ".\n";
  return out;
}

std::string scale_results_to_csv(const std::vector<ScaleBenchResult>& results) {
  std::string out =
      "dataset,points,dim,kind,index,bulk_vps,synced_vps,empty_rss,steady_rss_per_point,peak_rss_per_point,"
      "reported_per_point,reopen_rss_per_point,disk_per_point,reopen_s,exact_qps,exact_recall,probe,approx_qps,"
      "approx_recall,index_build_s,unfiltered_qps,filtered_qps,filtered_recall\n";
  for (const auto& r : results) {
    std::vector<ScaleBenchResult::Approx> rows = r.approx;
    if (rows.empty()) rows.push_back({0, 0, 0});
    for (const auto& a : rows) {
      out += fmt::format(
          "{},{},{},{},{},{:.1f},{:.1f},{:.0f},{:.1f},{:.1f},{:.1f},{:.1f},{:.1f},{:.3f},{:.2f},{:.4f},{},{:.2f},{:.4f}"
          ",{:.3f},{:.2f},{:.2f},{:.4f}\n",
          r.dataset, r.points, r.dim, r.kind, r.index, r.bulk_vps, r.synced_vps, r.empty_rss, r.steady_rss_per_point,
          r.peak_rss_per_point, r.reported_per_point, r.reopen_rss_per_point, r.disk_per_point, r.reopen_s, r.exact_qps,
          r.exact_recall, a.probe, a.qps, a.recall, r.index_build_s, r.unfiltered_qps, r.filtered_qps,
          r.filtered_recall);
    }
  }
  return out;
}

}  // namespace vecstash::bench
