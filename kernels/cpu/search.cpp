#include "vecstash/kernels/search.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "cpu/codec_rows.h"
#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
#include "cpu/row_mask.h"
#include "cpu/topk.h"

namespace vecstash::kernels {

Status validate_search(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                       const SearchParams& params) {
  if (!codec.trained()) return Status::failed_precondition("search: codec is not trained");
  if (queries.rows > 0 && queries.cols != codec.dim())
    return Status::invalid_argument("search: query dimension " + std::to_string(queries.cols) + " != codec dimension " +
                                    std::to_string(codec.dim()));
  VECSTASH_RETURN_IF_ERROR(validate_rows(queries, codec.dim(), "search queries"));
  if (params.k == 0 || params.k > kMaxK)
    return Status::invalid_argument("search: k must be in [1, " + std::to_string(kMaxK) + "], got " +
                                    std::to_string(params.k));
  if (static_cast<int>(params.metric) > 3) return Status::invalid_argument("search: unknown metric");
  if (params.metric == Metric::kHamming && codec.kind() != CodeKind::kB1)
    return Status::invalid_argument("search: the hamming metric needs binary (b1) codes");
  if (codes.rows > 0 && codes.codes == nullptr) return Status::invalid_argument("search: null codes");
  const bool needs_norms =
      params.metric == Metric::kCos || (params.metric == Metric::kL2 && codec.kind() != CodeKind::kB1);
  if (codes.rows > 0 && needs_norms && codes.sq_norms == nullptr)
    return Status::invalid_argument(std::string("search: metric ") + std::string(to_string(params.metric)) +
                                    " needs the squared norms of the codes");
  return Status::ok();
}

namespace cpu {
namespace {

constexpr std::size_t kQueryGroup = 32;  // queries scored together against one decoded tile
constexpr std::size_t kTileRows = 32;    // rows decoded per tile (32 x ld floats stay in L1)
static_assert(kTileRows <= 64, "a tile's eligibility bits fit one 64-bit word");

/// A query prepared for one codec and metric (see codec.h for the scoring identity).
struct PreparedQuery {
  float c0 = 0, qq = 0, qn = 0, qsum = 0;
  float l2c = 0;                      // b1 with L2: ||q - mean||^2 + sum_j scale_j^2
  std::vector<float> lut;             // b1 asymmetric: (dim+7)/8 tables of 256 partial sums
  std::vector<std::uint64_t> bits;    // b1 hamming: the binarised query
};

/// Up to kQueryGroup prepared queries; `q` holds q[j] * scale[j] zero-padded to `ld` per query.
struct QueryGroup {
  std::size_t count = 0;
  std::vector<float> q;
  std::vector<PreparedQuery> prep;
};

class Scorer {
 public:
  Scorer(const Codec& codec, Metric metric)
      : p_(codec.params()), metric_(metric), t_(kernels()), dim_(codec.dim()), ld_((dim_ + 7) / 8 * 8),
        cs_(codec.code_size()) {}

  std::size_t code_size() const noexcept { return cs_; }

  void prepare(MatrixView<const float> queries, std::size_t q0, std::size_t q1, QueryGroup* g) const {
    g->count = q1 - q0;
    g->q.assign(g->count * ld_, 0.0f);
    g->prep.resize(g->count);
    for (std::size_t i = 0; i < g->count; ++i) prepare_one(queries.row(q0 + i), g->q.data() + i * ld_, &g->prep[i]);
  }

  /// Scores of rows [r0, r0 + rows) for every query of the group, natural form, out[q * rows + r].
  /// `tile` is scratch of kTileRows * ld floats; rows <= kTileRows.
  void score_tile(const QueryGroup& g, const CodeView& codes, std::size_t r0, std::size_t rows, float* tile,
                  float* out) const {
    const std::uint8_t* c = codes.codes + r0 * cs_;
    if (p_.kind == CodeKind::kB1) {
      for (std::size_t i = 0; i < g.count; ++i) score_binary(g.prep[i], c, rows, out + i * rows);
      if (metric_ == Metric::kL2) {
        for (std::size_t i = 0; i < g.count; ++i)
          for (std::size_t r = 0; r < rows; ++r) out[i * rows + r] = g.prep[i].l2c - 2.0f * out[i * rows + r];
        return;
      }
    } else {
      t_.decode_tile(p_.kind, c, cs_, rows, dim_, ld_, tile);
      t_.dot_block(g.q.data(), g.count, tile, rows, ld_, out);
      if (p_.scale_mode == ScaleMode::kPerVector) {
        for (std::size_t r = 0; r < rows; ++r) {
          const float s = row_scale(c + r * cs_, dim_);
          for (std::size_t i = 0; i < g.count; ++i) out[i * rows + r] *= s;
        }
      }
    }
    switch (metric_) {
      case Metric::kIp: return finalize<Metric::kIp>(g, codes, r0, rows, out);
      case Metric::kCos: return finalize<Metric::kCos>(g, codes, r0, rows, out);
      case Metric::kL2: return finalize<Metric::kL2>(g, codes, r0, rows, out);
      case Metric::kHamming: return;
    }
  }

  std::size_t ld() const noexcept { return ld_; }

 private:
  void prepare_one(const float* query, float* qs, PreparedQuery* pq) const {
    double qq = 0, c0 = 0;
    for (std::size_t j = 0; j < dim_; ++j) {
      qq += static_cast<double>(query[j]) * query[j];
      if (!p_.offset.empty()) c0 += static_cast<double>(query[j]) * p_.offset[j];
      qs[j] = p_.scale.empty() ? query[j] : query[j] * p_.scale[j];
    }
    pq->qq = static_cast<float>(qq);
    pq->qn = static_cast<float>(std::sqrt(qq));
    pq->c0 = static_cast<float>(c0);
    if (p_.kind != CodeKind::kB1) return;
    if (metric_ == Metric::kHamming) {
      pq->bits.assign(cs_ / 8, 0);
      for (std::size_t j = 0; j < dim_; ++j)
        if (query[j] > p_.offset[j]) pq->bits[j / 64] |= std::uint64_t{1} << (j % 64);
      return;
    }
    // L2 to a binary reconstruction needs no stored norm: with x_hat = mean + scale * b (b = +-1),
    // ||q - x_hat||^2 = ||q - mean||^2 + sum_j scale_j^2 - 2 sum_j (q_j - mean_j) scale_j b_j.
    std::vector<float> centred;
    const float* w = qs;
    if (metric_ == Metric::kL2) {
      centred.resize(dim_);
      double l2c = 0;
      for (std::size_t j = 0; j < dim_; ++j) {
        const double qc = static_cast<double>(query[j]) - p_.offset[j];
        l2c += qc * qc + static_cast<double>(p_.scale[j]) * p_.scale[j];
        centred[j] = static_cast<float>(qc) * p_.scale[j];
      }
      pq->l2c = static_cast<float>(l2c);
      w = centred.data();
    }
    const std::size_t nbytes = (dim_ + 7) / 8;
    pq->lut.assign(nbytes * 256, 0.0f);
    double qsum = 0;
    for (std::size_t b = 0; b < nbytes; ++b) {
      float* t = pq->lut.data() + b * 256;
      for (unsigned v = 1; v < 256; ++v) {
        const std::size_t j = 8 * b + static_cast<std::size_t>(std::countr_zero(v));
        t[v] = t[v & (v - 1)] + (j < dim_ ? w[j] : 0.0f);
      }
    }
    for (std::size_t j = 0; j < dim_; ++j) qsum += w[j];
    pq->qsum = static_cast<float>(qsum);
  }

  template <Metric M>
  static void finalize(const QueryGroup& g, const CodeView& codes, std::size_t r0, std::size_t rows, float* out) {
    const float* norms = codes.sq_norms ? codes.sq_norms + r0 : nullptr;
    for (std::size_t i = 0; i < g.count; ++i) {
      const PreparedQuery& pq = g.prep[i];
      float* o = out + i * rows;
      for (std::size_t r = 0; r < rows; ++r) {
        const float ip = pq.c0 + o[r];
        if constexpr (M == Metric::kIp) {
          o[r] = ip;
        } else if constexpr (M == Metric::kL2) {
          o[r] = pq.qq - 2.0f * ip + norms[r];
        } else {
          const float den = pq.qn * std::sqrt(norms[r]);
          o[r] = den > 0.0f ? ip / den : 0.0f;
        }
      }
    }
  }

  // b1: hamming distance, or the asymmetric raw sum  sum_j q'[j] * (+-1) = 2 * sum_{bits set} q'[j] - sum_j q'[j].
  void score_binary(const PreparedQuery& pq, const std::uint8_t* c, std::size_t rows, float* out) const {
    if (metric_ == Metric::kHamming) {
      for (std::size_t r = 0; r < rows; ++r)
        out[r] = static_cast<float>(t_.hamming(pq.bits.data(), c + r * cs_, cs_ / 8));
      return;
    }
    const std::size_t nbytes = (dim_ + 7) / 8;
    for (std::size_t r = 0; r < rows; ++r) {
      const std::uint8_t* code = c + r * cs_;
      // Four partial sums break the add dependency chain.
      float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      const float* lut = pq.lut.data();
      std::size_t b = 0;
      for (; b + 4 <= nbytes; b += 4) {
        s0 += lut[b * 256 + code[b]];
        s1 += lut[(b + 1) * 256 + code[b + 1]];
        s2 += lut[(b + 2) * 256 + code[b + 2]];
        s3 += lut[(b + 3) * 256 + code[b + 3]];
      }
      for (; b < nbytes; ++b) s0 += lut[b * 256 + code[b]];
      out[r] = 2.0f * ((s0 + s1) + (s2 + s3)) - pq.qsum;
    }
  }

  const CodecParams& p_;
  Metric metric_;
  const KernelTable& t_;
  std::size_t dim_, ld_, cs_;
};

// Add the rows' bias to a tile of scores (queries x rows, row-major).
void add_bias(const float* bias, std::size_t rows, std::size_t queries, float* scores) {
  for (std::size_t i = 0; i < queries; ++i) {
    float* s = scores + i * rows;
    for (std::size_t r = 0; r < rows; ++r) s[r] += bias[r];
  }
}

}  // namespace
}  // namespace cpu

Status search_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes,
                  const SearchParams& params, TopK* out) {
  VECSTASH_RETURN_IF_ERROR(validate_search(codec, queries, codes, params));
  const std::size_t nq = queries.rows, n = codes.rows, k = params.k;
  out->resize(nq, k, params.metric);
  if (nq == 0 || n == 0) return Status::ok();

  const cpu::Scorer scorer(codec, params.metric);
  const bool hib = higher_is_better(params.metric);
  const int threads = cpu::resolve_threads(params.threads, nq * n / 1024 + 1);
  const std::size_t groups = (nq + cpu::kQueryGroup - 1) / cpu::kQueryGroup;
  // Few query groups: split the rows between threads as well and merge the partial top-k lists.
  std::size_t parts = 1;
  if (groups < 2 * static_cast<std::size_t>(threads))
    parts = std::min<std::size_t>(static_cast<std::size_t>(threads), std::max<std::size_t>(1, n / 2048));

  std::vector<cpu::TopKHeap> heaps(parts * nq, cpu::TopKHeap(k));
  cpu::parallel_for_dynamic(groups * parts, threads, [&](std::size_t task) {
    const std::size_t g = task / parts, p = task % parts;
    const std::size_t q0 = g * cpu::kQueryGroup, q1 = std::min(nq, q0 + cpu::kQueryGroup);
    const std::size_t r0 = n * p / parts, r1 = n * (p + 1) / parts;
    cpu::QueryGroup group;
    scorer.prepare(queries, q0, q1, &group);
    std::vector<float> tile(cpu::kTileRows * scorer.ld()), buf(cpu::kQueryGroup * cpu::kTileRows);
    for (std::size_t b0 = r0; b0 < r1; b0 += cpu::kTileRows) {
      const std::size_t rows = std::min(r1 - b0, cpu::kTileRows);
      const std::uint64_t allowed = cpu::allow_bits(codes.allow, b0, rows);
      if (allowed == 0) continue;  // nothing in this tile may be returned: do not score it
      scorer.score_tile(group, codes, b0, rows, tile.data(), buf.data());
      if (codes.row_bias != nullptr) cpu::add_bias(codes.row_bias + b0, rows, group.count, buf.data());
      for (std::size_t i = 0; i < group.count; ++i) {
        cpu::TopKHeap& h = heaps[p * nq + q0 + i];
        const float* s = buf.data() + i * rows;
        if (codes.allow != nullptr) {
          if (hib)
            cpu::offer_masked<true>(h, s, allowed, b0);
          else
            cpu::offer_masked<false>(h, s, allowed, b0);
        } else if (hib) {
          cpu::offer<true>(h, s, rows, b0);
        } else {
          cpu::offer<false>(h, s, rows, b0);
        }
      }
    }
  });
  cpu::merge_and_write(heaps, parts, hib, threads, out);
  return Status::ok();
}

Status score_all_cpu(const Codec& codec, MatrixView<const float> queries, const CodeView& codes, Metric metric,
                     MatrixView<float> out, int threads) {
  SearchParams sp;
  sp.metric = metric;
  sp.k = 1;
  VECSTASH_RETURN_IF_ERROR(validate_search(codec, queries, codes, sp));
  if (queries.rows == 0 || codes.rows == 0) return Status::ok();
  if (out.rows != queries.rows || out.cols != codes.rows || out.data == nullptr || out.stride < out.cols)
    return Status::invalid_argument("score_all: output must be queries x rows");
  const cpu::Scorer scorer(codec, metric);
  const std::size_t nq = queries.rows, n = codes.rows;
  const std::size_t groups = (nq + cpu::kQueryGroup - 1) / cpu::kQueryGroup;
  const int t = cpu::resolve_threads(threads, groups);
  cpu::parallel_for_dynamic(groups, t, [&](std::size_t g) {
    const std::size_t q0 = g * cpu::kQueryGroup, q1 = std::min(nq, q0 + cpu::kQueryGroup);
    cpu::QueryGroup group;
    scorer.prepare(queries, q0, q1, &group);
    std::vector<float> tile(cpu::kTileRows * scorer.ld()), buf(cpu::kQueryGroup * cpu::kTileRows);
    for (std::size_t b0 = 0; b0 < n; b0 += cpu::kTileRows) {
      const std::size_t rows = std::min(n - b0, cpu::kTileRows);
      scorer.score_tile(group, codes, b0, rows, tile.data(), buf.data());
      if (codes.row_bias != nullptr) cpu::add_bias(codes.row_bias + b0, rows, group.count, buf.data());
      for (std::size_t i = 0; i < group.count; ++i)
        std::memcpy(out.row(q0 + i) + b0, buf.data() + i * rows, rows * sizeof(float));
    }
  });
  return Status::ok();
}

namespace {
Result<Codec> identity_codec(std::size_t dim) {
  CodecParams p;
  p.kind = CodeKind::kF32;
  p.dim = static_cast<std::uint32_t>(dim);
  return Codec::from_params(std::move(p));
}
}  // namespace

Status search_f32(MatrixView<const float> queries, MatrixView<const float> base, const SearchParams& params, TopK* out,
                  const std::uint64_t* allow, const float* row_bias) {
  if (base.rows > 0 && (base.data == nullptr || base.stride < base.cols))
    return Status::invalid_argument("search_f32: bad base matrix view");
  auto codec = identity_codec(base.cols);
  if (!codec) return codec.status();
  VECSTASH_RETURN_IF_ERROR(validate_rows(base, base.cols, "search_f32 base"));
  std::vector<float> dense;
  const float* data = base.data;
  if (base.rows > 0 && base.stride != base.cols) {
    dense.resize(base.rows * base.cols);
    for (std::size_t i = 0; i < base.rows; ++i) std::memcpy(&dense[i * base.cols], base.row(i), 4 * base.cols);
    data = dense.data();
  }
  std::vector<float> norms;
  if (params.metric == Metric::kL2 || params.metric == Metric::kCos) {
    norms.resize(base.rows);
    for (std::size_t i = 0; i < base.rows; ++i) norms[i] = cpu::squared_norm(data + i * base.cols, base.cols);
  }
  CodeView cv;
  cv.codes = reinterpret_cast<const std::uint8_t*>(data);
  cv.rows = base.rows;
  cv.sq_norms = norms.empty() ? nullptr : norms.data();
  cv.allow = allow;
  cv.row_bias = row_bias;
  return search_cpu(*codec, queries, cv, params, out);
}

Status rescore_f32(MatrixView<const float> queries, MatrixView<const float> base, const TopK& candidates,
                   const SearchParams& params, TopK* out, const float* row_bias) {
  if (queries.rows > 0 && queries.cols != base.cols)
    return Status::invalid_argument("rescore: query dimension " + std::to_string(queries.cols) +
                                    " != base dimension " + std::to_string(base.cols));
  VECSTASH_RETURN_IF_ERROR(validate_rows(queries, base.cols, "rescore queries"));
  if (candidates.nq != queries.rows) return Status::invalid_argument("rescore: one candidate row per query needed");
  if (params.k == 0 || params.k > kMaxK) return Status::invalid_argument("rescore: k out of range");
  if (params.metric == Metric::kHamming) return Status::invalid_argument("rescore: hamming is not a float32 metric");
  const std::size_t nq = queries.rows, k = params.k, d = base.cols;
  for (std::int64_t id : candidates.ids)
    if (id < -1 || (id >= 0 && static_cast<std::size_t>(id) >= base.rows))
      return Status::invalid_argument("rescore: candidate id " + std::to_string(id) + " out of range");
  out->resize(nq, k, params.metric);
  const auto dot = cpu::kernels().dot_f32;
  const bool hib = higher_is_better(params.metric);
  const int t = cpu::resolve_threads(params.threads, nq * candidates.k / 256 + 1);
  cpu::parallel_chunks(nq, t, [&](std::size_t b, std::size_t e) {
    cpu::TopKHeap h;
    for (std::size_t q = b; q < e; ++q) {
      h.reset(k);
      const float* qv = queries.row(q);
      const float qn = std::sqrt(cpu::squared_norm(qv, d));
      for (std::int64_t id : candidates.ids_of(q)) {
        if (id < 0) continue;
        const float* x = base.row(static_cast<std::size_t>(id));
        float s;
        if (params.metric == Metric::kL2) {
          double acc = 0;
          for (std::size_t j = 0; j < d; ++j) acc += double(qv[j] - x[j]) * double(qv[j] - x[j]);
          s = static_cast<float>(acc);
        } else {
          s = dot(qv, x, d);
          if (params.metric == Metric::kCos) {
            const float den = qn * std::sqrt(cpu::squared_norm(x, d));
            s = den > 0.0f ? s / den : 0.0f;
          }
        }
        if (row_bias != nullptr) s += row_bias[id];
        h.push(hib ? s : -s, id);
      }
      const auto sorted = h.take_sorted();
      for (std::size_t i = 0; i < sorted.size(); ++i) {
        out->ids[q * k + i] = sorted[i].id;
        out->scores[q * k + i] = hib ? sorted[i].key : -sorted[i].key;
      }
    }
  });
  return Status::ok();
}

}  // namespace vecstash::kernels
