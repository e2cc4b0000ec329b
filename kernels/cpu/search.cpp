#include "vecstash/kernels/search.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <string>

#include "cpu/codec_rows.h"
#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
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
  if (codes.rows > 0 && (params.metric == Metric::kL2 || params.metric == Metric::kCos) && codes.sq_norms == nullptr)
    return Status::invalid_argument(std::string("search: metric ") + std::string(to_string(params.metric)) +
                                    " needs the squared norms of the codes");
  return Status::ok();
}

namespace cpu {
namespace {

/// A query prepared for one codec and metric (see codec.h for the scoring identity).
struct PreparedQuery {
  std::vector<float> q;               // q[j] * scale[j]
  float c0 = 0, qq = 0, qn = 0, qsum = 0;
  std::vector<float> lut;             // b1 asymmetric: (dim+7)/8 tables of 256 partial sums
  std::vector<std::uint64_t> bits;    // b1 hamming: the binarised query
};

class Scorer {
 public:
  Scorer(const Codec& codec, Metric metric)
      : p_(codec.params()), metric_(metric), t_(kernels()), dim_(codec.dim()), cs_(codec.code_size()),
        dot_(t_.dot[static_cast<int>(codec.kind())]) {}

  void prepare(const float* query, PreparedQuery* pq) const {
    pq->q.assign(query, query + dim_);
    double qq = 0, c0 = 0;
    for (std::size_t j = 0; j < dim_; ++j) {
      qq += static_cast<double>(query[j]) * query[j];
      if (!p_.offset.empty()) c0 += static_cast<double>(query[j]) * p_.offset[j];
      if (!p_.scale.empty()) pq->q[j] = query[j] * p_.scale[j];
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
    const std::size_t nbytes = (dim_ + 7) / 8;
    pq->lut.assign(nbytes * 256, 0.0f);
    double qsum = 0;
    for (std::size_t b = 0; b < nbytes; ++b) {
      float* t = pq->lut.data() + b * 256;
      for (unsigned v = 1; v < 256; ++v) {
        const std::size_t j = 8 * b + static_cast<std::size_t>(std::countr_zero(v));
        t[v] = t[v & (v - 1)] + (j < dim_ ? pq->q[j] : 0.0f);
      }
    }
    for (float v : pq->q) qsum += v;
    pq->qsum = static_cast<float>(qsum);
  }

  /// Scores of rows [r0, r1) for one prepared query, in the metric's natural form.
  void score_rows(const PreparedQuery& pq, const CodeView& codes, std::size_t r0, std::size_t r1, float* out) const {
    const bool per_vector = p_.scale_mode == ScaleMode::kPerVector;
    for (std::size_t r = r0; r < r1; ++r) {
      const std::uint8_t* c = codes.codes + r * cs_;
      if (metric_ == Metric::kHamming) {
        std::uint64_t d = 0;
        for (std::size_t w = 0; w < pq.bits.size(); ++w) {
          std::uint64_t x;
          std::memcpy(&x, c + 8 * w, 8);
          d += static_cast<std::uint64_t>(std::popcount(x ^ pq.bits[w]));
        }
        out[r - r0] = static_cast<float>(d);
        continue;
      }
      float raw;
      if (p_.kind == CodeKind::kB1) {
        float s = 0;
        const std::size_t nbytes = (dim_ + 7) / 8;
        for (std::size_t b = 0; b < nbytes; ++b) s += pq.lut[b * 256 + c[b]];
        raw = 2.0f * s - pq.qsum;
      } else {
        raw = dot_(pq.q.data(), c, dim_);
      }
      if (per_vector) raw *= row_scale(c, dim_);
      const float ip = pq.c0 + raw;
      switch (metric_) {
        case Metric::kIp: out[r - r0] = ip; break;
        case Metric::kL2: out[r - r0] = pq.qq - 2.0f * ip + codes.sq_norms[r]; break;
        case Metric::kCos: {
          const float den = pq.qn * std::sqrt(codes.sq_norms[r]);
          out[r - r0] = den > 0.0f ? ip / den : 0.0f;
          break;
        }
        case Metric::kHamming: break;
      }
    }
  }

  std::size_t code_size() const noexcept { return cs_; }

 private:
  const CodecParams& p_;
  Metric metric_;
  const KernelTable& t_;
  std::size_t dim_, cs_;
  DotFn dot_;
};

constexpr std::size_t kQueryGroup = 8;

std::size_t block_rows(std::size_t code_size) { return std::max<std::size_t>(16, (64 * 1024) / std::max<std::size_t>(code_size, 1)); }

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
  std::size_t parts = 1;
  if (groups < 2 * static_cast<std::size_t>(threads))
    parts = std::min<std::size_t>(static_cast<std::size_t>(threads), std::max<std::size_t>(1, n / 2048));
  const std::size_t brows = cpu::block_rows(scorer.code_size());

  std::vector<cpu::TopKHeap> heaps(parts * nq, cpu::TopKHeap(k));
  cpu::parallel_for_dynamic(groups * parts, threads, [&](std::size_t task) {
    const std::size_t g = task / parts, p = task % parts;
    const std::size_t q0 = g * cpu::kQueryGroup, q1 = std::min(nq, q0 + cpu::kQueryGroup);
    const std::size_t r0 = n * p / parts, r1 = n * (p + 1) / parts;
    std::vector<cpu::PreparedQuery> prep(q1 - q0);
    for (std::size_t q = q0; q < q1; ++q) scorer.prepare(queries.row(q), &prep[q - q0]);
    std::vector<float> buf(brows);
    for (std::size_t b0 = r0; b0 < r1; b0 += brows) {
      const std::size_t b1 = std::min(r1, b0 + brows);
      for (std::size_t q = q0; q < q1; ++q) {
        scorer.score_rows(prep[q - q0], codes, b0, b1, buf.data());
        cpu::TopKHeap& h = heaps[p * nq + q];
        for (std::size_t r = b0; r < b1; ++r) {
          const float key = hib ? buf[r - b0] : -buf[r - b0];
          if (!h.rejects(key)) h.push(key, static_cast<std::int64_t>(r));
        }
      }
    }
  });
  cpu::parallel_chunks(nq, threads, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) {
      cpu::TopKHeap& h = heaps[q];
      for (std::size_t p = 1; p < parts; ++p)
        for (const auto& c : heaps[p * nq + q].items()) h.push(c.key, c.id);
      const auto sorted = h.take_sorted();
      for (std::size_t i = 0; i < sorted.size(); ++i) {
        out->ids[q * k + i] = sorted[i].id;
        out->scores[q * k + i] = hib ? sorted[i].key : -sorted[i].key;
      }
    }
  });
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
  const int t = cpu::resolve_threads(threads, queries.rows);
  cpu::parallel_for_dynamic(queries.rows, t, [&](std::size_t q) {
    cpu::PreparedQuery pq;
    scorer.prepare(queries.row(q), &pq);
    scorer.score_rows(pq, codes, 0, codes.rows, out.row(q));
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

Status search_f32(MatrixView<const float> queries, MatrixView<const float> base, const SearchParams& params,
                  TopK* out) {
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
  return search_cpu(*codec, queries, cv, params, out);
}

Status rescore_f32(MatrixView<const float> queries, MatrixView<const float> base, const TopK& candidates,
                   const SearchParams& params, TopK* out) {
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
  const auto& dot = cpu::kernels().dot[static_cast<int>(CodeKind::kF32)];
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
          s = dot(qv, reinterpret_cast<const std::uint8_t*>(x), d);
          if (params.metric == Metric::kCos) {
            const float den = qn * std::sqrt(cpu::squared_norm(x, d));
            s = den > 0.0f ? s / den : 0.0f;
          }
        }
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
