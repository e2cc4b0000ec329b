// Candidate generation over int8 codes with integer SIMD (search_i8_candidates_cpu, search.h).
//
// With x_hat[j] = offset[j] + scale[j] * c[j] (c the signed code) and w[j] = q[j] * scale[j]:
//   q . x_hat = q . offset + sum_j w[j] * c[j].
// The query is quantised once: w[j] ~ b * qi[j], qi[j] = rint(w[j] / b) in [-64, 64] with
// b = max_j |w[j]| / 64, so the sum becomes an exact integer dot product
//   sum_j qi[j] * c[j] = sum_j qi[j] * (c[j] + 128) - 128 * sum_j qi[j]
// of u8 codes (c + 128, what vpmaddubsw takes) with s8 query values; the second term is a per-query
// constant. |qi| <= 64 keeps every vpmaddubsw pair sum (<= 2 * 255 * 64) inside int16, and the codec's
// dimension limit (65536) keeps every int32 sum (<= 64 * 255 * dim) exact.
//
// Layout: rows are processed in tiles of kI8TileRows (64), packed once per (tile, query group) into
// blocks of 8 rows x 4 dimensions (32 bytes; KernelTable::i8_pack, an 8 x 8 word transpose on AVX2), so
// that one vpmaddubsw + vpmaddwd gives 8 rows' partial sums for one query without any horizontal
// reduction. A group is kGroup (128) queries, so the packing is amortised over 128 queries, and for
// dim ~100 the tile (64 x dim bytes) and the group's quantised queries (128 x dim bytes) stay in L1.
// The ISA kernel (KernelTable::i8_score) computes the sums of 4 queries x 16 rows in registers (8
// accumulators; per 4 dimensions 2 row loads, 4 query broadcasts, 8 x (vpmaddubsw, vpmaddwd, vpaddd)),
// then turns them into keys and compares them with each query's heap threshold (for kIp first as an
// integer prefilter, so that keys are computed only for the few rows that pass), returning a bit per
// row that may enter the heap; only those rows reach the (scalar) heap. Top-k order and tie-breaking
// are those of search_cpu; the keys are the same on every ISA (exact integer sums, then fixed float
// operations), so results do not depend on the ISA or the thread count.
#include "cpu/i8_scan.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "cpu/parallel.h"
#include "cpu/row_mask.h"
#include "cpu/topk.h"

namespace vecstash::kernels {
namespace cpu {
namespace {

constexpr std::size_t kGroup = 128;  // queries scored against one packed tile
static_assert(kGroup % kI8QueryBlock == 0, "groups are whole query blocks");
static_assert(kI8TileRows % 16 == 0 && kI8TileRows <= 64, "tiles are 16-row blocks; hits fit one word");

/// Quantised queries of one group (arrays indexed by query within the group).
struct I8Group {
  std::size_t count = 0;
  std::vector<std::int8_t> q;  // count x (4 * steps)
  std::vector<std::int32_t> corr;
  std::vector<float> a, b, qq;
};

class I8Scan {
 public:
  I8Scan(const Codec& codec, Metric metric)
      : p_(codec.params()), metric_(metric), dim_(codec.dim()), steps_((dim_ + 3) / 4), cs_(codec.code_size()) {}

  std::size_t steps() const noexcept { return steps_; }

  void prepare(MatrixView<const float> queries, std::size_t q0, std::size_t q1, I8Group* g) const {
    const std::size_t n = q1 - q0, qlen = 4 * steps_;
    g->count = n;
    g->q.assign(n * qlen, 0);
    g->corr.assign(n, 0);
    g->a.assign(n, 0.0f);
    g->b.assign(n, 0.0f);
    g->qq.assign(n, 0.0f);
    std::vector<double> w(dim_);
    for (std::size_t i = 0; i < n; ++i) {
      const float* query = queries.row(q0 + i);
      double qq = 0, c0 = 0;
      for (std::size_t j = 0; j < dim_; ++j) {
        qq += static_cast<double>(query[j]) * query[j];
        if (!p_.offset.empty()) c0 += static_cast<double>(query[j]) * p_.offset[j];
        w[j] = p_.scale.empty() ? query[j] : static_cast<double>(query[j]) * p_.scale[j];
      }
      // kCos scores the unit query (cos = (q / ||q||) . x_hat / ||x_hat||): no 1 / ||q|| factor that
      // could overflow float for a tiny query. In double, so that tiny or huge queries lose nothing.
      const double f = metric_ == Metric::kCos ? (qq > 0 ? 1.0 / std::sqrt(qq) : 0.0) : 1.0;
      double maxabs = 0;
      for (std::size_t j = 0; j < dim_; ++j) {
        w[j] *= f;
        maxabs = std::max(maxabs, std::fabs(w[j]));
      }
      std::int32_t sum = 0;
      if (maxabs > 0) {
        const double inv = kI8QueryMax / maxabs;
        for (std::size_t j = 0; j < dim_; ++j) {
          const double v = std::clamp(std::rint(w[j] * inv), double{-kI8QueryMax}, double{kI8QueryMax});
          g->q[i * qlen + j] = static_cast<std::int8_t>(v);
          sum += static_cast<std::int32_t>(v);
        }
        g->b[i] = static_cast<float>(maxabs / kI8QueryMax);
      }
      g->corr[i] = 128 * sum;
      g->a[i] = static_cast<float>(c0 * f);
      g->qq[i] = static_cast<float>(qq);
    }
  }

  /// Packs rows [r0, r0 + rows) (rows <= kI8TileRows) into `packed` (the I8ScanTile layout, padded
  /// with zero rows to a multiple of 16) with `table`, and fills `row_term` for the metric. Returns the
  /// padded row count.
  std::size_t pack(const KernelTable& table, const CodeView& codes, std::size_t r0, std::size_t rows,
                   std::uint8_t* packed, float* row_term) const noexcept {
    const std::size_t rows16 = (rows + 15) / 16 * 16;
    table.i8_pack(codes.codes + r0 * cs_, cs_, rows, dim_, packed);
    for (std::size_t r = 0; r < rows16; ++r) {
      float t = 0.0f;
      if (r < rows && metric_ == Metric::kL2) {
        t = codes.sq_norms[r0 + r];
      } else if (r < rows && metric_ == Metric::kCos) {
        const float n = codes.sq_norms[r0 + r];
        t = n > 0.0f ? 1.0f / std::sqrt(n) : 0.0f;
      }
      row_term[r] = t;
    }
    return rows16;
  }

 private:
  const CodecParams& p_;
  Metric metric_;
  std::size_t dim_, steps_, cs_;
};

}  // namespace

Status search_i8_candidates_with(const KernelTable& table, const Codec& codec, MatrixView<const float> queries,
                                 const CodeView& codes, const SearchParams& params, TopK* out) {
  VECSTASH_RETURN_IF_ERROR(validate_search(codec, queries, codes, params));
  if (codec.kind() != CodeKind::kI8)
    return Status::invalid_argument("search_i8_candidates: needs int8 codes, got " +
                                    std::string(to_string(codec.kind())));
  if (params.metric == Metric::kHamming)
    return Status::invalid_argument("search_i8_candidates: hamming is not an int8 metric");
  if (out == nullptr) return Status::invalid_argument("search_i8_candidates: null output");
  if (codes.row_bias != nullptr)
    return Status::invalid_argument("search_i8_candidates: a row bias is not supported (use search_cpu)");
  const std::size_t nq = queries.rows, n = codes.rows, k = params.k;
  out->resize(nq, k, params.metric);
  if (nq == 0 || n == 0) return Status::ok();

  const I8Scan scan(codec, params.metric);
  const Metric metric = params.metric;
  const int threads = resolve_threads(params.threads, nq * n / 1024 + 1);
  const std::size_t groups = (nq + kGroup - 1) / kGroup;
  // Few query groups: split the rows between threads as well and merge the partial top-k lists.
  std::size_t parts = 1;
  if (groups < 2 * static_cast<std::size_t>(threads))
    parts = std::min<std::size_t>(static_cast<std::size_t>(threads), std::max<std::size_t>(1, n / 2048));

  std::vector<TopKHeap> heaps(parts * nq, TopKHeap(k));
  const std::size_t qlen = 4 * scan.steps();
  parallel_for_dynamic(groups * parts, threads, [&](std::size_t task) {
    const std::size_t g = task / parts, p = task % parts;
    const std::size_t q0 = g * kGroup, q1 = std::min(nq, q0 + kGroup);
    const std::size_t r0 = n * p / parts, r1 = n * (p + 1) / parts;
    I8Group group;
    scan.prepare(queries, q0, q1, &group);
    // Per-task scratch, reused for every tile (nothing is allocated in the loop below).
    std::vector<std::uint8_t> packed(kI8TileRows * qlen);
    std::vector<float> row_term(kI8TileRows), keys(kI8QueryBlock * kI8TileRows);
    float threshold[kI8QueryBlock];
    std::uint64_t hits[kI8QueryBlock];
    I8ScanTile tile;
    tile.packed = packed.data();
    tile.steps = scan.steps();
    tile.row_term = row_term.data();
    for (std::size_t b0 = r0; b0 < r1; b0 += kI8TileRows) {
      const std::size_t rows = std::min(r1 - b0, kI8TileRows);
      const std::uint64_t allowed = allow_bits(codes.allow, b0, rows);
      if (allowed == 0) continue;
      tile.rows = scan.pack(table, codes, b0, rows, packed.data(), row_term.data());
      for (std::size_t qb = 0; qb < group.count; qb += kI8QueryBlock) {
        I8ScanQueries sq;
        sq.count = std::min(kI8QueryBlock, group.count - qb);
        sq.q = group.q.data() + qb * qlen;
        sq.corr = group.corr.data() + qb;
        sq.a = group.a.data() + qb;
        sq.b = group.b.data() + qb;
        sq.qq = group.qq.data() + qb;
        for (std::size_t i = 0; i < sq.count; ++i) threshold[i] = heaps[p * nq + q0 + qb + i].threshold();
        sq.threshold = threshold;
        table.i8_score(metric, sq, tile, keys.data(), hits);
        for (std::size_t i = 0; i < sq.count; ++i) {
          const std::uint64_t m = hits[i] & allowed;
          if (m != 0) offer_masked<true>(heaps[p * nq + q0 + qb + i], keys.data() + i * kI8TileRows, m, b0);
        }
      }
    }
  });
  merge_and_write(heaps, parts, higher_is_better(metric), threads, out);
  return Status::ok();
}

}  // namespace cpu

Status search_i8_candidates_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                                const SearchParams& params, TopK* out) {
  return cpu::search_i8_candidates_with(cpu::kernels(), codec, queries, codes, params, out);
}

}  // namespace vecstash::kernels
