// Speed of the CPU kernels per code variant on generated data (Google Benchmark):
//   encode/<variant>     Codec::encode of 10,000 x 128 rows (items = vectors)
//   scan_<metric>/<variant>  search_cpu of 16 queries over the 10,000 codes, k = 10 (items = vectors scanned)
// One kernel thread, so figures are per core. Accuracy lives in `vecstash bench compression`.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "benchmarks/compression_sweep.h"
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
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
