// CPU <-> CUDA parity (ctest label `gpu`). Every test skips with the reason when no CUDA device is
// present (or the build has no CUDA backend). The contract checked is the one stated in gpu.h:
// codes and decoded values bit-identical, squared norms within 1e-5 relative, search scores within
// tolerance with the same ids except near-ties (ties ordered by row), PCA in the same subspace,
// relative representations within 1e-5 with codes at most one step apart (>= 99% of bytes equal).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/relative_helpers.h"
#include "testing/random_data.h"
#include "vecstash/kernels/gpu.h"
#include "vecstash/kernels/relative.h"

namespace vecstash::kernels {
namespace {

using testing::Matrix;

/// One context per test process, created on first use and deliberately never destroyed (tearing
/// CUDA down during static destruction gains nothing in a test binary).
GpuContext* shared_context(std::string* why) {
  static GpuContext* ctx = nullptr;
  static std::string error;
  static bool tried = false;
  if (!tried) {
    tried = true;
    auto r = GpuContext::create(0);
    if (r.is_ok())
      ctx = std::move(r).value().release();
    else
      error = r.status().to_string();
  }
  *why = error;
  return ctx;
}

#define REQUIRE_GPU(gpu)                                     \
  if (!gpu_available()) {                                    \
    GTEST_SKIP() << "no CUDA device: " << gpu_description(); \
  }                                                          \
  std::string gpu##_why;                                     \
  GpuContext* gpu = shared_context(&gpu##_why);              \
  ASSERT_NE(gpu, nullptr) << "GpuContext::create failed although a device is present: " << gpu##_why

struct KindMode {
  CodeKind kind;
  ScaleMode mode;
  double clip = 0.0;  // int8 clip percentile
};
std::string name_of(const KindMode& km) {
  std::string s = std::string(to_string(km.kind)) + "_" + std::string(to_string(km.mode));
  if (km.clip > 0) s += "_clip";
  for (auto& c : s)
    if (c == '-') c = '_';
  return s;
}
// Scale modes apply to float8 only (the CPU codec maps any other request to kNone).
const std::vector<KindMode> kAllKinds = {
    {CodeKind::kF32, ScaleMode::kNone},       {CodeKind::kF16, ScaleMode::kNone},
    {CodeKind::kBF16, ScaleMode::kNone},      {CodeKind::kE4M3, ScaleMode::kNone},
    {CodeKind::kE4M3, ScaleMode::kPerVector}, {CodeKind::kE4M3, ScaleMode::kPerDim},
    {CodeKind::kE5M2, ScaleMode::kNone},      {CodeKind::kE5M2, ScaleMode::kPerVector},
    {CodeKind::kE5M2, ScaleMode::kPerDim},    {CodeKind::kI8, ScaleMode::kNone},
    {CodeKind::kI8, ScaleMode::kNone, 0.5},   {CodeKind::kB1, ScaleMode::kNone}};

Codec train(const KindMode& km, const Matrix& sample) {
  CodecOptions o;
  o.kind = km.kind;
  o.scale = km.mode;
  o.int8_clip_percent = km.clip;
  auto c = Codec::train(o, sample.view());
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return c.is_ok() ? std::move(c).value() : Codec();
}

/// Rows that exercise the corners of the conversions: zeros, values that round to -0 or to
/// subnormals, values far outside the calibrated range (saturation / clamping), exact f16 and
/// bf16 rounding ties, and a negated copy of an ordinary row.
Matrix with_special_rows(const Matrix& base, std::size_t dim) {
  Matrix m(base.rows + 6, dim);
  std::copy(base.data.begin(), base.data.end(), m.data.begin());
  float* z = m.row(base.rows);
  float* tiny = m.row(base.rows + 1);
  float* huge = m.row(base.rows + 2);
  float* ties = m.row(base.rows + 3);
  float* neg = m.row(base.rows + 4);
  float* mixed = m.row(base.rows + 5);
  for (std::size_t j = 0; j < dim; ++j) {
    const float sgn = (j % 2) ? -1.0f : 1.0f;
    z[j] = 0.0f;
    tiny[j] = sgn * std::ldexp(1.0f, -20 - static_cast<int>(j % 110));  // down to float subnormals
    huge[j] = sgn * (j % 3 == 0 ? 1e30f : (j % 3 == 1 ? 70000.0f : 500.0f));
    ties[j] = sgn * (1.0f + std::ldexp(1.0f, -11) * static_cast<float>(1 + 2 * (j % 4)));  // f16 ties
    if (j % 5 == 4) ties[j] = sgn * (1.0f + std::ldexp(1.0f, -8));                         // bf16 tie
    neg[j] = -base.row(0)[j];
    mixed[j] = (j % 7 == 0) ? -0.0f : base.row(1)[j] * 3.0f;
  }
  return m;
}

std::string where_codes_differ(const std::vector<std::uint8_t>& a, const std::vector<std::uint8_t>& b,
                               std::size_t code_size) {
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i] != b[i]) {
      std::ostringstream os;
      os << "first difference at row " << i / code_size << ", byte " << i % code_size << ": cpu 0x" << std::hex
         << int(a[i]) << " gpu 0x" << int(b[i]);
      return os.str();
    }
  }
  return "equal";
}

// ---- codec ------------------------------------------------------------------------------------

class GpuCodecParity : public ::testing::TestWithParam<KindMode> {};

TEST_P(GpuCodecParity, CodesNormsAndDecodeMatchCpu) {
  REQUIRE_GPU(gpu);
  const KindMode km = GetParam();
  for (std::size_t dim : {1, 7, 97, 384, 1536}) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    const Matrix sample = testing::anisotropic(400, dim, 7000 + dim);
    const Codec codec = train(km, sample);
    ASSERT_TRUE(codec.trained());
    const Matrix data = with_special_rows(testing::anisotropic(251, dim, 8000 + dim), dim);
    const std::size_t n = data.rows, cs = codec.code_size();

    // A strided input view: the GPU copies rows with their stride.
    Matrix wide(n, dim + 3);
    for (std::size_t i = 0; i < n; ++i) std::copy(data.row(i), data.row(i) + dim, wide.row(i));
    const MatrixView<const float> strided(wide.data.data(), n, dim, dim + 3);

    std::vector<std::uint8_t> cpu_codes(n * cs), gpu_codes(n * cs, 0xAB);
    std::vector<float> cpu_norms(n), gpu_norms(n, -1.0f);
    ASSERT_TRUE(codec.encode(data.view(), cpu_codes, cpu_norms).is_ok());
    const Status st = gpu->encode(codec, strided, gpu_codes, gpu_norms);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    ASSERT_TRUE(cpu_codes == gpu_codes) << name_of(km) << ": " << where_codes_differ(cpu_codes, gpu_codes, cs);
    for (std::size_t i = 0; i < n; ++i) {
      if (gpu_norms[i] == cpu_norms[i]) continue;  // also covers norms that overflow to inf on both sides
      ASSERT_NEAR(gpu_norms[i], cpu_norms[i], 1e-5 * std::fabs(cpu_norms[i]) + 1e-30) << "row " << i;
    }

    // Norms are optional.
    std::vector<std::uint8_t> codes2(n * cs);
    ASSERT_TRUE(gpu->encode(codec, data.view(), codes2, {}).is_ok());
    ASSERT_TRUE(codes2 == cpu_codes);

    // Decode the same (CPU) codes on both sides into a strided output: bit-identical floats.
    Matrix cpu_out(n, dim), gpu_wide(n, dim + 5);
    ASSERT_TRUE(codec.decode(cpu_codes, cpu_out.mut()).is_ok());
    const MatrixView<float> gpu_out(gpu_wide.data.data(), n, dim, dim + 5);
    const Status ds = gpu->decode(codec, cpu_codes, gpu_out);
    ASSERT_TRUE(ds.is_ok()) << ds.to_string();
    for (std::size_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(cpu_out.row(i), gpu_out.row(i), dim * sizeof(float)), 0)
          << name_of(km) << ": decoded row " << i << " differs (first element cpu " << cpu_out.row(i)[0] << ", gpu "
          << gpu_out.row(i)[0] << ")";
    }

    // Empty input is valid.
    ASSERT_TRUE(gpu->encode(codec, MatrixView<const float>(), {}, {}).is_ok());
    ASSERT_TRUE(gpu->decode(codec, {}, MatrixView<float>()).is_ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Kinds, GpuCodecParity, ::testing::ValuesIn(kAllKinds),
                         [](const auto& info) { return name_of(info.param); });

// ---- search -----------------------------------------------------------------------------------

struct SearchCase {
  KindMode km;
  Metric metric;
};
std::string name_of(const SearchCase& c) { return name_of(c.km) + "_" + std::string(to_string(c.metric)); }

std::vector<SearchCase> all_search_cases() {
  std::vector<SearchCase> v;
  for (const KindMode& km : kAllKinds) {
    if (km.clip > 0) continue;
    for (Metric m : {Metric::kIp, Metric::kCos, Metric::kL2}) v.push_back({km, m});
  }
  v.push_back({{CodeKind::kB1, ScaleMode::kNone}, Metric::kHamming});
  return v;
}

struct Collection {
  Codec codec;
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
  std::size_t rows = 0;
  CodeView view(std::size_t n) const { return {codes.data(), n, norms.data()}; }
};

Collection make_collection(const KindMode& km, const Matrix& base) {
  Collection c;
  c.codec = train(km, base);
  c.rows = base.rows;
  c.codes.resize(base.rows * c.codec.code_size());
  c.norms.resize(base.rows);
  EXPECT_TRUE(c.codec.encode(base.view(), c.codes, c.norms).is_ok());
  return c;
}

/// Base rows with exact duplicates planted (identical codes give exactly tied scores, which both
/// backends must order by row index).
Matrix base_rows(std::size_t n, std::size_t dim, std::uint64_t seed) {
  Matrix m = testing::anisotropic(n, dim, seed);
  for (std::size_t dup : {std::size_t{1}, std::size_t{8}, std::size_t{100}, std::size_t{12345}})
    if (dup < n) std::copy(m.row(0), m.row(0) + dim, m.row(dup));
  return m;
}

/// Queries: the first is all zeros (for ip and cos every score ties), the rest Gaussian.
Matrix queries_for(std::size_t nq, std::size_t dim, std::uint64_t seed) {
  Matrix q = testing::gaussian(nq, dim, seed);
  std::fill(q.row(0), q.row(0) + dim, 0.0f);
  return q;
}

struct Tolerance {
  std::vector<double> per_query;  // absolute part, per query
  double relative = 1e-4;
  double at(std::size_t q, float s) const { return relative * std::fabs(s) + per_query[q]; }
};

/// The absolute tolerance of a float dot product of q with a decoded row grows with ||q|| ||x_hat||
/// (different summation orders); cosine is normalised.
Tolerance tolerance_for(Metric metric, const Matrix& queries, const Collection& c) {
  Tolerance t;
  double max_norm = 0;
  for (float s : c.norms) max_norm = std::max(max_norm, std::sqrt(double(s)));
  for (std::size_t q = 0; q < queries.rows; ++q) {
    double qn = 0;
    for (std::size_t j = 0; j < queries.cols; ++j) qn += double(queries.row(q)[j]) * queries.row(q)[j];
    qn = std::sqrt(qn);
    double a = 1e-4;
    if (metric == Metric::kHamming)
      a = 0.0;
    else if (metric != Metric::kCos)
      a += 1e-5 * qn * max_norm;
    t.per_query.push_back(a);
  }
  if (metric == Metric::kHamming) t.relative = 0.0;
  return t;
}

/// Checks the GPU result against the CPU one: padding identical, every GPU score equal (within
/// tolerance) to the exact CPU score of the id it names and to the CPU score at the same rank,
/// ids equal except where the CPU scores tie within tolerance, the GPU order best first with ties by
/// row. `exact` is nq x rows of CPU scores (score_all_cpu).
/// With an eligibility bitset `allow`, only allowed ids may appear and min(k, allowed rows) are real.
void expect_same_topk(const TopK& cpu, const TopK& gpu, const Matrix& exact, std::size_t n, Metric metric,
                      const Tolerance& tol, const std::string& what, const std::uint64_t* allow = nullptr) {
  ASSERT_EQ(gpu.nq, cpu.nq) << what;
  ASSERT_EQ(gpu.k, cpu.k) << what;
  ASSERT_EQ(gpu.ids.size(), cpu.ids.size()) << what;
  ASSERT_EQ(gpu.scores.size(), cpu.scores.size()) << what;
  const bool hib = higher_is_better(metric);
  std::size_t allowed = 0;
  for (std::size_t r = 0; r < n; ++r) allowed += row_allowed(allow, r) ? 1 : 0;
  const std::size_t k = cpu.k, filled = std::min(allowed, k);
  std::size_t id_mismatches = 0;
  for (std::size_t q = 0; q < cpu.nq; ++q) {
    const auto ci = cpu.ids_of(q), gi = gpu.ids_of(q);
    const auto cs = cpu.scores_of(q), gs = gpu.scores_of(q);
    std::set<std::int64_t> seen;
    for (std::size_t i = 0; i < k; ++i) {
      const std::string at = what + " query " + std::to_string(q) + " rank " + std::to_string(i);
      if (i >= filled) {
        ASSERT_EQ(gi[i], -1) << at;
        ASSERT_EQ(ci[i], -1) << at;
        ASSERT_EQ(gs[i], cs[i]) << at << " (padding score)";
        continue;
      }
      ASSERT_GE(gi[i], 0) << at;
      ASSERT_LT(static_cast<std::size_t>(gi[i]), n) << at;
      ASSERT_TRUE(row_allowed(allow, static_cast<std::size_t>(gi[i]))) << at << ": id " << gi[i] << " is not allowed";
      ASSERT_TRUE(seen.insert(gi[i]).second) << at << ": id " << gi[i] << " returned twice";
      const float truth = exact.row(q)[gi[i]];
      ASSERT_NEAR(gs[i], truth, tol.at(q, truth)) << at << ": GPU score of id " << gi[i] << " is off";
      ASSERT_NEAR(gs[i], cs[i], tol.at(q, cs[i])) << at << ": GPU and CPU scores at this rank differ";
      if (gi[i] != ci[i]) {
        ++id_mismatches;
        ASSERT_NEAR(truth, cs[i], 2 * tol.at(q, cs[i]))
            << at << ": ids differ (cpu " << ci[i] << ", gpu " << gi[i] << ") without a near-tie";
      }
      if (i > 0) {
        const bool ordered = hib ? gs[i] <= gs[i - 1] : gs[i] >= gs[i - 1];
        ASSERT_TRUE(ordered) << at << ": not ordered best first (" << gs[i - 1] << " then " << gs[i] << ")";
        if (gs[i] == gs[i - 1]) {
          ASSERT_GT(gi[i], gi[i - 1]) << at << ": tie not ordered by row";
        }
      }
    }
  }
  // Hamming distances are exact integers, so even ties must come out identically. (For the other
  // metrics the per-rank checks above already bound any difference by the tolerance.)
  if (metric == Metric::kHamming) {
    EXPECT_EQ(id_mismatches, 0u) << what;
  }
}

class GpuSearchParity : public ::testing::TestWithParam<SearchCase> {};

TEST_P(GpuSearchParity, TopKMatchesCpu) {
  REQUIRE_GPU(gpu);
  const SearchCase sc = GetParam();
  constexpr std::size_t kRows = 20000, kDim = 97, kQueries = 21;  // 21: not a multiple of the GPU query group
  const Matrix base = base_rows(kRows, kDim, 42);
  const Collection col = make_collection(sc.km, base);
  ASSERT_TRUE(col.codec.trained());
  const Matrix queries = queries_for(kQueries, kDim, 43);
  // Strided query view (the GPU copies queries with their stride).
  Matrix wide(kQueries, kDim + 1);
  for (std::size_t q = 0; q < kQueries; ++q) std::copy(queries.row(q), queries.row(q) + kDim, wide.row(q));
  const MatrixView<const float> qview(wide.data.data(), kQueries, kDim, kDim + 1);

  Matrix exact(kQueries, kRows);
  ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), col.view(kRows), sc.metric, exact.mut()).is_ok());
  const Tolerance tol = tolerance_for(sc.metric, queries, col);

  for (std::size_t k : {1, 10, 100}) {
    std::vector<std::size_t> sizes = {0, 1, k - 1, k, k + 1, kRows};
    std::sort(sizes.begin(), sizes.end());
    sizes.erase(std::unique(sizes.begin(), sizes.end()), sizes.end());
    for (std::size_t n : sizes) {
      const Status up = gpu->upload_codes(col.codec, col.view(n));
      ASSERT_TRUE(up.is_ok()) << up.to_string();
      SearchParams p;
      p.metric = sc.metric;
      p.k = k;
      TopK cpu;
      ASSERT_TRUE(search_cpu(col.codec, queries.view(), col.view(n), p, &cpu).is_ok());
      for (std::size_t tile : {0, 7, 64}) {
        gpu->set_tile_rows(tile);
        TopK got;
        const Status st = gpu->search(qview, p, &got);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        expect_same_topk(
            cpu, got, exact, n, sc.metric, tol,
            name_of(sc) + " k=" + std::to_string(k) + " n=" + std::to_string(n) + " tile=" + std::to_string(tile));
        if (HasFatalFailure()) return;
      }
    }
  }
  gpu->set_tile_rows(0);
}

/// Eligibility bitsets over n rows: all but a few, about half (random), exactly k - 1 rows, none.
/// One spare word past the end with every bit set (bits past the last row must be ignored).
std::vector<std::pair<std::string, std::vector<std::uint64_t>>> masks_for(std::size_t n, std::size_t k,
                                                                          std::uint64_t seed) {
  auto words = [n](const std::vector<bool>& on) {
    std::vector<std::uint64_t> w((n + 63) / 64 + 1, 0);
    for (std::size_t r = 0; r < n; ++r)
      if (on[r]) w[r / 64] |= std::uint64_t{1} << (r % 64);
    w.back() = ~std::uint64_t{0};
    if (n % 64 != 0) w[n / 64] |= ~std::uint64_t{0} << (n % 64);
    return w;
  };
  std::vector<std::pair<std::string, std::vector<std::uint64_t>>> m;
  std::vector<bool> on(n, true);
  for (std::size_t r : {std::size_t{0}, std::size_t{1}, std::size_t{8}, std::size_t{63}, n / 2, n - 1})
    if (r < n) on[r] = false;
  m.emplace_back("all_but_few", words(on));
  std::mt19937_64 rng(seed);
  for (std::size_t r = 0; r < n; ++r) on[r] = (rng() & 1) != 0;
  m.emplace_back("half", words(on));
  std::fill(on.begin(), on.end(), false);
  for (std::size_t i = 0; i + 1 < k && i < n; ++i) on[(i * 7919 + 13) % n] = true;  // n prime to 7919
  m.emplace_back("k_minus_1", words(on));
  std::fill(on.begin(), on.end(), false);
  m.emplace_back("none", words(on));
  return m;
}

TEST_P(GpuSearchParity, EligibilityBitsetMatchesCpu) {
  REQUIRE_GPU(gpu);
  const SearchCase sc = GetParam();
  constexpr std::size_t kRows = 5003, kDim = 97, kQueries = 13;
  const Matrix base = base_rows(kRows, kDim, 44);
  const Collection col = make_collection(sc.km, base);
  ASSERT_TRUE(col.codec.trained());
  const Matrix queries = queries_for(kQueries, kDim, 45);
  Matrix exact(kQueries, kRows);
  ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), col.view(kRows), sc.metric, exact.mut()).is_ok());
  const Tolerance tol = tolerance_for(sc.metric, queries, col);
  ASSERT_TRUE(gpu->upload_codes(col.codec, col.view(kRows)).is_ok());
  for (std::size_t k : {1, 10, 100}) {
    for (const auto& [name, mask] : masks_for(kRows, k, 46 + k)) {
      SearchParams p;
      p.metric = sc.metric;
      p.k = k;
      CodeView view = col.view(kRows);
      view.allow = mask.data();
      TopK cpu;
      ASSERT_TRUE(search_cpu(col.codec, queries.view(), view, p, &cpu).is_ok());
      for (std::size_t tile : {0, 7, 64}) {
        gpu->set_tile_rows(tile);
        TopK got;
        const Status st = gpu->search(queries.view(), p, mask.data(), &got);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        expect_same_topk(cpu, got, exact, kRows, sc.metric, tol,
                         name_of(sc) + " k=" + std::to_string(k) + " mask=" + name + " tile=" + std::to_string(tile),
                         mask.data());
        if (HasFatalFailure()) return;
      }
    }
    // The bitset is per call: the next search without one sees every row again.
    SearchParams p;
    p.metric = sc.metric;
    p.k = k;
    TopK cpu, got;
    ASSERT_TRUE(search_cpu(col.codec, queries.view(), col.view(kRows), p, &cpu).is_ok());
    ASSERT_TRUE(gpu->search(queries.view(), p, &got).is_ok());
    expect_same_topk(cpu, got, exact, kRows, sc.metric, tol, name_of(sc) + " after masks k=" + std::to_string(k));
    if (HasFatalFailure()) return;
  }
  gpu->set_tile_rows(0);
}

// A per-row term (CodeView::row_bias on the CPU, search(..., row_bias, ...) on the device), alone and
// with an eligibility bitset: the same top-k, with the term in the scores.
TEST_P(GpuSearchParity, RowBiasMatchesCpu) {
  REQUIRE_GPU(gpu);
  const SearchCase sc = GetParam();
  constexpr std::size_t kRows = 5003, kDim = 97, kQueries = 13;
  const Matrix base = base_rows(kRows, kDim, 47);
  const Collection col = make_collection(sc.km, base);
  ASSERT_TRUE(col.codec.trained());
  const Matrix queries = queries_for(kQueries, kDim, 48);
  // As wide as the spread of the first query's scores, so that the ranking changes.
  Matrix plain(kQueries, kRows);
  ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), col.view(kRows), sc.metric, plain.mut()).is_ok());
  std::vector<float> first(plain.row(0), plain.row(0) + kRows);
  std::sort(first.begin(), first.end());
  const float spread = std::max(first.back() - first[kRows / 2], 1.0f);
  std::mt19937_64 rng(49);
  std::uniform_real_distribution<float> u(-spread, spread);
  std::vector<float> bias(kRows);
  for (float& b : bias) b = sc.metric == Metric::kHamming ? std::round(u(rng)) + 0.25f : u(rng);
  CodeView view = col.view(kRows);
  view.row_bias = bias.data();
  Matrix exact(kQueries, kRows);
  ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), view, sc.metric, exact.mut()).is_ok());
  Tolerance tol = tolerance_for(sc.metric, queries, col);
  if (sc.metric == Metric::kHamming) tol.relative = 1e-6;  // integer + bias: float rounding only
  ASSERT_TRUE(gpu->upload_codes(col.codec, col.view(kRows)).is_ok());
  const auto masks = masks_for(kRows, 10, 50);
  for (std::size_t k : {1, 10, 100}) {
    for (const std::uint64_t* allow : {static_cast<const std::uint64_t*>(nullptr), masks[1].second.data()}) {
      SearchParams p;
      p.metric = sc.metric;
      p.k = k;
      view.allow = allow;
      TopK cpu;
      ASSERT_TRUE(search_cpu(col.codec, queries.view(), view, p, &cpu).is_ok());
      for (std::size_t tile : {0, 64}) {
        gpu->set_tile_rows(tile);
        TopK got;
        const Status st = gpu->search(queries.view(), p, allow, bias.data(), &got);
        ASSERT_TRUE(st.is_ok()) << st.to_string();
        expect_same_topk(cpu, got, exact, kRows, sc.metric, tol,
                         name_of(sc) + " bias k=" + std::to_string(k) + (allow ? " half" : "") +
                             " tile=" + std::to_string(tile),
                         allow);
        if (HasFatalFailure()) return;
      }
    }
  }
  gpu->set_tile_rows(0);
}

INSTANTIATE_TEST_SUITE_P(KindsMetrics, GpuSearchParity, ::testing::ValuesIn(all_search_cases()),
                         [](const auto& info) { return name_of(info.param); });

TEST(GpuSearch, LargeKAndOtherDimensions) {
  REQUIRE_GPU(gpu);
  const std::vector<SearchCase> cases = {{{CodeKind::kF16, ScaleMode::kNone}, Metric::kIp},
                                         {{CodeKind::kE4M3, ScaleMode::kPerVector}, Metric::kL2},
                                         {{CodeKind::kI8, ScaleMode::kNone}, Metric::kCos},
                                         {{CodeKind::kB1, ScaleMode::kNone}, Metric::kHamming}};
  for (const SearchCase& sc : cases) {
    for (std::size_t dim : {1, 7, 384, 1536}) {
      const std::size_t rows = dim >= 384 ? 3000 : 6000;
      const Matrix base = base_rows(rows, dim, 100 + dim);
      const Collection col = make_collection(sc.km, base);
      const Matrix queries = queries_for(9, dim, 200 + dim);
      Matrix exact(queries.rows, rows);
      ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), col.view(rows), sc.metric, exact.mut()).is_ok());
      const Tolerance tol = tolerance_for(sc.metric, queries, col);
      ASSERT_TRUE(gpu->upload_codes(col.codec, col.view(rows)).is_ok());
      for (std::size_t k : {std::size_t{1000}, std::size_t{2048}, kMaxK}) {
        SearchParams p;
        p.metric = sc.metric;
        p.k = k;
        TopK cpu;
        ASSERT_TRUE(search_cpu(col.codec, queries.view(), col.view(rows), p, &cpu).is_ok());
        for (std::size_t tile : {0, 100}) {
          gpu->set_tile_rows(tile);
          TopK got;
          const Status st = gpu->search(queries.view(), p, &got);
          ASSERT_TRUE(st.is_ok()) << st.to_string();
          expect_same_topk(cpu, got, exact, rows, sc.metric, tol,
                           name_of(sc) + " dim=" + std::to_string(dim) + " k=" + std::to_string(k) +
                               " tile=" + std::to_string(tile));
          if (HasFatalFailure()) return;
        }
      }
    }
  }
  gpu->set_tile_rows(0);
}

// Small enough to run under compute-sanitizer (memcheck, racecheck, synccheck) in gpu-check.sh:
// every kernel (encode, decode, repack, prepare, score/top-k for each kind, merge, finalize) runs.
TEST(GpuSmoke, EveryKindSmall) {
  REQUIRE_GPU(gpu);
  const std::vector<SearchCase> cases = {
      {{CodeKind::kF32, ScaleMode::kNone}, Metric::kL2},    {{CodeKind::kF16, ScaleMode::kNone}, Metric::kIp},
      {{CodeKind::kBF16, ScaleMode::kNone}, Metric::kCos},  {{CodeKind::kE4M3, ScaleMode::kPerVector}, Metric::kIp},
      {{CodeKind::kE5M2, ScaleMode::kPerDim}, Metric::kL2}, {{CodeKind::kI8, ScaleMode::kNone}, Metric::kCos},
      {{CodeKind::kB1, ScaleMode::kNone}, Metric::kIp},     {{CodeKind::kB1, ScaleMode::kNone}, Metric::kHamming}};
  constexpr std::size_t kRows = 1500, kDim = 33;
  for (const SearchCase& sc : cases) {
    const Matrix base = base_rows(kRows, kDim, 5);
    const Collection col = make_collection(sc.km, base);
    std::vector<std::uint8_t> codes(col.codes.size());
    std::vector<float> norms(kRows);
    ASSERT_TRUE(gpu->encode(col.codec, base.view(), codes, norms).is_ok());
    ASSERT_TRUE(codes == col.codes) << name_of(sc);
    Matrix back(kRows, kDim);
    ASSERT_TRUE(gpu->decode(col.codec, codes, back.mut()).is_ok());
    const Matrix queries = queries_for(11, kDim, 6);
    Matrix exact(queries.rows, kRows);
    ASSERT_TRUE(score_all_cpu(col.codec, queries.view(), col.view(kRows), sc.metric, exact.mut()).is_ok());
    const Tolerance tol = tolerance_for(sc.metric, queries, col);
    ASSERT_TRUE(gpu->upload_codes(col.codec, col.view(kRows)).is_ok());
    for (std::size_t k : {3, 300}) {
      SearchParams p;
      p.metric = sc.metric;
      p.k = k;
      TopK cpu;
      ASSERT_TRUE(search_cpu(col.codec, queries.view(), col.view(kRows), p, &cpu).is_ok());
      for (std::size_t tile : {0, 100}) {
        gpu->set_tile_rows(tile);
        TopK got;
        ASSERT_TRUE(gpu->search(queries.view(), p, &got).is_ok());
        expect_same_topk(cpu, got, exact, kRows, sc.metric, tol,
                         name_of(sc) + " k=" + std::to_string(k) + " tile=" + std::to_string(tile));
        if (HasFatalFailure()) return;
      }
    }
  }
  gpu->set_tile_rows(0);
  PcaOptions o;
  o.components = 3;
  const Matrix sample = testing::planted_low_rank(500, 20, {4, 3, 2}, 0.05f, 7);
  auto pca = gpu->pca_fit(sample.view(), o);
  ASSERT_TRUE(pca.is_ok()) << pca.status().to_string();
  Matrix y(sample.rows, 3);
  ASSERT_TRUE(gpu->pca_transform(*pca, sample.view(), y.mut(), true).is_ok());
}

TEST(GpuSearch, RejectsBadInputWithStatus) {
  REQUIRE_GPU(gpu);
  // A fresh context has nothing uploaded.
  auto fresh = GpuContext::create(0);
  ASSERT_TRUE(fresh.is_ok()) << fresh.status().to_string();
  const Matrix base = base_rows(50, 16, 1);
  const Matrix queries = queries_for(3, 16, 2);
  SearchParams p;
  TopK out;
  EXPECT_EQ((*fresh)->search(queries.view(), p, &out).code(), StatusCode::kFailedPrecondition);

  EXPECT_EQ(GpuContext::create(1 << 20).status().code(), StatusCode::kInvalidArgument);

  const Collection f16 = make_collection({CodeKind::kF16, ScaleMode::kNone}, base);
  ASSERT_TRUE(gpu->upload_codes(f16.codec, f16.view(50)).is_ok());
  p.k = 0;
  EXPECT_EQ(gpu->search(queries.view(), p, &out).code(), StatusCode::kInvalidArgument);
  p.k = kMaxK + 1;
  EXPECT_EQ(gpu->search(queries.view(), p, &out).code(), StatusCode::kInvalidArgument);
  p.k = 5;
  p.metric = Metric::kHamming;
  EXPECT_EQ(gpu->search(queries.view(), p, &out).code(), StatusCode::kInvalidArgument);
  p.metric = Metric::kIp;
  EXPECT_EQ(gpu->search(queries.view(), p, nullptr).code(), StatusCode::kInvalidArgument);
  const Matrix wrong_dim = queries_for(2, 15, 3);
  EXPECT_EQ(gpu->search(wrong_dim.view(), p, &out).code(), StatusCode::kInvalidArgument);
  Matrix nan_query = queries;
  nan_query.row(1)[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(gpu->search(nan_query.view(), p, &out).code(), StatusCode::kInvalidArgument);

  // L2 and cosine need the squared norms.
  CodeView no_norms = f16.view(50);
  no_norms.sq_norms = nullptr;
  ASSERT_TRUE(gpu->upload_codes(f16.codec, no_norms).is_ok());
  p.metric = Metric::kL2;
  EXPECT_EQ(gpu->search(queries.view(), p, &out).code(), StatusCode::kInvalidArgument);
  p.metric = Metric::kIp;
  EXPECT_TRUE(gpu->search(queries.view(), p, &out).is_ok());

  // Codec errors.
  std::vector<std::uint8_t> codes(base.rows * f16.codec.code_size());
  Matrix nan_rows = base;
  nan_rows.row(7)[2] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(gpu->encode(f16.codec, nan_rows.view(), codes, {}).code(), StatusCode::kInvalidArgument);
  std::vector<std::uint8_t> short_codes(codes.size() - 1);
  EXPECT_EQ(gpu->encode(f16.codec, base.view(), short_codes, {}).code(), StatusCode::kInvalidArgument);
  Matrix out_rows(base.rows, 16);
  EXPECT_EQ(gpu->decode(f16.codec, short_codes, out_rows.mut()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->encode(Codec(), base.view(), codes, {}).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(gpu->upload_codes(Codec(), f16.view(50)).code(), StatusCode::kFailedPrecondition);
  // The device scan has no per-row term: a view carrying one is refused, not silently ignored.
  const std::vector<float> bias(50, 0.25f);
  CodeView biased = f16.view(50);
  biased.row_bias = bias.data();
  EXPECT_EQ(gpu->upload_codes(f16.codec, biased).code(), StatusCode::kInvalidArgument);
}

// ---- PCA --------------------------------------------------------------------------------------

double dot(const float* a, const float* b, std::size_t n) {
  double s = 0;
  for (std::size_t j = 0; j < n; ++j) s += double(a[j]) * b[j];
  return s;
}

class GpuPcaParity : public ::testing::TestWithParam<std::size_t> {};

TEST_P(GpuPcaParity, FitAndTransformMatchCpu) {
  REQUIRE_GPU(gpu);
  const std::size_t d = GetParam();
  const std::vector<float> all_sigmas{8, 5, 3, 2};
  const std::vector<float> sigmas(all_sigmas.begin(), all_sigmas.begin() + std::min<std::size_t>(4, d));
  const std::size_t rank = sigmas.size();
  const std::size_t n = d >= 1536 ? 8000 : 3000;  // 1536: several covariance tiles on the GPU
  Matrix basis;
  const Matrix sample = testing::planted_low_rank(n, d, sigmas, 0.05f, 900 + d, &basis);
  PcaOptions o;
  o.components = rank;
  auto g = gpu->pca_fit(sample.view(), o);
  ASSERT_TRUE(g.is_ok()) << g.status().to_string();
  const PcaParams& gp = g->params();
  ASSERT_EQ(gp.dim_in, d);
  ASSERT_EQ(gp.dim_out, rank);
  ASSERT_EQ(gp.eigenvalues.size(), d);
  for (std::size_t i = 1; i < d; ++i) ASSERT_LE(gp.eigenvalues[i], gp.eigenvalues[i - 1]) << i;
  for (std::size_t a = 0; a < rank; ++a)
    for (std::size_t b = 0; b < rank; ++b)
      EXPECT_NEAR(dot(&gp.components[a * d], &gp.components[b * d], d), a == b ? 1.0 : 0.0, 1e-5) << a << "," << b;

  auto c = Pca::fit(sample.view(), o);
  if (c.is_ok()) {
    const PcaParams& cp = c->params();
    for (std::size_t j = 0; j < d; ++j) EXPECT_NEAR(gp.mean[j], cp.mean[j], 1e-5 * (1 + std::fabs(cp.mean[j]))) << j;
    for (std::size_t i = 0; i < d; ++i)
      EXPECT_NEAR(gp.eigenvalues[i], cp.eigenvalues[i], 1e-8 * cp.eigenvalues[0] + 1e-6 * cp.eigenvalues[i]) << i;
    // Same components up to sign (the planted spectrum is well separated).
    for (std::size_t r = 0; r < rank; ++r)
      EXPECT_GT(std::fabs(dot(&gp.components[r * d], &cp.components[r * d], d)), 1.0 - 1e-5) << "component " << r;
    // The variance-fraction choice agrees too.
    PcaOptions f;
    f.variance_fraction = 0.9;
    auto gf = gpu->pca_fit(sample.view(), f);
    auto cf = Pca::fit(sample.view(), f);
    ASSERT_TRUE(gf.is_ok() && cf.is_ok());
    EXPECT_EQ(gf->dim_out(), cf->dim_out());
  } else {
    ASSERT_EQ(c.status().code(), StatusCode::kUnavailable) << c.status().to_string();
    // No CPU fit in this build: the GPU components must span the planted subspace.
    for (std::size_t r = 0; r < rank; ++r) {
      double norm2 = 0;
      for (std::size_t b = 0; b < rank; ++b) {
        const double p = dot(&gp.components[r * d], basis.row(b), d);
        norm2 += p * p;
      }
      EXPECT_GT(norm2, 0.999) << "component " << r << " leaves the planted subspace";
      EXPECT_NEAR(gp.eigenvalues[r], double(sigmas[r]) * sigmas[r], 0.1 * sigmas[r] * sigmas[r]) << r;
    }
  }

  // Projection parity on fresh rows (strided input and output), centred and not.
  const Matrix rows = testing::planted_low_rank(777, d, sigmas, 0.05f, 901 + d);
  Matrix in_wide(rows.rows, d + 2);
  for (std::size_t i = 0; i < rows.rows; ++i) std::copy(rows.row(i), rows.row(i) + d, in_wide.row(i));
  const MatrixView<const float> in(in_wide.data.data(), rows.rows, d, d + 2);
  for (bool center : {true, false}) {
    Matrix want(rows.rows, rank), got_wide(rows.rows, rank + 3);
    const MatrixView<float> got(got_wide.data.data(), rows.rows, rank, rank + 3);
    ASSERT_TRUE(g->transform(rows.view(), want.mut(), center).is_ok());
    const Status st = gpu->pca_transform(*g, in, got, center);
    ASSERT_TRUE(st.is_ok()) << st.to_string();
    for (std::size_t i = 0; i < rows.rows; ++i) {
      double xn = 0;
      for (std::size_t j = 0; j < d; ++j) {
        const double x = rows.row(i)[j] - (center ? gp.mean[j] : 0.0f);
        xn += x * x;
      }
      const double tol = 1e-4 * std::fabs(want.row(i)[0]) + 1e-5 * std::sqrt(xn) + 1e-6;
      for (std::size_t r = 0; r < rank; ++r)
        ASSERT_NEAR(got.row(i)[r], want.row(i)[r], tol + 1e-4 * std::fabs(want.row(i)[r]))
            << "row " << i << " component " << r << " center " << center;
    }
  }

  // Bad input is a Status, not a crash.
  EXPECT_EQ(gpu->pca_fit(MatrixView<const float>(sample.data.data(), 1, d), o).status().code(),
            StatusCode::kInvalidArgument);
  PcaOptions too_many;
  too_many.components = d + 1;
  EXPECT_EQ(gpu->pca_fit(sample.view(), too_many).status().code(), StatusCode::kInvalidArgument);
  Matrix wrong(3, rank + 1);
  EXPECT_EQ(gpu->pca_transform(*g, rows.view(), wrong.mut(), true).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->pca_transform(Pca(), rows.view(), wrong.mut(), true).code(), StatusCode::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Dims, GpuPcaParity, ::testing::Values<std::size_t>(1, 7, 97, 384, 1536), [](const auto& info) {
  std::string name = "d";  // (not "d" + ...: GCC 12 -Wrestrict false positive)
  name += std::to_string(info.param);
  return name;
});

// ---- relative representations ---------------------------------------------------------------

struct RelativeCase {
  std::size_t dim, anchors;
  bool center;
};
std::string name_of(const RelativeCase& c) {
  std::string name = "d";  // (not "d" + ...: GCC 12 -Wrestrict false positive)
  name += std::to_string(c.dim) + "_m" + std::to_string(c.anchors) + (c.center ? "_centred" : "_plain");
  return name;
}
// gtest prints parameters as raw bytes otherwise (padding included).
void PrintTo(const RelativeCase& c, std::ostream* os) { *os << name_of(c); }

/// Rows for the relative parity: embedding-like rows, a zero row, the anchors' mean (zero after
/// centring), an anchor and a negated anchor.
Matrix relative_rows(std::size_t n, const Matrix& anchors, const RelativeBasis& basis, std::uint64_t seed) {
  const std::size_t d = anchors.cols;
  const Matrix base = testing::anisotropic(n, d, seed);
  Matrix m(n + 4, d);
  std::copy(base.data.begin(), base.data.end(), m.data.begin());
  for (std::size_t j = 0; j < d; ++j) {
    m.row(n)[j] = 0.0f;
    m.row(n + 1)[j] = basis.mean()[j];
    m.row(n + 2)[j] = anchors.row(0)[j];
    m.row(n + 3)[j] = -anchors.row(anchors.rows - 1)[j];
  }
  return m;
}

/// Element j of a code row as an integer in which neighbouring code values are neighbouring integers
/// (sign-magnitude folded; +0 and -0 both 0), for the kinds whose codes are not floats.
long ordered_code(CodeKind kind, const std::uint8_t* code, std::size_t j) {
  switch (kind) {
    case CodeKind::kF16:
    case CodeKind::kBF16: {
      std::uint16_t h;
      std::memcpy(&h, code + 2 * j, 2);
      const long mag = h & 0x7fff;
      return (h & 0x8000) ? -mag : mag;
    }
    case CodeKind::kE4M3:
    case CodeKind::kE5M2: {
      const long mag = code[j] & 0x7f;
      return (code[j] & 0x80) ? -mag : mag;
    }
    case CodeKind::kI8:
      return static_cast<std::int8_t>(code[j]);
    default:
      return 0;
  }
}

/// The contract of gpu.h for relative_encode against RelativeBasis::encode.
void expect_relative_codes_close(const Codec& codec, const std::vector<std::uint8_t>& cpu,
                                 const std::vector<std::uint8_t>& gpu, const std::vector<float>& gpu_norms,
                                 std::size_t n, const std::string& what) {
  const std::size_t cs = codec.code_size(), m = codec.dim();
  const CodeKind kind = codec.kind();
  const bool per_vector = codec.params().scale_mode == ScaleMode::kPerVector;
  const std::size_t payload = per_vector ? cs - 4 : cs;
  ASSERT_EQ(cpu.size(), n * cs) << what;
  ASSERT_EQ(gpu.size(), n * cs) << what;
  std::size_t same = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t* c = cpu.data() + i * cs;
    const std::uint8_t* g = gpu.data() + i * cs;
    for (std::size_t b = 0; b < payload; ++b) same += c[b] == g[b] ? 1 : 0;
    if (kind == CodeKind::kF32) {
      for (std::size_t j = 0; j < m; ++j) {
        float a, b;
        std::memcpy(&a, c + 4 * j, 4);
        std::memcpy(&b, g + 4 * j, 4);
        ASSERT_NEAR(b, a, 1e-5) << what << " row " << i << " element " << j;
      }
    } else {
      for (std::size_t j = 0; j < m; ++j) {
        const long a = ordered_code(kind, c, j), b = ordered_code(kind, g, j);
        ASSERT_LE(std::labs(a - b), 1) << what << " row " << i << " element " << j << ": codes " << a << " (cpu), " << b
                                       << " (gpu) are more than one step apart";
      }
    }
    if (per_vector) {
      float sc, sg;
      std::memcpy(&sc, c + payload, 4);
      std::memcpy(&sg, g + payload, 4);
      // s = max |y| / fp8_max with |y| within 1e-5 of the CPU's (plus rounding of the quotient).
      const float fmax = fp8_max(kind);
      ASSERT_NEAR(sg * fmax, sc * fmax, 1.1e-5 + 1e-6 * sc * fmax) << what << " row " << i << ": per-vector scale";
    }
  }
  const double fraction = static_cast<double>(same) / static_cast<double>(std::max<std::size_t>(1, n * payload));
  std::printf("[ relative ] %s: %.4f%% of the element code bytes identical\n", what.c_str(), 100.0 * fraction);
  if (kind != CodeKind::kF32) {
    EXPECT_GE(fraction, 0.99) << what;  // f32 codes are the floats themselves: checked within 1e-5 above
  }
  // The GPU's squared norms are those of its own codes.
  std::vector<float> want(n);
  ASSERT_TRUE(codec.squared_norms(gpu, want).is_ok());
  for (std::size_t i = 0; i < n; ++i)
    ASSERT_NEAR(gpu_norms[i], want[i], 1e-5 * std::fabs(want[i]) + 1e-30) << what << " row " << i << ": squared norm";
}

class GpuRelativeParity : public ::testing::TestWithParam<RelativeCase> {};

TEST_P(GpuRelativeParity, TransformAndEncodeMatchCpu) {
  REQUIRE_GPU(gpu);
  const RelativeCase rc = GetParam();
  const Matrix anchors = testing::anisotropic(rc.anchors, rc.dim, 500 + rc.dim + rc.anchors);
  const RelativeBasis basis = test::make_relative_basis(anchors, rc.center);
  ASSERT_TRUE(basis.ready());
  const Matrix rows = relative_rows(rc.anchors >= 1000 ? 1500 : 3000, anchors, basis, 600 + rc.dim);
  const std::size_t n = rows.rows, m = rc.anchors, d = rc.dim;

  // Transform: strided input and output, every value within 1e-5 of the CPU's; zero rows exactly zero.
  Matrix want(n, m);
  ASSERT_TRUE(basis.transform(rows.view(), want.mut()).is_ok());
  Matrix in_wide(n, d + 3), out_wide(n, m + 2);
  for (std::size_t i = 0; i < n; ++i) std::copy(rows.row(i), rows.row(i) + d, in_wide.row(i));
  const MatrixView<const float> in(in_wide.data.data(), n, d, d + 3);
  const MatrixView<float> got(out_wide.data.data(), n, m, m + 2);
  const Status st = gpu->relative_transform(basis, in, got);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  double worst = 0;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t a = 0; a < m; ++a) {
      const double err = std::fabs(double(got.row(i)[a]) - want.row(i)[a]);
      worst = std::max(worst, err);
      ASSERT_LE(err, 1e-5) << name_of(rc) << " row " << i << " anchor " << a << ": gpu " << got.row(i)[a] << ", cpu "
                           << want.row(i)[a];
    }
  // The row that is zero after centring (the zero row, or with centring the anchors' mean) gives zeros.
  const std::size_t zero_row = rc.center ? n - 3 : n - 4;
  for (std::size_t a = 0; a < m; ++a) ASSERT_EQ(got.row(zero_row)[a], 0.0f) << "zero row, anchor " << a;
  std::printf("[ relative ] %s: largest |gpu - cpu| = %.3g\n", name_of(rc).c_str(), worst);

  // Encode with the codecs of the contract, trained on the CPU's relative vectors.
  struct Kind {
    CodeKind kind;
    ScaleMode mode;
  };
  for (const Kind k : {Kind{CodeKind::kF32, ScaleMode::kNone}, Kind{CodeKind::kF16, ScaleMode::kNone},
                       Kind{CodeKind::kE4M3, ScaleMode::kPerVector}, Kind{CodeKind::kE4M3, ScaleMode::kPerDim},
                       Kind{CodeKind::kI8, ScaleMode::kNone}}) {
    const std::string what = name_of(rc) + " " + std::string(to_string(k.kind)) + "/" + std::string(to_string(k.mode));
    CodecOptions co;
    co.kind = k.kind;
    co.scale = k.mode;
    auto codec = Codec::train(co, want.view());
    ASSERT_TRUE(codec.is_ok()) << codec.status().to_string();
    const std::size_t cs = codec->code_size();
    std::vector<std::uint8_t> cpu_codes(n * cs), gpu_codes(n * cs, 0xAB);
    std::vector<float> cpu_norms(n), gpu_norms(n, -1.0f);
    ASSERT_TRUE(basis.encode(*codec, rows.view(), cpu_codes, cpu_norms).is_ok());
    const Status es = gpu->relative_encode(basis, *codec, in, gpu_codes, gpu_norms);
    ASSERT_TRUE(es.is_ok()) << es.to_string();
    expect_relative_codes_close(*codec, cpu_codes, gpu_codes, gpu_norms, n, what);
    if (HasFatalFailure()) return;
    // Norms are optional and do not change the codes; n = 0 is valid.
    std::vector<std::uint8_t> again(n * cs);
    ASSERT_TRUE(gpu->relative_encode(basis, *codec, rows.view(), again, {}).is_ok());
    ASSERT_TRUE(again == gpu_codes) << what;
    ASSERT_TRUE(gpu->relative_encode(basis, *codec, MatrixView<const float>(), {}, {}).is_ok());
  }
  ASSERT_TRUE(gpu->relative_transform(basis, MatrixView<const float>(), MatrixView<float>()).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuRelativeParity,
                         ::testing::Values(RelativeCase{1, 1, false}, RelativeCase{7, 1, false},
                                           RelativeCase{7, 5, true}, RelativeCase{97, 33, false},
                                           RelativeCase{97, 33, true}, RelativeCase{384, 1024, true},
                                           RelativeCase{384, 200, false}, RelativeCase{1536, 64, true},
                                           RelativeCase{33, 1000, false}),
                         [](const auto& info) { return name_of(info.param); });

// Small enough for compute-sanitizer (gpu-check.sh runs GpuSmoke.*): the normalisation kernel, the
// sgemm and the encode on relative vectors.
TEST(GpuSmoke, RelativeSmall) {
  REQUIRE_GPU(gpu);
  const Matrix anchors = testing::anisotropic(17, 33, 31);
  const RelativeBasis basis = test::make_relative_basis(anchors, true);
  const Matrix rows = relative_rows(300, anchors, basis, 32);
  Matrix want(rows.rows, 17), got(rows.rows, 17);
  ASSERT_TRUE(basis.transform(rows.view(), want.mut()).is_ok());
  ASSERT_TRUE(gpu->relative_transform(basis, rows.view(), got.mut()).is_ok());
  for (std::size_t i = 0; i < want.data.size(); ++i) ASSERT_NEAR(got.data[i], want.data[i], 1e-5) << i;
  for (CodeKind kind : {CodeKind::kE4M3, CodeKind::kI8}) {
    CodecOptions co;
    co.kind = kind;
    auto codec = Codec::train(co, want.view());
    ASSERT_TRUE(codec.is_ok());
    std::vector<std::uint8_t> cpu_codes(rows.rows * codec->code_size()), gpu_codes(cpu_codes.size());
    std::vector<float> cpu_norms(rows.rows), gpu_norms(rows.rows);
    ASSERT_TRUE(basis.encode(*codec, rows.view(), cpu_codes, cpu_norms).is_ok());
    ASSERT_TRUE(gpu->relative_encode(basis, *codec, rows.view(), gpu_codes, gpu_norms).is_ok());
    expect_relative_codes_close(*codec, cpu_codes, gpu_codes, gpu_norms, rows.rows,
                                "smoke " + std::string(to_string(kind)));
  }
}

TEST(GpuRelative, RejectsBadInputWithStatus) {
  REQUIRE_GPU(gpu);
  const Matrix anchors = testing::gaussian(8, 16, 41);
  const RelativeBasis basis = test::make_relative_basis(anchors, false);
  const Matrix rows = testing::gaussian(5, 16, 42);
  Matrix out(5, 8);
  ASSERT_TRUE(gpu->relative_transform(basis, rows.view(), out.mut()).is_ok());
  EXPECT_EQ(gpu->relative_transform(RelativeBasis(), rows.view(), out.mut()).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(gpu->relative_transform(basis, testing::gaussian(5, 15, 43).view(), out.mut()).code(),
            StatusCode::kInvalidArgument);
  Matrix nan_rows = rows;
  nan_rows.row(2)[7] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(gpu->relative_transform(basis, nan_rows.view(), out.mut()).code(), StatusCode::kInvalidArgument);
  Matrix wrong_out(5, 9);
  EXPECT_EQ(gpu->relative_transform(basis, rows.view(), wrong_out.mut()).code(), StatusCode::kInvalidArgument);

  CodecOptions co;
  co.kind = CodeKind::kI8;
  auto codec = Codec::train(co, out.view());
  ASSERT_TRUE(codec.is_ok());
  std::vector<std::uint8_t> codes(5 * codec->code_size());
  std::vector<float> norms(5);
  EXPECT_TRUE(gpu->relative_encode(basis, *codec, rows.view(), codes, norms).is_ok());
  EXPECT_EQ(gpu->relative_encode(RelativeBasis(), *codec, rows.view(), codes, norms).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(gpu->relative_encode(basis, Codec(), rows.view(), codes, norms).code(), StatusCode::kFailedPrecondition);
  auto codec7 = Codec::train(co, testing::gaussian(20, 7, 44).view());
  ASSERT_TRUE(codec7.is_ok());
  EXPECT_EQ(gpu->relative_encode(basis, *codec7, rows.view(), codes, norms).code(), StatusCode::kInvalidArgument);
  std::vector<std::uint8_t> short_codes(codes.size() - 1);
  EXPECT_EQ(gpu->relative_encode(basis, *codec, rows.view(), short_codes, norms).code(), StatusCode::kInvalidArgument);
  std::vector<float> short_norms(4);
  EXPECT_EQ(gpu->relative_encode(basis, *codec, rows.view(), codes, short_norms).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->relative_encode(basis, *codec, nan_rows.view(), codes, norms).code(), StatusCode::kInvalidArgument);
}

// Runs everywhere: without a device the backend reports Unavailable instead of failing.
TEST(GpuBackend, ReportsUnavailableWithoutADevice) {
  const std::string desc = gpu_description();
  EXPECT_FALSE(desc.empty());
  if (gpu_available()) GTEST_SKIP() << "a CUDA device is present: " << desc;
  auto ctx = GpuContext::create(0);
  ASSERT_FALSE(ctx.is_ok());
  EXPECT_EQ(ctx.status().code(), StatusCode::kUnavailable) << ctx.status().to_string();
}

}  // namespace
}  // namespace vecstash::kernels
