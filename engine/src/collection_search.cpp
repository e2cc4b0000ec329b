// Collection: reads. Searches follow the plan fixed with the calibration (collection_state.h):
//   1. Eligible rows: every live row, or the rows a filter allows (payload indexes first).
//   2. Candidates: the approximate index, or an exact scan of the codes: all rows (GPU when present;
//      the int8 integer scan for int8 codes; the generic kernel otherwise), or only the eligible
//      rows, gathered, when a filter leaves few of them.
//   3. Final scores: float32 rescoring of oversampled candidates against the originals (from RAM or
//      from the originals file), or exact code scores.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "anchor_state.h"
#include "collection_state.h"
#include "originals.h"
#include "payload_store.h"
#include "row_store.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/ann_index.h"
#include "vecstash/engine/collection.h"

namespace vecstash::engine {

namespace {

// A filter that leaves at most this many rows is searched by gathering them (their codes scanned
// exactly, whatever the index), rather than by testing every row during a full scan or index walk.
constexpr std::size_t kGatherRows = 50000;
// Queries rescored per batch when the originals come from disk (bounds the gathered copy).
constexpr std::size_t kRescoreQueryBlock = 64;
// Rows per block when the originals are scanned from disk (the compression report's truth).
constexpr std::size_t kScanBlockRows = 65536;
// Candidates of the int8 integer scan per result, re-scored exactly from the codes when there is no
// float32 rescoring.
constexpr std::size_t kInt8CodeOversampling = 4;

// Re-rank each query's results by score (best first; ties: smaller row) and keep the best k.
void sort_and_trim(kernels::TopK* t, std::size_t k, bool higher_better) {
  std::vector<std::pair<float, std::int64_t>> row;
  kernels::TopK out;
  out.nq = t->nq;
  out.k = std::min(k, t->k);
  out.ids.assign(out.nq * out.k, -1);
  out.scores.assign(out.nq * out.k,
                    higher_better ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity());
  for (std::size_t i = 0; i < t->nq; ++i) {
    row.clear();
    for (std::size_t j = 0; j < t->k; ++j) {
      if (t->ids[i * t->k + j] >= 0) row.emplace_back(t->scores[i * t->k + j], t->ids[i * t->k + j]);
    }
    std::sort(row.begin(), row.end(), [higher_better](const auto& a, const auto& b) {
      if (a.first != b.first) return higher_better ? a.first > b.first : a.first < b.first;
      return a.second < b.second;
    });
    for (std::size_t j = 0; j < std::min(out.k, row.size()); ++j) {
      out.scores[i * out.k + j] = row[j].first;
      out.ids[i * out.k + j] = row[j].second;
    }
  }
  *t = std::move(out);
}

// Append b's results to a's per query (same nq), then keep the best k.
void merge_into(kernels::TopK* a, const kernels::TopK& b, std::size_t k, bool higher_better) {
  if (a->k == 0) {
    *a = b;
    return;
  }
  kernels::TopK both;
  both.nq = a->nq;
  both.k = a->k + b.k;
  both.ids.resize(both.nq * both.k);
  both.scores.resize(both.nq * both.k);
  for (std::size_t i = 0; i < a->nq; ++i) {
    std::copy_n(a->ids.data() + i * a->k, a->k, both.ids.data() + i * both.k);
    std::copy_n(a->scores.data() + i * a->k, a->k, both.scores.data() + i * both.k);
    std::copy_n(b.ids.data() + i * b.k, b.k, both.ids.data() + i * both.k + a->k);
    std::copy_n(b.scores.data() + i * b.k, b.k, both.scores.data() + i * both.k + a->k);
  }
  sort_and_trim(&both, k, higher_better);
  *a = std::move(both);
}

// Candidates taken from an approximate index per result when a hubness term re-ranks them.
constexpr std::size_t kHubnessIndexOversampling = 8;

std::vector<std::size_t> rows_of_bits(const std::vector<std::uint64_t>& bits) {
  std::vector<std::size_t> rows;
  for (std::size_t w = 0; w < bits.size(); ++w) {
    for (std::uint64_t b = bits[w]; b != 0; b &= b - 1)
      rows.push_back(w * 64 + static_cast<std::size_t>(std::countr_zero(b)));
  }
  return rows;
}

}  // namespace

// Caller holds mu_ (shared): the codes and version_ are stable.
bool Collection::scan_on_gpu(MatrixView<const float> queries, const kernels::SearchParams& params,
                             const std::uint64_t* allow, const float* row_bias, kernels::TopK* out) const {
  if (!shared_->gpu || !state_) return false;
  std::lock_guard lock(shared_->gpu_mu);
  Status s;
  if (shared_->gpu_owner != instance_ || shared_->gpu_version != version_) {
    s = shared_->gpu->upload_codes(state_->codec, rows_->view());
    shared_->gpu_owner = s.is_ok() ? instance_ : 0;
    shared_->gpu_version = version_;
  }
  if (s.is_ok()) s = shared_->gpu->search(queries, params, allow, row_bias, out);
  if (!s.is_ok()) {
    log_once(LogLevel::kWarn, "gpu-scan-failed", "GPU scan failed (" + s.to_string() + "); using the CPU");
    shared_->gpu_owner = 0;
    return false;
  }
  return true;
}

Result<std::vector<std::uint64_t>> Collection::allow_bits(const Filter* filter, std::size_t* count) const {
  if (!filter || filter->matches_all()) {
    if (count) *count = rows_->live_count();
    return std::vector<std::uint64_t>(rows_->live_bits(), rows_->live_bits() + rows_->live_words());
  }
  return payloads_->matching(*filter, *rows_, count);
}

Result<std::vector<float>> Collection::stored_rows(std::span<const std::size_t> rows) const {
  const std::size_t dim = config_.dim;
  std::vector<float> out(rows.size() * dim);
  if (originals_) {
    VECSTASH_RETURN_IF_ERROR(originals_->read_rows(rows, out.data()));
    return out;
  }
  // Codes only: decode, then map back through PCA.
  const State& state = *state_;
  const std::size_t cs = state.codec.code_size(), cd = state.code_dim();
  std::vector<std::uint8_t> packed(rows.size() * cs);
  for (std::size_t i = 0; i < rows.size(); ++i) std::memcpy(packed.data() + i * cs, rows_->code(rows[i]).data(), cs);
  std::vector<float> decoded(rows.size() * cd);
  VECSTASH_RETURN_IF_ERROR(
      state.codec.decode(packed, MatrixView<float>(decoded.data(), rows.size(), cd), shared_->options.threads));
  if (!state.has_pca) return decoded;
  VECSTASH_RETURN_IF_ERROR(state.pca.inverse_transform(MatrixView<const float>(decoded.data(), rows.size(), cd),
                                                       MatrixView<float>(out.data(), rows.size(), dim),
                                                       shared_->options.threads));
  return out;
}

Status Collection::rescore(MatrixView<const float> queries, const kernels::TopK& candidates, std::size_t k,
                           const float* row_bias, kernels::TopK* out) const {
  const std::size_t dim = config_.dim;
  const kernels::SearchParams sp{state_->plan.final_metric, k, shared_->options.threads};
  if (const float* ram = originals_->ram()) {
    return kernels::rescore_f32(queries, MatrixView<const float>(ram, rows_->rows(), dim), candidates, sp, out,
                                row_bias);
  }
  // From disk: per block of queries, read each candidate row once into a compact base and rescore
  // against it (ids renumbered into the base, then back).
  out->nq = 0;
  out->k = 0;
  out->ids.clear();
  out->scores.clear();
  std::vector<std::size_t> rows;
  std::vector<float> base, bias;
  for (std::size_t q0 = 0; q0 < candidates.nq; q0 += kRescoreQueryBlock) {
    const std::size_t nb = std::min(kRescoreQueryBlock, candidates.nq - q0);
    const std::size_t ck = candidates.k;
    rows.clear();
    for (std::size_t i = q0 * ck; i < (q0 + nb) * ck; ++i) {
      if (candidates.ids[i] >= 0) rows.push_back(static_cast<std::size_t>(candidates.ids[i]));
    }
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    base.resize(rows.size() * dim);
    VECSTASH_RETURN_IF_ERROR(originals_->read_rows(rows, base.data()));
    if (row_bias) {
      bias.resize(rows.size());
      for (std::size_t i = 0; i < rows.size(); ++i) bias[i] = row_bias[rows[i]];
    }
    kernels::TopK local;
    local.nq = nb;
    local.k = ck;
    local.ids.resize(nb * ck);
    local.scores.assign(candidates.scores.begin() + static_cast<std::ptrdiff_t>(q0 * ck),
                        candidates.scores.begin() + static_cast<std::ptrdiff_t>((q0 + nb) * ck));
    for (std::size_t i = 0; i < nb * ck; ++i) {
      const std::int64_t id = candidates.ids[q0 * ck + i];
      local.ids[i] = id < 0
                         ? -1
                         : static_cast<std::int64_t>(
                               std::lower_bound(rows.begin(), rows.end(), static_cast<std::size_t>(id)) - rows.begin());
    }
    kernels::TopK part;
    VECSTASH_RETURN_IF_ERROR(kernels::rescore_f32(
        MatrixView<const float>(queries.data + q0 * queries.stride, nb, dim, queries.stride),
        MatrixView<const float>(base.data(), rows.size(), dim), local, sp, &part, row_bias ? bias.data() : nullptr));
    for (std::int64_t& id : part.ids) {
      if (id >= 0) id = static_cast<std::int64_t>(rows[static_cast<std::size_t>(id)]);
    }
    if (out->k == 0) {
      out->k = part.k;
      out->nq = candidates.nq;
      out->ids.resize(out->nq * out->k);
      out->scores.resize(out->nq * out->k);
    }
    std::copy(part.ids.begin(), part.ids.end(), out->ids.begin() + static_cast<std::ptrdiff_t>(q0 * out->k));
    std::copy(part.scores.begin(), part.scores.end(), out->scores.begin() + static_cast<std::ptrdiff_t>(q0 * out->k));
  }
  return Status::ok();
}

Result<std::vector<std::vector<ScoredPoint>>> Collection::search(const SearchRequest& req) const {
  if (!req.space.name.empty() && req.space.name != config_.vector_name.value_or("")) return search_space(req);
  if (req.space.method || req.space.relative_input || req.space.hubness_weight) {
    return Status::invalid_argument(
        "a cross-model method, a hubness weight or a relative query needs 'using' a model or the relative vector");
  }
  return search_impl(req, nullptr);
}

Result<std::vector<std::vector<ScoredPoint>>> Collection::search_impl(const SearchRequest& req,
                                                                      const HubBias* hub) const {
  const std::size_t dim = config_.dim;
  const std::size_t nq = req.nq;
  if (req.queries.size() != nq * dim) {
    return Status::invalid_argument("collection '" + name_ + "': " + std::to_string(req.queries.size()) +
                                    " query values for " + std::to_string(nq) + " queries of dimension " +
                                    std::to_string(dim));
  }
  if (req.limit == 0) return Status::invalid_argument("limit must be at least 1");
  if (req.offset + req.limit > kernels::kMaxK) {
    return Status::invalid_argument("offset + limit must be at most " + std::to_string(kernels::kMaxK));
  }
  const double oversampling = req.oversampling.value_or(config_.search.oversampling);
  if (!(oversampling >= 1.0 && oversampling <= 100.0)) {
    return Status::invalid_argument("oversampling must be in [1, 100]");
  }
  if (req.hnsw_ef && (*req.hnsw_ef < 1 || *req.hnsw_ef > 1 << 16)) {
    return Status::invalid_argument("hnsw_ef must be in [1, 65536]");
  }
  if (req.ivf_nprobe && (*req.ivf_nprobe < 1 || *req.ivf_nprobe > 1 << 20)) {
    return Status::invalid_argument("ivf_nprobe must be in [1, 1048576]");
  }
  if (req.score_threshold && !std::isfinite(*req.score_threshold)) {
    return Status::invalid_argument("score_threshold must be a finite number");
  }
  std::vector<float> q(req.queries.begin(), req.queries.end());
  for (std::size_t i = 0; i < q.size(); ++i) {
    if (!std::isfinite(q[i])) {
      return Status::invalid_argument("query " + std::to_string(i / dim) + ": element " + std::to_string(i % dim) +
                                      " is not a finite number");
    }
  }
  if (config_.metric == Metric::kCos) {
    for (std::size_t i = 0; i < nq; ++i) normalize(q.data() + i * dim, dim);
  }
  std::vector<std::vector<ScoredPoint>> results(nq);
  if (nq == 0) return results;

  std::shared_lock lock(mu_);
  const int threads = shared_->options.threads;
  const std::size_t want = req.offset + req.limit;
  const std::size_t rows = rows_->rows();
  const Metric fmetric = final_metric(config_);
  // Hubness correction: each row's final score is lowered by weight x its term (anchors.h). The exact
  // scans take it as a per-row bias over all rows; an index's candidates get it one by one.
  const std::vector<float>* terms = nullptr;
  if (hub) {
    const auto it = hubs_.find(hub->model);
    if (it == hubs_.end() || it->second.size() < rows) {
      return Status::unavailable("collection '" + name_ + "': model '" + hub->model +
                                 "' changed during the search; retry");
    }
    terms = &it->second;
  }
  // -weight x term per row, times `scale` (the natural form of the scan metric).
  auto full_bias = [&](float scale) {
    std::vector<float> b(rows);
    for (std::size_t r = 0; r < rows; ++r) b[r] = -scale * hub->weight * (*terms)[r];
    return b;
  };
  // Index candidates: add the term, then keep the best `want`.
  auto add_terms = [&](kernels::TopK* t) {
    for (std::size_t i = 0; i < t->ids.size(); ++i) {
      if (t->ids[i] >= 0) t->scores[i] -= hub->weight * (*terms)[static_cast<std::size_t>(t->ids[i])];
    }
    sort_and_trim(t, want, higher_is_better(fmetric));
  };
  std::vector<float> bias_final, bias_scan;
  const MatrixView<const float> qv(q.data(), nq, dim);
  // Eligible rows. No filter and no dead rows: no eligibility checks at all in the scan or the walk.
  const bool filtered = req.filter && !req.filter->matches_all();
  std::size_t eligible = rows_->live_count();
  std::vector<std::uint64_t> allow;
  if (filtered) {
    auto bits = allow_bits(req.filter, &eligible);
    if (!bits.is_ok()) return with_collection(bits.status(), name_);
    allow = std::move(*bits);
  }
  const bool everything = !filtered && rows_->live_count() == rows;
  const std::uint64_t* allow_ptr = everything ? nullptr : filtered ? allow.data() : rows_->live_bits();

  kernels::TopK found;
  if (eligible == 0) {
    found.resize(nq, 0, fmetric);
  } else if (!state_) {
    // Not calibrated: exact float32 search over the pending rows (held in RAM until calibration).
    if (hub) bias_final = full_bias(1.0f);
    const float* final_bias = hub ? bias_final.data() : nullptr;
    kernels::SearchParams sp{fmetric, want, threads};
    VECSTASH_RETURN_IF_ERROR(kernels::search_f32(qv, MatrixView<const float>(originals_->ram(), rows, dim), sp, &found,
                                                 allow_ptr, final_bias));
  } else {
    const State& state = *state_;
    const SearchPlan& plan = state.plan;
    const Metric smetric = plan.scan_metric;
    const bool do_rescore = originals_ != nullptr && req.rescore.value_or(config_.search.rescore);
    // Few eligible rows: scan them alone, whatever the index.
    const bool gather = filtered && eligible <= kGatherRows && eligible < rows / 2;
    const bool use_index = index_ && !req.exact && !gather;
    std::size_t r = want;
    if (do_rescore) r = std::min<std::size_t>(kernels::kMaxK, static_cast<std::size_t>(std::ceil(want * oversampling)));
    // The index ranks without the hubness term: take more of its candidates and re-rank them.
    if (hub && use_index) {
      if (index_->is_binary() && !do_rescore) {
        return Status::invalid_argument("collection '" + name_ +
                                        "': the hubness correction over a binary index needs rescoring "
                                        "(kept originals); search with exact or a weight of 0");
      }
      // (oversampling x the results even without rescoring: the terms move points up from deep ranks)
      r = std::min<std::size_t>(kernels::kMaxK,
                                static_cast<std::size_t>(std::ceil(want * oversampling)) * kHubnessIndexOversampling);
    }
    if (hub && !use_index) {
      // The exact scan adds the term in the scan metric's natural form: a similarity s' = s - w r, or
      // for the b1 rows of a cosine collection (ranked by squared L2, cos = 1 - d^2 / 2) d^2 + 2 w r;
      // rescoring adds it to the float32 similarity.
      bias_final = full_bias(1.0f);
      if (smetric == Metric::kL2) bias_scan = full_bias(-2.0f);
    }
    const float* scan_bias = !hub ? nullptr : smetric == Metric::kL2 ? bias_scan.data() : bias_final.data();
    // Queries in the space of the codes.
    std::vector<float> projected;
    MatrixView<const float> qs = qv;
    if (state.has_pca) {
      projected.resize(nq * state.pca.dim_out());
      VECSTASH_RETURN_IF_ERROR(state.pca.transform_queries(
          qv, MatrixView<float>(projected.data(), nq, state.pca.dim_out()), smetric, threads));
      qs = MatrixView<const float>(projected.data(), nq, state.pca.dim_out());
    }
    // The int8 integer scan gives candidates whose scores are approximations: rescored with the
    // originals, or else re-scored exactly from their codes.
    const bool int8_scan = plan.int8_scan && !hub && !use_index;
    const bool exact_codes = int8_scan && !do_rescore;
    const std::size_t scan_k =
        exact_codes ? std::min<std::size_t>(kernels::kMaxK, std::max(want * kInt8CodeOversampling, want + 16)) : r;
    kernels::TopK candidates;
    if (use_index) {
      AnnSearchParams ap;
      ap.ef = req.hnsw_ef.value_or(config_.search.hnsw_ef);
      ap.nprobe = req.ivf_nprobe.value_or(config_.search.ivf_nprobe);
      const std::function<bool(std::int64_t)> pred = [allow_ptr, rows](std::int64_t label) {
        return label >= 0 && static_cast<std::size_t>(label) < rows &&
               kernels::row_allowed(allow_ptr, static_cast<std::size_t>(label));
      };
      if (index_->is_binary()) {
        const std::size_t cs = state.codec.code_size();
        std::vector<std::uint8_t> qcodes(nq * cs);
        VECSTASH_RETURN_IF_ERROR(state.codec.encode(qs, qcodes, {}, threads));
        VECSTASH_RETURN_IF_ERROR(
            index_->search_binary(qcodes.data(), nq, r, ap, everything ? nullptr : &pred, &candidates));
      } else {
        VECSTASH_RETURN_IF_ERROR(index_->search(qs, r, ap, everything ? nullptr : &pred, &candidates));
      }
    } else if (gather) {
      // The eligible rows' codes (and norms, terms) side by side, scanned exactly.
      const std::vector<std::size_t> picked = rows_of_bits(allow);
      const std::size_t cs = state.codec.code_size();
      std::vector<std::uint8_t> codes(picked.size() * cs);
      std::vector<float> norms(rows_->has_norms() ? picked.size() : 0), bias(scan_bias ? picked.size() : 0);
      for (std::size_t i = 0; i < picked.size(); ++i) {
        std::memcpy(codes.data() + i * cs, rows_->code(picked[i]).data(), cs);
        if (!norms.empty()) norms[i] = rows_->norms()[picked[i]];
        if (scan_bias) bias[i] = scan_bias[picked[i]];
      }
      kernels::CodeView view{codes.data(), picked.size(), norms.empty() ? nullptr : norms.data(), nullptr,
                             scan_bias ? bias.data() : nullptr};
      kernels::SearchParams sp{smetric, scan_k, threads};
      if (int8_scan) {
        VECSTASH_RETURN_IF_ERROR(kernels::search_i8_candidates_cpu(state.codec, qs, view, sp, &candidates));
      } else {
        VECSTASH_RETURN_IF_ERROR(kernels::search_cpu(state.codec, qs, view, sp, &candidates));
      }
      for (std::int64_t& id : candidates.ids) {
        if (id >= 0) id = static_cast<std::int64_t>(picked[static_cast<std::size_t>(id)]);
      }
    } else {
      kernels::CodeView view = rows_->view();
      view.allow = allow_ptr;
      view.row_bias = scan_bias;
      kernels::SearchParams sp{smetric, scan_k, threads};
      if (!exact_codes && scan_on_gpu(qs, sp, allow_ptr, view.row_bias, &candidates)) {
        // done on the device
      } else if (int8_scan) {
        // Candidates only: int8 codes scored against an integer-quantised query (integer SIMD).
        VECSTASH_RETURN_IF_ERROR(kernels::search_i8_candidates_cpu(state.codec, qs, view, sp, &candidates));
      } else {
        VECSTASH_RETURN_IF_ERROR(kernels::search_cpu(state.codec, qs, view, sp, &candidates));
      }
    }
    if (exact_codes) {
      // Exact code scores of the integer scan's candidates, per query.
      const std::size_t cs = state.codec.code_size(), ck = candidates.k;
      std::vector<std::uint8_t> codes(ck * cs);
      std::vector<float> norms(ck), scores(ck);
      for (std::size_t i = 0; i < nq; ++i) {
        std::size_t m = 0;
        for (std::size_t j = 0; j < ck; ++j) {
          const std::int64_t id = candidates.ids[i * ck + j];
          if (id < 0) break;
          std::memcpy(codes.data() + m * cs, rows_->code(static_cast<std::size_t>(id)).data(), cs);
          if (rows_->has_norms()) norms[m] = rows_->norms()[id];
          ++m;
        }
        if (m == 0) continue;
        const kernels::CodeView view{codes.data(), m, rows_->has_norms() ? norms.data() : nullptr, nullptr, nullptr};
        VECSTASH_RETURN_IF_ERROR(kernels::score_all_cpu(state.codec,
                                                        MatrixView<const float>(qs.data + i * qs.stride, 1, qs.cols),
                                                        view, smetric, MatrixView<float>(scores.data(), 1, m), 1));
        std::copy_n(scores.data(), m, candidates.scores.data() + i * ck);
      }
      sort_and_trim(&candidates, want, higher_is_better(smetric));
    }
    if (do_rescore) {
      // With an index and a hubness term: every candidate's float32 score, then the terms.
      const bool later = hub && use_index;
      VECSTASH_RETURN_IF_ERROR(rescore(qv, candidates, later ? candidates.k : want,
                                       hub && !use_index ? bias_final.data() : nullptr, &found));
      if (later) add_terms(&found);
    } else {
      found = std::move(candidates);
      // Put code scores on the scale of the metric. Inner products over PCA-centred rows miss the
      // constant q . mean; b1 rows of a cosine collection were ranked by L2 to their reconstruction
      // (unit query and row: cos = 1 - d^2 / 2).
      for (std::size_t i = 0; i < nq; ++i) {
        float shift = 0.0f;
        if (plan.ip_shift) {
          const auto& mean = state.pca.params().mean;
          double dot = 0.0;
          for (std::size_t j = 0; j < dim; ++j) dot += static_cast<double>(q[i * dim + j]) * mean[j];
          shift = static_cast<float>(dot);
        }
        for (std::size_t j = 0; j < found.k; ++j) {
          float& s = found.scores[i * found.k + j];
          if (found.ids[i * found.k + j] < 0) continue;
          if (smetric == Metric::kIp) s += shift;
          if (plan.cos_by_l2) s = 1.0f - 0.5f * s;
        }
      }
      // Index candidates carry no hubness term yet (the exact scan added it already).
      if (hub && use_index) add_terms(&found);
    }
  }

  return collect_results(found, req, config_.metric == Metric::kL2);
}

Result<std::vector<std::vector<ScoredPoint>>> Collection::collect_results(const kernels::TopK& found,
                                                                          const SearchRequest& req,
                                                                          bool distance) const {
  std::vector<std::vector<ScoredPoint>> results(found.nq);
  std::vector<std::size_t> rows;  // of every returned point, in result order
  for (std::size_t i = 0; i < found.nq; ++i) {
    auto& out = results[i];
    std::size_t seen = 0;
    for (std::size_t j = 0; j < found.k; ++j) {
      const std::int64_t row = found.ids[i * found.k + j];
      if (row < 0) break;
      float score = found.scores[i * found.k + j];
      if (distance) score = std::sqrt(std::max(0.0f, score));
      if (req.score_threshold && (distance ? score > *req.score_threshold : score < *req.score_threshold)) break;
      if (seen++ < req.offset) continue;
      if (out.size() >= req.limit) break;
      ScoredPoint p;
      p.id = rows_->id(static_cast<std::size_t>(row));
      p.score = score;
      out.push_back(std::move(p));
      rows.push_back(static_cast<std::size_t>(row));
    }
  }
  if (rows.empty() || (!req.with_payload && !req.with_vector)) return results;
  // Payloads and vectors of all returned points in one batched read each.
  std::vector<nlohmann::json> payloads;
  std::vector<float> vectors;
  if (req.with_payload) {
    auto read = payloads_->get_many(rows, *rows_);
    if (!read.is_ok()) return with_collection(read.status(), name_);
    payloads = std::move(*read);
  }
  if (req.with_vector) {
    auto read = stored_rows(rows);
    if (!read.is_ok()) return with_collection(read.status(), name_);
    vectors = std::move(*read);
  }
  std::size_t at = 0;
  const std::size_t dim = config_.dim;
  for (auto& out : results) {
    for (ScoredPoint& p : out) {
      if (req.with_payload) p.payload = std::move(payloads[at]);
      if (req.with_vector)
        p.vector = std::vector<float>(vectors.begin() + static_cast<std::ptrdiff_t>(at * dim),
                                      vectors.begin() + static_cast<std::ptrdiff_t>((at + 1) * dim));
      ++at;
    }
  }
  return results;
}

Result<std::vector<Record>> Collection::retrieve(std::span<const PointId> ids, bool with_payload,
                                                 bool with_vector) const {
  std::shared_lock lock(mu_);
  std::vector<Record> out;
  std::vector<std::size_t> rows;
  for (const PointId& id : ids) {
    const auto found = rows_->find(id);
    if (!found) continue;
    out.push_back(Record{id, std::nullopt, std::nullopt});
    rows.push_back(*found);
  }
  if (with_payload && !rows.empty()) {
    auto payloads = payloads_->get_many(rows, *rows_);
    if (!payloads.is_ok()) return with_collection(payloads.status(), name_);
    for (std::size_t i = 0; i < rows.size(); ++i) out[i].payload = std::move((*payloads)[i]);
  }
  if (with_vector && !rows.empty()) {
    auto vectors = stored_rows(rows);
    if (!vectors.is_ok()) return with_collection(vectors.status(), name_);
    const std::size_t dim = config_.dim;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      out[i].vector = std::vector<float>(vectors->begin() + static_cast<std::ptrdiff_t>(i * dim),
                                         vectors->begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    }
  }
  return out;
}

Result<ScrollPage> Collection::scroll(const ScrollRequest& req) const {
  if (req.limit == 0) return Status::invalid_argument("limit must be at least 1");
  std::shared_lock lock(mu_);
  std::vector<std::size_t> rows;
  auto allow = allow_bits(req.filter);
  if (!allow.is_ok()) return with_collection(allow.status(), name_);
  for (std::size_t w = 0; w < allow->size(); ++w) {
    for (std::uint64_t b = (*allow)[w]; b != 0; b &= b - 1) {
      const std::size_t r = w * 64 + static_cast<std::size_t>(std::countr_zero(b));
      if (req.offset && rows_->id(r) < *req.offset) continue;
      rows.push_back(r);
    }
  }
  const std::size_t take = std::min(rows.size(), req.limit + 1);
  auto by_id = [this](std::size_t a, std::size_t b) { return rows_->id(a) < rows_->id(b); };
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(take), rows.end(), by_id);
  ScrollPage page;
  const std::size_t n = std::min(take, req.limit);
  const std::span<const std::size_t> picked(rows.data(), n);
  std::vector<nlohmann::json> payloads;
  std::vector<float> vectors;
  if (req.with_payload && n > 0) {
    auto read = payloads_->get_many(picked, *rows_);
    if (!read.is_ok()) return with_collection(read.status(), name_);
    payloads = std::move(*read);
  }
  if (req.with_vector && n > 0) {
    auto read = stored_rows(picked);
    if (!read.is_ok()) return with_collection(read.status(), name_);
    vectors = std::move(*read);
  }
  const std::size_t dim = config_.dim;
  for (std::size_t i = 0; i < n; ++i) {
    Record rec;
    rec.id = rows_->id(rows[i]);
    if (req.with_payload) rec.payload = std::move(payloads[i]);
    if (req.with_vector) {
      rec.vector = std::vector<float>(vectors.begin() + static_cast<std::ptrdiff_t>(i * dim),
                                      vectors.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    }
    page.points.push_back(std::move(rec));
  }
  if (take > req.limit) page.next_offset = rows_->id(rows[req.limit]);
  return page;
}

std::size_t Collection::count() const {
  std::shared_lock lock(mu_);
  return rows_->live_count();
}

Result<std::size_t> Collection::count(const Filter* filter) const {
  std::shared_lock lock(mu_);
  if (!filter || filter->matches_all()) return rows_->live_count();
  std::size_t n = 0;
  auto bits = allow_bits(filter, &n);
  if (!bits.is_ok()) return with_collection(bits.status(), name_);
  return n;
}

MemoryUsage Collection::memory_usage() const {
  std::shared_lock lock(mu_);
  MemoryUsage m;
  m.codes = rows_->code_bytes() + rel_codes_.capacity() + rel_norms_.capacity() * sizeof(float);
  for (const auto& [model_name, terms] : hubs_) m.codes += terms.capacity() * sizeof(float);
  m.originals = originals_ ? originals_->memory_bytes() : 0;
  m.ids = rows_->id_bytes();
  m.payloads = payloads_->memory_bytes() - payloads_->index_bytes();
  m.payload_index = payloads_->index_bytes();
  // Counted from FAISS's structures for HNSW (no copy on every /metrics scrape or info call).
  if (index_) m.index = index_->memory_bytes();
  return m;
}

CollectionInfo Collection::info() const {
  CollectionInfo info;
  info.name = name_;
  info.config = config_;
  info.memory = memory_usage();
  info.recalibration = recalibration_progress();
  std::shared_lock lock(mu_);
  info.points = rows_->live_count();
  info.rows = rows_->rows();
  info.calibrated = state_ != nullptr;
  if (state_) {
    info.code_dim = state_->code_dim();
    info.code_bytes = state_->codec.code_size();
    info.generation = state_->generation;
    info.explained_variance = state_->has_pca ? state_->pca.explained_variance_ratio() : 1.0;
  }
  info.indexed = index_ ? indexed_rows_ : 0;
  return info;
}

Result<CompressionReport> Collection::evaluate_compression(std::size_t sample, std::size_t k,
                                                           std::uint64_t seed) const {
  if (sample < 1 || sample > 10000) return Status::invalid_argument("sample must be in [1, 10000]");
  if (k < 1 || k > 1000) return Status::invalid_argument("k must be in [1, 1000]");
  CompressionReport rep;
  rep.k = k;
  rep.dim = config_.dim;
  rep.float32_bytes = 4.0 * static_cast<double>(config_.dim);
  rep.oversampling = config_.search.oversampling;
  const MemoryUsage mem = memory_usage();

  const std::size_t dim = config_.dim;
  std::vector<float> queries;
  std::vector<PointId> query_ids;
  std::vector<std::vector<PointId>> truth;
  {
    std::shared_lock lock(mu_);
    const std::size_t live = rows_->live_count();
    rep.points = live;
    if (state_) {
      rep.code_dim = state_->code_dim();
      rep.code_bytes = state_->codec.code_size();
    }
    if (live > 0) {
      const double per = 1.0 / static_cast<double>(live);
      rep.code_bytes_per_vector = static_cast<double>(mem.codes) * per;
      rep.ram_bytes_per_vector = static_cast<double>(mem.total()) * per;
    }
    if (!state_) {
      rep.code_bytes_per_vector = rep.float32_bytes;
      rep.note = "not calibrated yet: the " + std::to_string(live) +
                 " points are stored as float32 until calibration_sample (" +
                 std::to_string(config_.calibration_sample) + ") is reached";
    } else if (!originals_) {
      rep.note = "codes only: float32 originals are not kept, so there is no float32 truth to compare with";
    } else if (live < 2) {
      rep.note = "fewer than 2 points";
    }
    if (rep.code_bytes_per_vector > 0) rep.compression_ratio = rep.float32_bytes / rep.code_bytes_per_vector;
    if (!rep.note.empty()) return rep;

    // Sample live rows with a fixed seed (a partial Fisher-Yates over the live row list).
    std::vector<std::size_t> rows = rows_->live_rows();
    std::mt19937_64 rng(seed);
    const std::size_t m = std::min(sample, rows.size());
    for (std::size_t i = 0; i < m; ++i) {
      std::uniform_int_distribution<std::size_t> pick(i, rows.size() - 1);
      std::swap(rows[i], rows[pick(rng)]);
    }
    rows.resize(m);
    queries.resize(m * dim);
    VECSTASH_RETURN_IF_ERROR(originals_->read_rows(rows, queries.data()));
    for (std::size_t i = 0; i < m; ++i) query_ids.push_back(rows_->id(rows[i]));
    // The truth: exact float32 search over the live originals (from RAM, or streamed from disk in
    // blocks); the query point itself is dropped.
    const bool everything = live == rows_->rows();
    const MatrixView<const float> qv(queries.data(), m, dim);
    kernels::SearchParams sp{final_metric(config_), std::min(k + 1, live), shared_->options.threads};
    kernels::TopK top;
    const std::uint64_t* allow = everything ? nullptr : rows_->live_bits();
    if (const float* ram = originals_->ram()) {
      VECSTASH_RETURN_IF_ERROR(
          kernels::search_f32(qv, MatrixView<const float>(ram, rows_->rows(), dim), sp, &top, allow));
    } else {
      std::vector<float> block;
      for (std::size_t begin = 0; begin < rows_->rows(); begin += kScanBlockRows) {
        const std::size_t n = std::min(kScanBlockRows, rows_->rows() - begin);
        block.resize(n * dim);
        VECSTASH_RETURN_IF_ERROR(originals_->read_range(begin, n, block.data()));
        kernels::TopK part;
        // kScanBlockRows is a multiple of 64: the block's eligibility bits start at a word.
        VECSTASH_RETURN_IF_ERROR(kernels::search_f32(qv, MatrixView<const float>(block.data(), n, dim), sp, &part,
                                                     allow ? allow + begin / 64 : nullptr));
        for (std::int64_t& id : part.ids) {
          if (id >= 0) id += static_cast<std::int64_t>(begin);
        }
        merge_into(&top, part, sp.k, higher_is_better(sp.metric));
      }
    }
    truth.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < top.k && truth[i].size() < k; ++j) {
        const std::int64_t r = top.ids[i * top.k + j];
        if (r < 0) break;
        const PointId& id = rows_->id(static_cast<std::size_t>(r));
        if (id != query_ids[i]) truth[i].push_back(id);
      }
    }
  }
  rep.sample = query_ids.size();

  // Codes alone, then codes + rescoring, through the normal search path (exact scan).
  auto recall_of = [&](bool rescore) -> Result<double> {
    SearchRequest req;
    req.queries = queries;
    req.nq = query_ids.size();
    req.limit = std::min<std::size_t>(k + 1, kernels::kMaxK);
    req.exact = true;
    req.rescore = rescore;
    auto got = search(req);
    if (!got) return got.status();
    std::size_t hits = 0, total = 0;
    for (std::size_t i = 0; i < query_ids.size(); ++i) {
      std::vector<PointId> mine;
      for (const ScoredPoint& p : got.value()[i]) {
        if (p.id != query_ids[i] && mine.size() < truth[i].size()) mine.push_back(p.id);
      }
      for (const PointId& t : truth[i]) hits += std::find(mine.begin(), mine.end(), t) != mine.end() ? 1 : 0;
      total += truth[i].size();
    }
    return total == 0 ? 1.0 : static_cast<double>(hits) / static_cast<double>(total);
  };
  auto codes = recall_of(false);
  if (!codes) return codes.status();
  rep.recall_codes = codes.value();
  auto rescored = recall_of(true);
  if (!rescored) return rescored.status();
  rep.recall_rescored = rescored.value();
  return rep;
}

}  // namespace vecstash::engine
