// vecstash_gpu_timing: times GPU encode, upload and fused search per code kind, with the CPU
// reference timed on a smaller slice for comparison, and prints one plain table; then times the fused
// relative-representation encode (relative.h: rows -> cosines to the anchors -> codes) per kind in a
// second table. Host code only (it drives the backend through the CUDA-free public API); run by
// scripts/gpu-check.sh.
//
//   vecstash_gpu_timing [--rows N] [--dim D] [--queries Q] [--k K] [--cpu-rows N] [--cpu-queries Q]
//                       [--kinds f32,f16,bf16,e4m3,e5m2,i8,b1]
//                       [--anchors M] [--relative-kinds i8,e4m3] [--relative-cpu-rows N]
//
// --anchors 0 skips the relative table (default 1024 anchors; the relative codecs use the default
// CodecOptions of their kind; the CPU reference encodes the first --relative-cpu-rows rows, default
// 20000, and the "same" column is the share of element code bytes that the GPU reproduces there).
// GPU times include the host<->device copies (encode is host in, host out; upload copies the codes;
// search copies queries in and results out). Exit status: 0 on success (also when no GPU is present,
// which is reported), 1 when a GPU call fails, 2 on bad arguments.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/gpu.h"
#include "vecstash/kernels/relative.h"
#include "vecstash/kernels/search.h"

namespace {

using vecstash::CodeKind;
using vecstash::MatrixView;
using vecstash::Metric;
using vecstash::ScaleMode;
using vecstash::Status;
namespace k = vecstash::kernels;

struct Options {
  std::size_t rows = 1000000;
  std::size_t dim = 384;
  std::size_t queries = 1000;
  std::size_t k = 10;
  std::size_t cpu_rows = 100000;
  std::size_t cpu_queries = 100;
  std::vector<CodeKind> kinds = {CodeKind::kF32,  CodeKind::kF16, CodeKind::kBF16, CodeKind::kE4M3,
                                 CodeKind::kE5M2, CodeKind::kI8,  CodeKind::kB1};
  std::size_t anchors = 1024;  // 0: no relative table
  std::vector<CodeKind> relative_kinds = {CodeKind::kI8, CodeKind::kE4M3};
  std::size_t relative_cpu_rows = 20000;
};

/// "f16,e4m3,..." -> kinds; false on an unknown name.
bool parse_kinds(const std::string& list, std::vector<CodeKind>* out) {
  out->clear();
  std::size_t p = 0;
  while (p <= list.size()) {
    const std::size_t q = std::min(list.find(',', p), list.size());
    const auto kind = vecstash::parse_code_kind(list.substr(p, q - p));
    if (!kind) return false;
    out->push_back(*kind);
    p = q + 1;
  }
  return true;
}

bool parse_size(const char* s, std::size_t* out) {
  char* end = nullptr;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (end == s || *end != '\0') return false;
  *out = static_cast<std::size_t>(v);
  return true;
}

bool parse(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) return false;
    const char* v = argv[++i];
    bool ok = true;
    if (a == "--rows")
      ok = parse_size(v, &o->rows);
    else if (a == "--dim")
      ok = parse_size(v, &o->dim);
    else if (a == "--queries")
      ok = parse_size(v, &o->queries);
    else if (a == "--k")
      ok = parse_size(v, &o->k);
    else if (a == "--cpu-rows")
      ok = parse_size(v, &o->cpu_rows);
    else if (a == "--cpu-queries")
      ok = parse_size(v, &o->cpu_queries);
    else if (a == "--kinds")
      ok = parse_kinds(v, &o->kinds);
    else if (a == "--anchors")
      ok = parse_size(v, &o->anchors);
    else if (a == "--relative-kinds")
      ok = parse_kinds(v, &o->relative_kinds);
    else if (a == "--relative-cpu-rows")
      ok = parse_size(v, &o->relative_cpu_rows);
    else {
      return false;
    }
    if (!ok) return false;
  }
  o->cpu_rows = std::min(o->cpu_rows, o->rows);
  o->cpu_queries = std::min(o->cpu_queries, o->queries);
  o->relative_cpu_rows = std::min(o->relative_cpu_rows, o->rows);
  return o->rows > 0 && o->dim > 0 && o->queries > 0 && o->k > 0 && o->k <= k::kMaxK;
}

/// Embedding-like rows (per-dimension mean and spread, roughly Gaussian), generated in parallel from
/// a counter-based hash so that the data does not depend on the thread count.
std::vector<float> make_rows(std::size_t rows, std::size_t dim, std::uint64_t seed) {
  auto mix = [](std::uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  auto uniform = [&](std::uint64_t c) { return static_cast<float>(mix(c) >> 40) * (1.0f / 16777216.0f); };
  std::vector<float> mu(dim), sd(dim);
  for (std::size_t j = 0; j < dim; ++j) {
    mu[j] = 0.5f * (uniform(seed * 7919 + 2 * j) - 0.5f);
    sd[j] = 0.05f + 2.0f * uniform(seed * 7919 + 2 * j + 1);
  }
  std::vector<float> x(rows * dim);
  const unsigned threads = std::max(1u, std::min(32u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      const std::size_t r0 = rows * t / threads, r1 = rows * (t + 1) / threads;
      for (std::size_t i = r0; i < r1; ++i)
        for (std::size_t j = 0; j < dim; ++j) {
          const std::uint64_t c = (seed << 48) ^ (i * dim + j) * 4;
          const float g = (uniform(c) + uniform(c + 1) + uniform(c + 2) - 1.5f) * 2.0f;  // ~N(0, 1)
          x[i * dim + j] = mu[j] + sd[j] * g;
        }
    });
  }
  for (auto& th : pool) th.join();
  return x;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

bool check(const Status& st, const char* what) {
  if (st.is_ok()) return true;
  std::fprintf(stderr, "%s failed: %s\n", what, st.to_string().c_str());
  return false;
}

/// Fraction of the CPU top-k ids that the GPU also returned (1.0 unless scores nearly tie).
double agreement(const k::TopK& a, const k::TopK& b) {
  std::size_t same = 0, total = 0;
  for (std::size_t q = 0; q < a.nq; ++q) {
    const auto ia = a.ids_of(q), ib = b.ids_of(q);
    const std::set<std::int64_t> s(ib.begin(), ib.end());
    for (std::int64_t id : ia) {
      if (id < 0) continue;
      ++total;
      same += s.count(id);
    }
  }
  return total ? static_cast<double>(same) / static_cast<double>(total) : 1.0;
}

/// The relative-representation table: GPU relative_encode of every row against o.anchors anchors, the
/// CPU RelativeBasis::encode on the first o.relative_cpu_rows rows, and the share of element code bytes
/// they agree on (gpu.h allows differences only at code boundaries; below 99% counts as a failure
/// for the quantising kinds).
/// Returns the number of failures.
int time_relative(k::GpuContext* gpu, const Options& o, const std::vector<float>& base) {
  if (o.anchors == 0 || o.relative_kinds.empty()) return 0;
  const std::vector<float> anchor_rows = make_rows(o.anchors, o.dim, 3);
  auto basis_r = k::RelativeBasis::make(MatrixView<const float>(anchor_rows.data(), o.anchors, o.dim), {});
  if (!check(basis_r.status(), "RelativeBasis::make")) return 1;
  const k::RelativeBasis basis = std::move(basis_r).value();
  const MatrixView<const float> rows(base.data(), o.rows, o.dim);
  const MatrixView<const float> cpu_rows(base.data(), o.relative_cpu_rows, o.dim);
  // Codecs are trained on relative vectors of a sample (CPU reference).
  const std::size_t sample_rows = std::min<std::size_t>(o.rows, 10000);
  std::vector<float> sample(sample_rows * o.anchors);
  if (!check(basis.transform(MatrixView<const float>(base.data(), sample_rows, o.dim),
                             MatrixView<float>(sample.data(), sample_rows, o.anchors)),
             "RelativeBasis::transform"))
    return 1;

  std::printf(
      "\nrelative encode: %zu x %zu rows -> cosines to %zu anchors -> codes (CPU reference on the first %zu rows)\n",
      o.rows, o.dim, o.anchors, o.relative_cpu_rows);
  std::printf("%-5s %-10s %5s | %10s %12s %12s | %12s | %8s\n", "kind", "scale", "code", "GPU s", "GPU rows/s",
              "GPU GB/s", "CPU rows/s", "same");
  std::printf("%-5s %-10s %5s | %10s %12s %12s | %12s | %8s\n", "", "", "bytes", "(all rows)", "", "(float in)", "",
              "bytes");
  int failures = 0;
  for (CodeKind kind : o.relative_kinds) {
    k::CodecOptions co;
    co.kind = kind;
    auto codec_r = k::Codec::train(co, MatrixView<const float>(sample.data(), sample_rows, o.anchors));
    if (!check(codec_r.status(), "Codec::train (relative)")) {
      ++failures;
      continue;
    }
    const k::Codec codec = std::move(codec_r).value();
    const std::size_t cs = codec.code_size();
    const std::size_t payload = codec.params().scale_mode == ScaleMode::kPerVector ? cs - 4 : cs;
    std::vector<std::uint8_t> codes(o.rows * cs);
    std::vector<float> norms(o.rows);
    // Warm-up on a small slice (cuBLAS initialises lazily).
    const std::size_t warm_rows = std::min<std::size_t>(o.rows, 256);
    std::vector<std::uint8_t> warm(warm_rows * cs);
    if (!check(gpu->relative_encode(basis, codec, MatrixView<const float>(base.data(), warm_rows, o.dim), warm, {}),
               "GPU relative encode")) {
      ++failures;
      continue;
    }
    auto t0 = std::chrono::steady_clock::now();
    if (!check(gpu->relative_encode(basis, codec, rows, codes, norms), "GPU relative encode")) {
      ++failures;
      continue;
    }
    const double gpu_s = seconds_since(t0);
    std::vector<std::uint8_t> cpu_codes(o.relative_cpu_rows * cs);
    std::vector<float> cpu_norms(o.relative_cpu_rows);
    t0 = std::chrono::steady_clock::now();
    if (!check(basis.encode(codec, cpu_rows, cpu_codes, cpu_norms), "CPU relative encode")) {
      ++failures;
      continue;
    }
    const double cpu_s = seconds_since(t0);
    std::size_t same = 0;
    for (std::size_t i = 0; i < o.relative_cpu_rows; ++i)
      for (std::size_t b = 0; b < payload; ++b) same += cpu_codes[i * cs + b] == codes[i * cs + b] ? 1 : 0;
    const double share =
        static_cast<double>(same) / static_cast<double>(std::max<std::size_t>(1, o.relative_cpu_rows * payload));
    // f32 codes are the cosines themselves: they differ in the last bits wherever the summation order
    // does (gpu.h bounds them by 1e-5), so only the quantising kinds are held to 99%.
    const bool low = share < 0.99 && kind != CodeKind::kF32;
    if (low) ++failures;
    std::printf("%-5s %-10s %5zu | %10.3f %12.0f %12.2f | %12.0f | %7.3f%%%s\n",
                std::string(vecstash::to_string(kind)).c_str(),
                std::string(vecstash::to_string(codec.params().scale_mode)).c_str(), cs, gpu_s,
                static_cast<double>(o.rows) / gpu_s, static_cast<double>(o.rows * o.dim * sizeof(float)) / 1e9 / gpu_s,
                static_cast<double>(o.relative_cpu_rows) / cpu_s, 100.0 * share, low ? "  LOW AGREEMENT" : "");
    std::fflush(stdout);
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!parse(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: vecstash_gpu_timing [--rows N] [--dim D] [--queries Q] [--k K] [--cpu-rows N] "
                 "[--cpu-queries Q] [--kinds f32,f16,...] [--anchors M] [--relative-kinds i8,e4m3] "
                 "[--relative-cpu-rows N]\n");
    return 2;
  }
  if (!k::gpu_available()) {
    std::printf("no CUDA device (%s): nothing to time\n", k::gpu_description().c_str());
    return 0;
  }
  auto ctx_r = k::GpuContext::create(0);
  if (!ctx_r.is_ok()) {
    std::fprintf(stderr, "GpuContext::create: %s\n", ctx_r.status().to_string().c_str());
    return 1;
  }
  std::unique_ptr<k::GpuContext> gpu = std::move(ctx_r).value();

  std::printf("device: %s\n", k::gpu_description().c_str());
  std::printf(
      "data: %zu x %zu float32 rows (CPU reference on the first %zu), %zu queries (CPU: %zu), k = %zu, "
      "%u host threads\n",
      o.rows, o.dim, o.cpu_rows, o.queries, o.cpu_queries, o.k, std::thread::hardware_concurrency());
  auto t0 = std::chrono::steady_clock::now();
  const std::vector<float> base = make_rows(o.rows, o.dim, 1);
  const std::vector<float> qdata = make_rows(o.queries, o.dim, 2);
  std::printf("generated data in %.1f s\n\n", seconds_since(t0));
  const MatrixView<const float> rows(base.data(), o.rows, o.dim);
  const MatrixView<const float> cpu_rows(base.data(), o.cpu_rows, o.dim);
  const MatrixView<const float> queries(qdata.data(), o.queries, o.dim);
  const MatrixView<const float> cpu_queries(qdata.data(), o.cpu_queries, o.dim);
  const double in_gb = static_cast<double>(o.rows * o.dim * sizeof(float)) / 1e9;
  const double cpu_in_gb = static_cast<double>(o.cpu_rows * o.dim * sizeof(float)) / 1e9;

  std::printf("%-5s %-7s %5s | %12s %12s | %11s %9s | %12s %14s %16s | %7s\n", "kind", "metric", "code", "enc GPU GB/s",
              "enc CPU GB/s", "upload GB/s", "upload s", "search GPU", "search GPU q/s", "search CPU q/s", "agree");
  std::printf("%-5s %-7s %5s | %12s %12s | %11s %9s | %12s %14s %16s | %7s\n", "", "", "bytes", "(float in)",
              "(float in)", "(codes)", "", "s", "(full rows)", "(CPU rows)", "top-k");
  int failures = 0;
  for (CodeKind kind : o.kinds) {
    k::CodecOptions co;
    co.kind = kind;
    co.scale = ScaleMode::kPerDim;
    auto codec_r =
        k::Codec::train(co, MatrixView<const float>(base.data(), std::min<std::size_t>(o.rows, 20000), o.dim));
    if (!check(codec_r.status(), "Codec::train")) {
      ++failures;
      continue;
    }
    const k::Codec codec = std::move(codec_r).value();
    const std::size_t cs = codec.code_size();
    std::vector<std::uint8_t> codes(o.rows * cs);
    std::vector<float> norms(o.rows);

    // Encode: GPU on all rows (the first call also warms the context), CPU on the reference slice.
    std::vector<std::uint8_t> warm_codes(o.cpu_queries * cs);
    if (!check(gpu->encode(codec, cpu_queries, warm_codes, {}), "GPU encode")) {
      ++failures;
      continue;
    }
    t0 = std::chrono::steady_clock::now();
    if (!check(gpu->encode(codec, rows, codes, norms), "GPU encode")) {
      ++failures;
      continue;
    }
    const double enc_gpu = seconds_since(t0);
    std::vector<std::uint8_t> cpu_codes(o.cpu_rows * cs);
    std::vector<float> cpu_norms(o.cpu_rows);
    t0 = std::chrono::steady_clock::now();
    if (!check(codec.encode(cpu_rows, cpu_codes, cpu_norms), "CPU encode")) {
      ++failures;
      continue;
    }
    const double enc_cpu = seconds_since(t0);
    const bool codes_match = std::memcmp(cpu_codes.data(), codes.data(), cpu_codes.size()) == 0;
    if (!codes_match) {
      std::fprintf(stderr, "%s: GPU codes differ from the CPU codes\n", std::string(vecstash::to_string(kind)).c_str());
      ++failures;
    }

    std::vector<Metric> metrics = {Metric::kIp};
    if (kind == CodeKind::kB1) metrics.push_back(Metric::kHamming);
    for (Metric metric : metrics) {
      k::SearchParams sp;
      sp.metric = metric;
      sp.k = o.k;
      // Upload + search over all rows.
      t0 = std::chrono::steady_clock::now();
      if (!check(gpu->upload_codes(codec, k::CodeView{codes.data(), o.rows, norms.data()}), "GPU upload")) {
        ++failures;
        continue;
      }
      const double upload = seconds_since(t0);
      k::TopK warm, got;
      if (!check(gpu->search(MatrixView<const float>(qdata.data(), 1, o.dim), sp, &warm), "GPU search")) {
        ++failures;
        continue;
      }
      t0 = std::chrono::steady_clock::now();
      if (!check(gpu->search(queries, sp, &got), "GPU search")) {
        ++failures;
        continue;
      }
      const double search_gpu = seconds_since(t0);

      // CPU reference on the slice, and the GPU on the same slice for the agreement column.
      k::TopK cpu_top, gpu_top;
      const k::CodeView cpu_view{codes.data(), o.cpu_rows, norms.data()};
      t0 = std::chrono::steady_clock::now();
      if (!check(k::search_cpu(codec, cpu_queries, cpu_view, sp, &cpu_top), "CPU search")) {
        ++failures;
        continue;
      }
      const double search_cpu = seconds_since(t0);
      if (!check(gpu->upload_codes(codec, cpu_view), "GPU upload") ||
          !check(gpu->search(cpu_queries, sp, &gpu_top), "GPU search")) {
        ++failures;
        continue;
      }
      // Near-ties at the k-th score can swap an id or two; far below 100% means a broken backend.
      const double agree = agreement(cpu_top, gpu_top);
      if (agree < 0.9) ++failures;

      const double code_gb = static_cast<double>(o.rows * cs) / 1e9;
      std::printf("%-5s %-7s %5zu | %12.2f %12.2f | %11.2f %9.3f | %12.3f %14.0f %16.0f | %6.2f%%%s\n",
                  std::string(vecstash::to_string(kind)).c_str(), std::string(vecstash::to_string(metric)).c_str(), cs,
                  in_gb / enc_gpu, cpu_in_gb / enc_cpu, code_gb / upload, upload, search_gpu,
                  static_cast<double>(o.queries) / search_gpu, static_cast<double>(o.cpu_queries) / search_cpu,
                  100.0 * agree, codes_match ? (agree < 0.99 ? "  LOW AGREEMENT" : "") : "  CODES DIFFER");
      std::fflush(stdout);
    }
  }
  std::printf(
      "\nGPU search: %zu queries over %zu rows; CPU search: %zu queries over %zu rows "
      "(CPU q/s at full size is about (CPU rows / full rows) of the figure shown).\n",
      o.queries, o.rows, o.cpu_queries, o.cpu_rows);
  failures += time_relative(gpu.get(), o, base);
  if (failures > 0) {
    std::printf("%d failure(s)\n", failures);
    return 1;
  }
  return 0;
}
