// Speed of the CPU kernels per code variant on generated data (Google Benchmark):
//   encode/<variant>     Codec::encode of 10,000 x 128 rows (items = vectors)
//   scan_<metric>/<variant>  search_cpu of 16 queries over the 10,000 codes, k = 10 (items = vectors scanned)
//   flat/<set>/<method>  exact top-10 inner-product search of 1,000 queries over 100,000 x 100 rows
//                        (items = queries): FAISS IndexFlatIP (float32, BLAS sgemm), search_cpu over
//                        int8 codes, and the int8 candidate scan (top 40) + float32 rescoring
//                        (search_i8_candidates_cpu + rescore_f32). Sets: "generated" (embedding-like,
//                        64 clusters, rows normalised) and "glove100k" (../shared/data, when present).
//                        Counter recall10 = recall@10 against exact float32 search.
// One kernel thread, so figures are per core (run the FAISS case with OPENBLAS_NUM_THREADS=1).
// Accuracy lives in `vecstash bench compression`.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#if defined(_OPENMP)
#include <omp.h>
#endif
#if VECSTASH_BENCH_FAISS
#include <faiss/IndexFlat.h>
// OpenBLAS's thread control, when FAISS's BLAS is OpenBLAS (weak: null with another BLAS).
extern "C" void openblas_set_num_threads(int) __attribute__((weak));
#endif

#include "benchmarks/compression_sweep.h"
#include "benchmarks/datasets.h"
#include "benchmarks/vecs_io.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/search.h"

namespace {

namespace bench = vecstash::bench;
namespace kernels = vecstash::kernels;
using vecstash::Metric;

constexpr std::size_t kRows = 10000;
constexpr std::size_t kDim = 128;
constexpr std::size_t kQueries = 16;

// Anisotropic Gaussian rows (per-dimension spread varies like real embeddings), fixed seed.
bench::FloatMatrix generated(std::size_t rows, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  bench::FloatMatrix m(rows, kDim);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < kDim; ++j) m.row(i)[j] = normal(rng) * (0.2f + static_cast<float>(j % 7)) + 0.1f * j;
  }
  return m;
}

const bench::FloatMatrix& base() {
  static const bench::FloatMatrix m = generated(kRows, 1);
  return m;
}
const bench::FloatMatrix& queries() {
  static const bench::FloatMatrix m = generated(kQueries, 2);
  return m;
}

kernels::Codec train(const bench::CodeVariant& v, benchmark::State& state) {
  auto codec = kernels::Codec::train(v.codec, base().view());
  if (!codec.is_ok()) state.SkipWithError(codec.status().to_string().c_str());
  return codec.is_ok() ? std::move(codec).value() : kernels::Codec();
}

void encode(benchmark::State& state, const bench::CodeVariant& v) {
  const kernels::Codec codec = train(v, state);
  if (!codec.trained()) return;
  std::vector<std::uint8_t> codes(kRows * codec.code_size());
  std::vector<float> norms(kRows);
  for (auto _ : state) {
    const auto s = codec.encode(base().view(), codes, norms, 1);
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(codes.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows));
  state.counters["bytes_per_vector"] = static_cast<double>(codec.code_size());
}

void scan(benchmark::State& state, const bench::CodeVariant& v, Metric metric) {
  const kernels::Codec codec = train(v, state);
  if (!codec.trained()) return;
  std::vector<std::uint8_t> codes(kRows * codec.code_size());
  std::vector<float> norms(kRows);
  if (auto s = codec.encode(base().view(), codes, norms, 1); !s.is_ok()) {
    state.SkipWithError(s.to_string().c_str());
    return;
  }
  const kernels::CodeView view{codes.data(), kRows, norms.data()};
  kernels::TopK out;
  for (auto _ : state) {
    const auto s = kernels::search_cpu(codec, queries().view(), view, {metric, 10, 1}, &out);
    if (!s.is_ok()) state.SkipWithError(s.to_string().c_str());
    benchmark::DoNotOptimize(out.ids.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kRows * kQueries));
}

// ---- flat top-10 search: FAISS IndexFlatIP vs int8 scans -----------------------------------------

constexpr std::size_t kFlatRows = 100000, kFlatDim = 100, kFlatQueries = 1000, kFlatK = 10, kOversample = 4;

/// A data set with its int8 codes and the exact float32 top-10 (the recall reference).
struct FlatSet {
  std::string error;  // non-empty: the set is not available
  bench::FloatMatrix base, queries;
  kernels::Codec codec;
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
  kernels::TopK exact;
  kernels::CodeView view() const { return {codes.data(), base.rows, norms.data()}; }
};

const FlatSet& flat_set(const std::string& name) {
  static std::map<std::string, std::unique_ptr<FlatSet>> cache;
  auto& slot = cache[name];
  if (slot) return *slot;
  slot = std::make_unique<FlatSet>();
  FlatSet& s = *slot;
  auto ds = name == "generated"
                ? vecstash::Result<bench::Dataset>(bench::make_synthetic_dataset(kFlatRows, kFlatDim, kFlatQueries, 7))
                : bench::load_named_dataset(name, bench::DatasetOptions{});
  if (!ds.is_ok()) {
    s.error = ds.status().to_string();
    return s;
  }
  s.base = std::move(ds->base);
  s.queries = std::move(ds->queries);
  bench::normalize_rows(s.base);  // cosine data scored as inner product, as IndexFlatIP over normalised rows
  bench::normalize_rows(s.queries);
  kernels::CodecOptions o;
  o.kind = vecstash::CodeKind::kI8;
  auto codec = kernels::Codec::train(o, s.base.view());
  if (!codec.is_ok()) {
    s.error = codec.status().to_string();
    return s;
  }
  s.codec = std::move(codec).value();
  s.codes.resize(s.base.rows * s.codec.code_size());
  s.norms.resize(s.base.rows);
  if (auto st = s.codec.encode(s.base.view(), s.codes, s.norms); !st.is_ok()) s.error = st.to_string();
  if (auto st = kernels::search_f32(s.queries.view(), s.base.view(), {Metric::kIp, kFlatK, 0}, &s.exact); !st.is_ok())
    s.error = st.to_string();
  return s;
}

template <typename Ids>
double recall10(const FlatSet& s, const Ids& ids, std::size_t stride) {
  std::size_t found = 0;
  for (std::size_t q = 0; q < s.queries.rows; ++q) {
    const auto want = s.exact.ids_of(q);
    for (std::size_t i = 0; i < kFlatK; ++i)
      found += std::find(want.begin(), want.end(), static_cast<std::int64_t>(ids[q * stride + i])) != want.end();
  }
  return static_cast<double>(found) / static_cast<double>(s.queries.rows * kFlatK);
}

void flat_report(benchmark::State& state, const FlatSet& s, double recall) {
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * s.queries.rows));
  state.counters["recall10"] = recall;
  state.counters["rows"] = static_cast<double>(s.base.rows);
}

#if VECSTASH_BENCH_FAISS
void flat_faiss(benchmark::State& state, const std::string& set) {
  const FlatSet& s = flat_set(set);
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  // One thread, like the vecstash cases: FAISS's own OpenMP loops and the BLAS (also set
  // OPENBLAS_NUM_THREADS=1, which takes effect before any BLAS call).
#if defined(_OPENMP)
  omp_set_num_threads(1);
#endif
  if (openblas_set_num_threads != nullptr) openblas_set_num_threads(1);
  faiss::IndexFlatIP index(static_cast<faiss::Index::idx_t>(s.base.cols));
  index.add(static_cast<faiss::Index::idx_t>(s.base.rows), s.base.data.data());
  std::vector<float> d(s.queries.rows * kFlatK);
  std::vector<faiss::Index::idx_t> ids(s.queries.rows * kFlatK);
  for (auto _ : state) {
    index.search(static_cast<faiss::Index::idx_t>(s.queries.rows), s.queries.data.data(), kFlatK, d.data(), ids.data());
    benchmark::DoNotOptimize(ids.data());
  }
  flat_report(state, s, recall10(s, ids, kFlatK));
}
#endif

void flat_search_cpu_i8(benchmark::State& state, const std::string& set) {
  const FlatSet& s = flat_set(set);
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  kernels::TopK out;
  for (auto _ : state) {
    if (auto st = kernels::search_cpu(s.codec, s.queries.view(), s.view(), {Metric::kIp, kFlatK, 1}, &out); !st.is_ok())
      return state.SkipWithError(st.to_string().c_str());
    benchmark::DoNotOptimize(out.ids.data());
  }
  flat_report(state, s, recall10(s, out.ids, kFlatK));
}

/// The int8 candidate scan alone (rescore = false) or followed by float32 rescoring of its top 40.
void flat_i8_candidates(benchmark::State& state, const std::string& set, bool rescore) {
  const FlatSet& s = flat_set(set);
  if (!s.error.empty()) return state.SkipWithError(s.error.c_str());
  kernels::TopK cand, out;
  for (auto _ : state) {
    if (auto st = kernels::search_i8_candidates_cpu(s.codec, s.queries.view(), s.view(),
                                                    {Metric::kIp, kOversample * kFlatK, 1}, &cand);
        !st.is_ok())
      return state.SkipWithError(st.to_string().c_str());
    if (rescore) {
      if (auto st = kernels::rescore_f32(s.queries.view(), s.base.view(), cand, {Metric::kIp, kFlatK, 1}, &out);
          !st.is_ok())
        return state.SkipWithError(st.to_string().c_str());
    }
    benchmark::DoNotOptimize(cand.ids.data());
    benchmark::DoNotOptimize(out.ids.data());
  }
  flat_report(state, s, rescore ? recall10(s, out.ids, kFlatK) : recall10(s, cand.ids, kOversample * kFlatK));
}

}  // namespace

int main(int argc, char** argv) {
  for (const bench::CodeVariant& v : bench::standard_code_variants()) {
    benchmark::RegisterBenchmark(("encode/" + v.name).c_str(), encode, v)->Unit(benchmark::kMicrosecond);
    const std::vector<Metric> metrics =
        v.hamming ? std::vector<Metric>{Metric::kHamming} : std::vector<Metric>{Metric::kIp, Metric::kL2};
    for (Metric m : metrics) {
      benchmark::RegisterBenchmark(("scan_" + std::string(vecstash::to_string(m)) + "/" + v.name).c_str(), scan, v, m)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (const std::string set : {"generated", "glove100k"}) {
    const std::string prefix = "flat/" + set + "/";
#if VECSTASH_BENCH_FAISS
    benchmark::RegisterBenchmark((prefix + "faiss_flat_ip").c_str(), flat_faiss, set)->Unit(benchmark::kMillisecond);
#endif
    benchmark::RegisterBenchmark((prefix + "search_cpu_i8").c_str(), flat_search_cpu_i8, set)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((prefix + "i8_candidates40").c_str(), flat_i8_candidates, set, false)
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((prefix + "i8_candidates40_rescore_f32").c_str(), flat_i8_candidates, set, true)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
