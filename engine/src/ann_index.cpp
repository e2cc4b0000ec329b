// The FAISS adapter. FAISS 1.7.3 facts this file is built around (each checked with a probe):
//  - IndexIDMap::search rejects any SearchParameters ("search params not supported for this
//    index"), so searches go to the wrapped index and internal ids are translated with id_map here.
//  - IndexHNSW::search sizes its candidate queue from the member efSearch and reads
//    SearchParametersHNSW::efSearch only in the stop test (fixed upstream in faiss#3233, 1.8.0):
//    a per-query ef above the member has no effect. The HNSW walk is therefore done here, on
//    FAISS's graph, distance computers and MinimaxHeap, with the same rules as HNSW::search.
//    With ef equal to the stored efSearch (and >= k) it returns what IndexHNSW::search returns.
//  - IndexHNSW::search and the binary searches open an OpenMP team unconditionally (also for one
//    query); IndexFlat/IndexIVF use `if`/num_threads clauses. See OmpTeamCap.
//  - IndexBinaryHNSW/IVF/Flat::search reject SearchParameters; IndexBinaryIVF::search_preassigned
//    honours IVFSearchParameters::nprobe but ignores its selector.
//  - Clustering prints "WARNING clustering ..." to stderr when the sample is small; that is silenced
//    (ClusteringParameters::min_points_per_centroid only controls the warning) and logged instead.
//  - Factory "PQ<m>" trains polysemous codes (minutes on small data); see prepare_training.
//  - index_factory does not reject every bad number: "IVF0,Flat" later fails an assert (abort),
//    "HNSW<M>,PQ<m>" ignores the metric (always L2). Both are checked before or after the factory.
#include "vecstash/engine/ann_index.h"

#include <faiss/Index.h>
#include <faiss/IndexBinary.h>
#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexBinaryHNSW.h>
#include <faiss/IndexBinaryIVF.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFFastScan.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexIVFPQR.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/impl/DistanceComputer.h>
#include <faiss/impl/HNSW.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/InvertedLists.h>
#include <faiss/utils/Heap.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cstring>
#include <exception>
#include <limits>
#include <new>
#include <numeric>
#include <optional>
#include <type_traits>
#include <typeinfo>
#include <utility>

#include "vecstash/common/blob.h"
#include "vecstash/common/log.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::engine {

using kernels::TopK;
using FaissIdx = faiss::Index::idx_t;
static_assert(std::is_same_v<FaissIdx, std::int64_t>, "labels are passed to FAISS without conversion");

namespace {

constexpr std::string_view kMagic = "VSAX";
constexpr std::size_t kMaxSpecLength = 256;
constexpr std::size_t kMaxDim = static_cast<std::size_t>(INT_MAX);
/// A filtered HNSW query that finds fewer than k allowed rows raises ef up to this (or the request's
/// ef if larger) before scanning every stored row. FAISS's MinimaxHeap pops in O(ef), so ef must
/// stay bounded.
constexpr int kMaxFilteredEf = 4096;

// ---- errors ---------------------------------------------------------------------------------------

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

/// FAISS messages look like "Error in <signature> at <file>:<line>: [Error: '<cond>' failed: ]<text>";
/// keep the part after the location.
std::string faiss_message(const std::exception& e) {
  std::string m = e.what();
  if (m.rfind("Error in ", 0) == 0) {
    const std::size_t at = m.find(" at ");
    const std::size_t colon = at == std::string::npos ? std::string::npos : m.find(": ", at);
    if (colon != std::string::npos) m = m.substr(colon + 2);
  }
  if (m.rfind("Error: ", 0) == 0) m = m.substr(7);
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

/// Translate an exception caught at this boundary. bad_alloc is ResourceExhausted whatever `code`.
Status from_exception(StatusCode code, const std::string& context, const std::exception& e) {
  if (dynamic_cast<const std::bad_alloc*>(&e) != nullptr) {
    return Status::resource_exhausted(context + ": out of memory");
  }
  return Status(code, context + ": " + faiss_message(e));
}

// ---- spec syntax ----------------------------------------------------------------------------------

/// The number right after `pos` in `spec`, or -1 when none.
long long number_at(std::string_view spec, std::size_t pos) {
  long long v = -1;
  for (; pos < spec.size() && spec[pos] >= '0' && spec[pos] <= '9'; ++pos) {
    v = (v < 0 ? 0 : v) * 10 + (spec[pos] - '0');
    if (v > (1LL << 40)) return v;
  }
  return v;
}

/// Checks made before FAISS sees the string: FAISS aborts (rather than throws) on a few degenerate
/// values, e.g. HNSW0.
Status check_spec_syntax(std::string_view spec) {
  if (spec.empty()) return Status::invalid_argument("ANN index spec is empty");
  if (spec.size() > kMaxSpecLength) {
    return Status::invalid_argument("ANN index spec is longer than " + std::to_string(kMaxSpecLength) + " characters");
  }
  for (char c : spec) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ',' ||
                    c == '_' || c == '.' || c == '(' || c == ')' || c == '=';
    if (!ok) {
      return Status::invalid_argument("ANN index spec " + quoted(spec) + ": unexpected character '" +
                                      std::string(1, c) + "'");
    }
  }
  if (spec.find("IDMap") != std::string_view::npos) {
    return Status::invalid_argument("ANN index spec " + quoted(spec) +
                                    ": must not contain IDMap (rows are always labelled)");
  }
  for (std::size_t p = spec.find("HNSW"); p != std::string_view::npos; p = spec.find("HNSW", p + 1)) {
    const long long m = number_at(spec, p + 4);
    if (m >= 0 && (m < 2 || m > 512)) {
      return Status::invalid_argument("ANN index spec " + quoted(spec) + ": HNSW M must be in [2, 512], got " +
                                      std::to_string(m));
    }
  }
  for (std::size_t p = spec.find("IVF"); p != std::string_view::npos; p = spec.find("IVF", p + 1)) {
    const long long n = number_at(spec, p + 3);
    if (n >= 0 && (n < 1 || n > (1LL << 24))) {
      return Status::invalid_argument("ANN index spec " + quoted(spec) + ": IVF list count must be in [1, 2^24], got " +
                                      std::to_string(n));
    }
  }
  return Status::ok();
}

bool spec_is_binary(std::string_view spec) { return !spec.empty() && spec[0] == 'B'; }

faiss::MetricType faiss_metric(Metric metric) {
  return metric == Metric::kL2 ? faiss::METRIC_L2 : faiss::METRIC_INNER_PRODUCT;
}

/// Validate (spec, dim, metric) before building anything.
Status check_create_args(std::string_view spec, std::size_t dim, Metric metric) {
  VECSTASH_RETURN_IF_ERROR(check_spec_syntax(spec));
  if (static_cast<int>(metric) > static_cast<int>(Metric::kHamming)) {
    return Status::invalid_argument("ANN index " + quoted(spec) + ": unknown metric");
  }
  if (spec_is_binary(spec)) {
    if (metric != Metric::kHamming) {
      return Status::invalid_argument("ANN index " + quoted(spec) + " is binary: it needs metric hamming, got " +
                                      std::string(to_string(metric)));
    }
    if (dim == 0 || dim % 8 != 0 || dim > kMaxDim) {
      return Status::invalid_argument("ANN index " + quoted(spec) +
                                      ": binary dimension must be a positive multiple of 8 bits, got " +
                                      std::to_string(dim));
    }
  } else {
    if (metric == Metric::kHamming) {
      return Status::invalid_argument("ANN index " + quoted(spec) +
                                      ": metric hamming needs a binary spec (BFlat, BIVF<n>, BHNSW<M>)");
    }
    if (dim == 0 || dim > kMaxDim) {
      return Status::invalid_argument("ANN index " + quoted(spec) + ": dimension must be positive, got " +
                                      std::to_string(dim));
    }
  }
  return Status::ok();
}

/// Training settings that change nothing in what is stored or found:
///  - FAISS's clustering prints its small-sample warning straight to stderr, and only
///    min_points_per_centroid controls that warning: set it low and log our own (AnnIndex::train).
///  - Factory "PQ<m>" turns on polysemous training (a simulated-annealing reordering of the PQ
///    centroids, over a minute for 2,000 rows of 32 dimensions here). It only serves polysemous
///    filtering (polysemous_ht > 0), which this adapter never enables; ADC search results do not
///    depend on it.
void prepare_training(faiss::Index* index) {
  while (index != nullptr) {
    if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
      index = pt->index;
      continue;
    }
    if (auto* ivf = dynamic_cast<faiss::IndexIVF*>(index)) ivf->cp.min_points_per_centroid = 1;
    if (auto* pq = dynamic_cast<faiss::IndexIVFPQ*>(index)) {
      pq->pq.cp.min_points_per_centroid = 1;
      if (pq->polysemous_ht == 0) pq->do_polysemous_training = false;
    }
    if (auto* pq = dynamic_cast<faiss::IndexPQ*>(index)) {
      pq->pq.cp.min_points_per_centroid = 1;
      if (pq->search_type == faiss::IndexPQ::ST_PQ) pq->do_polysemous_training = false;
    }
    if (auto* h = dynamic_cast<faiss::IndexHNSW*>(index)) {
      index = h->storage;
      continue;
    }
    break;
  }
}

// ---- search helpers -------------------------------------------------------------------------------

/// Caps the calling thread's OpenMP team at the number of queries for the lifetime of the object
/// (the setting is per thread, so concurrent callers do not interfere).
class OmpTeamCap {
 public:
  explicit OmpTeamCap(std::size_t nq) : previous_(omp_get_max_threads()) {
    const std::size_t cap = std::max<std::size_t>(nq, 1);
    if (cap < static_cast<std::size_t>(previous_)) {
      omp_set_num_threads(static_cast<int>(cap));
      changed_ = true;
    }
  }
  ~OmpTeamCap() {
    if (changed_) omp_set_num_threads(previous_);
  }
  OmpTeamCap(const OmpTeamCap&) = delete;
  OmpTeamCap& operator=(const OmpTeamCap&) = delete;

 private:
  int previous_;
  bool changed_ = false;
};

/// Internal (FAISS) row id -> "may be returned".
struct RowFilter {
  const std::vector<FaissIdx>* id_map = nullptr;
  const AnnAllowFn* allow = nullptr;
  bool operator()(FaissIdx internal) const { return (*allow)((*id_map)[static_cast<std::size_t>(internal)]); }
};

struct RowSelector final : faiss::IDSelector {
  explicit RowSelector(RowFilter f) : filter(f) {}
  bool is_member(idx_t id) const override { return filter(id); }
  RowFilter filter;
};

/// HNSW distances for inner-product storage: the walk minimises, so negate (as IndexHNSW does).
struct NegatedDistance final : faiss::DistanceComputer {
  explicit NegatedDistance(std::unique_ptr<faiss::DistanceComputer> b) : base(std::move(b)) {}
  void set_query(const float* x) override { base->set_query(x); }
  float operator()(idx_t i) override { return -(*base)(i); }
  float symmetric_dis(idx_t i, idx_t j) override { return -base->symmetric_dis(i, j); }
  std::unique_ptr<faiss::DistanceComputer> base;
};

/// Per-thread visited marks for HNSW walks (faiss::VisitedTable without the per-search allocation).
class VisitedMarks {
 public:
  void begin(std::size_t n) {
    if (marks_.size() < n) marks_.resize(n, 0);
    if (++epoch_ == 0) {
      std::fill(marks_.begin(), marks_.end(), std::uint8_t{0});
      epoch_ = 1;
    }
  }
  /// True when `i` was already visited in this walk; marks it visited.
  bool test_and_set(std::size_t i) {
    if (marks_[i] == epoch_) return true;
    marks_[i] = epoch_;
    return false;
  }

 private:
  std::vector<std::uint8_t> marks_;
  std::uint8_t epoch_ = 0;
};

/// k best (smallest distance) offered rows: a FAISS max-heap over caller-owned arrays.
class ResultHeap {
 public:
  ResultHeap(std::size_t k, float* d, FaissIdx* i) : k_(k), d_(d), i_(i) { faiss::maxheap_heapify(k_, d_, i_); }
  void offer(float dist, FaissIdx id) {
    if (n_ < k_) {
      faiss::maxheap_push(++n_, d_, i_, dist, id);
    } else if (dist < d_[0]) {
      faiss::maxheap_replace_top(n_, d_, i_, dist, id);
    }
  }
  /// Sort best first (unfilled slots: id -1); returns the number of results.
  std::size_t finish() {
    faiss::maxheap_reorder(k_, d_, i_);
    return n_;
  }

 private:
  std::size_t k_;
  std::size_t n_ = 0;
  float* d_;
  FaissIdx* i_;
};

/// One HNSW query, following faiss::HNSW::search (1.7.3, upper_beam 1, bounded queue): greedy
/// descent through the upper levels, then a best-first walk of level 0 with a MinimaxHeap of `ef`
/// candidates. `filter` (nullable) decides which visited rows may become results; the walk itself
/// goes through every row. Writes k (dist, id) best first into d/ids; returns the count found.
std::size_t hnsw_walk(const faiss::HNSW& hnsw, faiss::DistanceComputer& dc, std::size_t k, int ef,
                      const RowFilter* filter, std::size_t ntotal, VisitedMarks& visited, float* d, FaissIdx* ids) {
  ResultHeap results(k, d, ids);
  if (hnsw.entry_point < 0 || ntotal == 0) return results.finish();
  using StorageIdx = faiss::HNSW::storage_idx_t;
  StorageIdx nearest = hnsw.entry_point;
  float d_nearest = dc(nearest);
  for (int level = hnsw.max_level; level >= 1; --level) {
    for (;;) {  // greedy: move to the closest neighbour until none is closer
      const StorageIdx previous = nearest;
      std::size_t begin = 0, end = 0;
      hnsw.neighbor_range(nearest, level, &begin, &end);
      for (std::size_t j = begin; j < end; ++j) {
        const StorageIdx v = hnsw.neighbors[j];
        if (v < 0) break;
        const float dv = dc(v);
        if (dv < d_nearest) {
          nearest = v;
          d_nearest = dv;
        }
      }
      if (nearest == previous) break;
    }
  }

  faiss::HNSW::MinimaxHeap candidates(ef);
  candidates.push(nearest, d_nearest);
  visited.begin(ntotal);
  visited.test_and_set(static_cast<std::size_t>(nearest));
  if (filter == nullptr || (*filter)(nearest)) results.offer(d_nearest, nearest);
  const bool relative_stop = hnsw.check_relative_distance;
  int steps = 0;
  while (candidates.size() > 0) {
    float d0 = 0.0f;
    const int v0 = candidates.pop_min(&d0);
    // FAISS's stop test: ef candidates already seen are closer than the one to expand.
    if (relative_stop && candidates.count_below(d0) >= ef) break;
    std::size_t begin = 0, end = 0;
    hnsw.neighbor_range(v0, 0, &begin, &end);
    for (std::size_t j = begin; j < end; ++j) {
      const StorageIdx v = hnsw.neighbors[j];
      if (v < 0) break;
      if (visited.test_and_set(static_cast<std::size_t>(v))) continue;
      const float dv = dc(v);
      if (filter == nullptr || (*filter)(v)) results.offer(dv, v);
      candidates.push(v, dv);
    }
    ++steps;
    if (!relative_stop && steps > ef) break;
  }
  return results.finish();
}

/// Every stored row through a distance computer (the filtered fallback of HNSW).
std::size_t scan_with_distance(faiss::DistanceComputer& dc, std::size_t k, const RowFilter& filter, std::size_t ntotal,
                               float* d, FaissIdx* ids) {
  ResultHeap results(k, d, ids);
  for (std::size_t i = 0; i < ntotal; ++i) {
    const auto id = static_cast<FaissIdx>(i);
    if (filter(id)) results.offer(dc(id), id);
  }
  return results.finish();
}

int hamming(const std::uint8_t* a, const std::uint8_t* b, std::size_t bytes) noexcept {
  int d = 0;
  std::size_t i = 0;
  for (; i + 8 <= bytes; i += 8) {
    std::uint64_t x = 0, y = 0;
    std::memcpy(&x, a + i, 8);
    std::memcpy(&y, b + i, 8);
    d += std::popcount(x ^ y);
  }
  for (; i < bytes; ++i) d += std::popcount(static_cast<unsigned>(a[i] ^ b[i]));
  return d;
}

/// Where the result rows of one search attempt go: a TopK row per query, labels translated.
class RowWriter {
 public:
  RowWriter(TopK* out, std::size_t k, Metric metric, const std::vector<FaissIdx>& id_map)
      : out_(out), k_(k), id_map_(id_map) {
    worst_ =
        higher_is_better(metric) ? -std::numeric_limits<float>::infinity() : std::numeric_limits<float>::infinity();
  }

  /// Replace query q's row with up to k of the n candidates (internal ids, best first). `negate`
  /// flips distances back to inner products; `filter` (nullable) drops rows (post-filtering).
  /// Returns the number of results written.
  std::size_t write(std::size_t q, const float* d, const FaissIdx* ids, std::size_t n, bool negate,
                    const RowFilter* filter) {
    std::int64_t* out_ids = out_->ids.data() + q * k_;
    float* out_scores = out_->scores.data() + q * k_;
    std::size_t w = 0;
    for (std::size_t j = 0; j < n && w < k_; ++j) {
      const FaissIdx id = ids[j];
      if (id < 0 || static_cast<std::size_t>(id) >= id_map_.size()) continue;
      if (filter != nullptr && !(*filter)(id)) continue;
      out_ids[w] = id_map_[static_cast<std::size_t>(id)];
      out_scores[w] = negate ? -d[j] : d[j];
      ++w;
    }
    for (std::size_t j = w; j < k_; ++j) {
      out_ids[j] = -1;
      out_scores[j] = worst_;
    }
    return w;
  }

 private:
  TopK* out_;
  std::size_t k_;
  const std::vector<FaissIdx>& id_map_;
  float worst_;
};

/// Queries still short of k allowed results after an attempt.
std::vector<std::size_t> short_queries(const std::vector<std::size_t>& pending, const std::vector<std::size_t>& found,
                                       std::size_t k) {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    if (found[i] < k) out.push_back(pending[i]);
  }
  return out;
}

}  // namespace

// ---- Impl -----------------------------------------------------------------------------------------

enum class AnnStrategy : std::uint8_t {
  kHnsw,          ///< our walk over the FAISS graph (float and binary)
  kIvfSelector,   ///< float IndexIVF with SearchParametersIVF {nprobe, sel}
  kFlatSelector,  ///< float exact scans that honour SearchParameters::sel
  kBinaryIvf,     ///< search_preassigned with nprobe, post-filter, exhaustive fallback
  kBinaryFlat,    ///< FAISS scan, or our filtered Hamming scan
  kPostFilter,    ///< anything else: oversample and post-filter
};

struct AnnIndex::Impl {
  std::string spec;
  std::size_t dim = 0;
  Metric metric = Metric::kL2;
  bool binary = false;
  std::unique_ptr<faiss::IndexIDMap> fidx;
  std::unique_ptr<faiss::IndexBinaryIDMap> bidx;
  bool broken = false;

  // Resolved once (pointers into fidx / bidx).
  AnnStrategy strategy = AnnStrategy::kPostFilter;
  std::vector<const faiss::IndexPreTransform*> transforms;  ///< outermost first
  const faiss::Index* core = nullptr;                       ///< float: the index after the transforms
  const faiss::IndexBinary* bcore = nullptr;                ///< binary: the wrapped index
  const faiss::HNSW* hnsw = nullptr;
  const faiss::IndexHNSW* fhnsw = nullptr;
  const faiss::IndexBinaryHNSW* bhnsw = nullptr;
  const faiss::IndexIVF* ivf = nullptr;
  const faiss::IndexBinaryIVF* bivf = nullptr;
  const faiss::IndexBinaryFlat* bflat = nullptr;

  std::size_t ntotal() const noexcept { return static_cast<std::size_t>(binary ? bidx->ntotal : fidx->ntotal); }
  const std::vector<FaissIdx>& id_map() const noexcept { return binary ? bidx->id_map : fidx->id_map; }
  bool trained() const noexcept { return binary ? bidx->is_trained : fidx->is_trained; }
  std::size_t code_size() const noexcept { return dim / 8; }
  std::string name() const { return "ANN index " + quoted(spec); }

  void resolve();
  bool consistent() const;
  Status usable() const {
    if (broken) return Status::internal(name() + " is broken by an earlier failed add; rebuild it");
    return Status::ok();
  }
  Status mark_if_inconsistent(const Status& error);

  std::unique_ptr<faiss::DistanceComputer> hnsw_distance() const;
  Status run(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k, const AnnSearchParams& params,
             const AnnAllowFn* allow, TopK* out) const;
  Status run_hnsw(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k, int ef,
                  const RowFilter* filter, RowWriter& writer) const;
  Status run_ivf(const float* xq, std::size_t nq, std::size_t k, int nprobe, const RowFilter* filter,
                 RowWriter& writer) const;
  Status run_binary_ivf(const std::uint8_t* xq, std::size_t nq, std::size_t k, int nprobe, const RowFilter* filter,
                        RowWriter& writer) const;
  Status run_post_filter(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k,
                         const RowFilter* filter, RowWriter& writer) const;
  std::size_t binary_scan(const std::uint8_t* q, std::size_t k, const RowFilter& filter, float* d, FaissIdx* ids) const;
};

void AnnIndex::Impl::resolve() {
  strategy = AnnStrategy::kPostFilter;
  transforms.clear();
  core = nullptr;
  bcore = nullptr;
  hnsw = nullptr;
  fhnsw = nullptr;
  bhnsw = nullptr;
  ivf = nullptr;
  bivf = nullptr;
  bflat = nullptr;
  if (binary) {
    bcore = bidx->index;
    if (const auto* h = dynamic_cast<const faiss::IndexBinaryHNSW*>(bcore); h != nullptr && h->hnsw.upper_beam == 1) {
      bhnsw = h;
      hnsw = &h->hnsw;
      strategy = AnnStrategy::kHnsw;
    } else if (const auto* v = dynamic_cast<const faiss::IndexBinaryIVF*>(bcore)) {
      bivf = v;
      strategy = AnnStrategy::kBinaryIvf;
    } else if (const auto* f = dynamic_cast<const faiss::IndexBinaryFlat*>(bcore)) {
      bflat = f;
      strategy = AnnStrategy::kBinaryFlat;
    }
    return;
  }
  const faiss::Index* cur = fidx->index;
  while (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(cur)) {
    transforms.push_back(pt);
    cur = pt->index;
  }
  core = cur;
  if (const auto* h = dynamic_cast<const faiss::IndexHNSW*>(cur);
      h != nullptr && dynamic_cast<const faiss::IndexHNSW2Level*>(cur) == nullptr &&
      h->reconstruct_from_neighbors == nullptr && h->storage != nullptr && h->hnsw.upper_beam == 1) {
    fhnsw = h;
    hnsw = &h->hnsw;
    strategy = AnnStrategy::kHnsw;
  } else if (const auto* v = dynamic_cast<const faiss::IndexIVF*>(cur);
             v != nullptr && dynamic_cast<const faiss::IndexIVFFastScan*>(cur) == nullptr &&
             dynamic_cast<const faiss::IndexIVFPQR*>(cur) == nullptr) {
    ivf = v;
    strategy = AnnStrategy::kIvfSelector;
  } else if (dynamic_cast<const faiss::IndexFlat*>(cur) != nullptr ||
             dynamic_cast<const faiss::IndexScalarQuantizer*>(cur) != nullptr) {
    strategy = AnnStrategy::kFlatSelector;
  }
}

bool AnnIndex::Impl::consistent() const {
  if (binary) {
    return bidx->ntotal == bidx->index->ntotal && static_cast<std::size_t>(bidx->ntotal) == bidx->id_map.size();
  }
  return fidx->ntotal == fidx->index->ntotal && static_cast<std::size_t>(fidx->ntotal) == fidx->id_map.size();
}

Status AnnIndex::Impl::mark_if_inconsistent(const Status& error) {
  if (!consistent()) {
    broken = true;
    log(LogLevel::kError, name() + ": a failed add left the index inconsistent; it must be rebuilt");
  }
  return error;
}

std::unique_ptr<faiss::DistanceComputer> AnnIndex::Impl::hnsw_distance() const {
  if (bhnsw != nullptr) return std::unique_ptr<faiss::DistanceComputer>(bhnsw->get_distance_computer());
  std::unique_ptr<faiss::DistanceComputer> dc(fhnsw->storage->get_distance_computer());
  if (fhnsw->storage->metric_type == faiss::METRIC_INNER_PRODUCT) {
    return std::make_unique<NegatedDistance>(std::move(dc));
  }
  return dc;
}

// One query after another on the calling thread. Filtered queries short of k retry with a larger ef,
// then fall back to scanning every stored row.
Status AnnIndex::Impl::run_hnsw(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k, int ef,
                                const RowFilter* filter, RowWriter& writer) const {
  const std::size_t n = ntotal();
  const bool negate = !binary && fhnsw->storage->metric_type == faiss::METRIC_INNER_PRODUCT;
  const int ef_cap = std::max(ef, kMaxFilteredEf);
  // Queries are independent: spread them over the calling thread's OpenMP team (capped at nq by
  // the caller), each thread with its own distance computer, visited marks and buffers.
#pragma omp parallel if (nq > 1)
  {
    thread_local VisitedMarks visited;
    std::unique_ptr<faiss::DistanceComputer> dc = hnsw_distance();
    std::vector<float> d(k);
    std::vector<FaissIdx> ids(k);
#pragma omp for schedule(dynamic, 4)
    for (std::size_t q = 0; q < nq; ++q) {
      // FlatHammingDis reads the query code through the float pointer, as IndexBinaryHNSW does.
      dc->set_query(binary ? reinterpret_cast<const float*>(bq + q * code_size()) : fq + q * core->d);
      int e = ef;
      std::size_t found = 0;
      for (;;) {
        found = hnsw_walk(*hnsw, *dc, k, e, filter, n, visited, d.data(), ids.data());
        if (filter == nullptr || found >= k) break;
        if (e >= ef_cap || static_cast<std::size_t>(e) >= n) {
          found = scan_with_distance(*dc, k, *filter, n, d.data(), ids.data());
          break;
        }
        e = static_cast<int>(std::min<long long>(static_cast<long long>(e) * 4, ef_cap));
      }
      writer.write(q, d.data(), ids.data(), found, negate, nullptr);
    }
  }
  return Status::ok();
}

// FAISS scans with the selector inside; filtered queries short of k retry with 4x nprobe up to nlist
// (every list: exhaustive).
Status AnnIndex::Impl::run_ivf(const float* xq, std::size_t nq, std::size_t k, int nprobe, const RowFilter* filter,
                               RowWriter& writer) const {
  const std::size_t d_in = static_cast<std::size_t>(core->d);
  std::size_t np = static_cast<std::size_t>(nprobe);
  std::optional<RowSelector> selector;
  if (filter != nullptr) selector.emplace(*filter);
  std::vector<std::size_t> pending(nq);
  std::iota(pending.begin(), pending.end(), std::size_t{0});
  std::vector<float> gathered;
  for (;;) {
    const std::size_t m = pending.size();
    const float* x = xq;
    if (m != nq) {
      gathered.resize(m * d_in);
      for (std::size_t i = 0; i < m; ++i)
        std::memcpy(&gathered[i * d_in], xq + pending[i] * d_in, d_in * sizeof(float));
      x = gathered.data();
    }
    std::vector<float> d(m * k);
    std::vector<FaissIdx> ids(m * k);
    faiss::SearchParametersIVF sp;
    sp.nprobe = np;
    sp.sel = selector ? &*selector : nullptr;
    {
      OmpTeamCap cap(m);
      core->search(static_cast<FaissIdx>(m), x, static_cast<FaissIdx>(k), d.data(), ids.data(), &sp);
    }
    std::vector<std::size_t> found(m);
    for (std::size_t i = 0; i < m; ++i) {
      found[i] = writer.write(pending[i], d.data() + i * k, ids.data() + i * k, k, false, nullptr);
    }
    if (filter == nullptr || np >= ivf->nlist) break;
    pending = short_queries(pending, found, k);
    if (pending.empty()) break;
    np = std::min(np * 4, ivf->nlist);
  }
  return Status::ok();
}

std::size_t AnnIndex::Impl::binary_scan(const std::uint8_t* q, std::size_t k, const RowFilter& filter, float* d,
                                        FaissIdx* ids) const {
  ResultHeap results(k, d, ids);
  const std::size_t cs = code_size();
  if (bflat != nullptr) {
    const std::size_t n = static_cast<std::size_t>(bflat->ntotal);
    for (std::size_t i = 0; i < n; ++i) {
      const auto id = static_cast<FaissIdx>(i);
      if (filter(id)) results.offer(static_cast<float>(hamming(q, bflat->xb.data() + i * cs, cs)), id);
    }
  } else if (bivf != nullptr) {
    const faiss::InvertedLists* lists = bivf->invlists;
    for (std::size_t l = 0; l < bivf->nlist; ++l) {
      const std::size_t size = lists->list_size(l);
      if (size == 0) continue;
      faiss::InvertedLists::ScopedCodes codes(lists, l);
      faiss::InvertedLists::ScopedIds list_ids(lists, l);
      for (std::size_t j = 0; j < size; ++j) {
        const FaissIdx id = list_ids.get()[j];
        if (filter(id)) results.offer(static_cast<float>(hamming(q, codes.get() + j * cs, cs)), id);
      }
    }
  }
  return results.finish();
}

// search_preassigned takes per-call nprobe (IndexBinaryIVF::search would need the member changed).
// Filtered: oversample 2k and post-filter; queries still short retry with 8x k and nprobe, then an
// exhaustive filtered scan of every list.
Status AnnIndex::Impl::run_binary_ivf(const std::uint8_t* xq, std::size_t nq, std::size_t k, int nprobe,
                                      const RowFilter* filter, RowWriter& writer) const {
  const std::size_t cs = code_size();
  const std::size_t n = ntotal();
  std::vector<std::size_t> pending(nq);
  std::iota(pending.begin(), pending.end(), std::size_t{0});
  std::vector<std::uint8_t> gathered;
  std::size_t np = static_cast<std::size_t>(nprobe);
  std::size_t kk = filter == nullptr ? k : std::max(k, std::min(n, 2 * k));
  for (int attempt = 0; attempt < 2 && !pending.empty(); ++attempt) {
    const std::size_t m = pending.size();
    const std::uint8_t* x = xq;
    if (m != nq) {
      gathered.resize(m * cs);
      for (std::size_t i = 0; i < m; ++i) std::memcpy(&gathered[i * cs], xq + pending[i] * cs, cs);
      x = gathered.data();
    }
    std::vector<FaissIdx> assign(m * np);
    std::vector<std::int32_t> coarse(m * np);
    std::vector<std::int32_t> di(m * kk);
    std::vector<FaissIdx> ids(m * kk);
    faiss::IVFSearchParameters sp;
    sp.nprobe = np;
    {
      OmpTeamCap cap(m);
      bivf->quantizer->search(static_cast<FaissIdx>(m), x, static_cast<FaissIdx>(np), coarse.data(), assign.data());
      bivf->search_preassigned(static_cast<FaissIdx>(m), x, static_cast<FaissIdx>(kk), assign.data(), coarse.data(),
                               di.data(), ids.data(), false, &sp);
    }
    std::vector<float> d(di.begin(), di.end());
    std::vector<std::size_t> found(m);
    for (std::size_t i = 0; i < m; ++i) {
      found[i] = writer.write(pending[i], d.data() + i * kk, ids.data() + i * kk, kk, false, filter);
    }
    if (filter == nullptr) return Status::ok();
    pending = short_queries(pending, found, k);
    np = std::min(np * 8, bivf->nlist);
    kk = std::max(k, std::min(n, kk * 8));
  }
  if (pending.empty()) return Status::ok();
  std::vector<float> d(k);
  std::vector<FaissIdx> ids(k);
  for (std::size_t q : pending) {
    const std::size_t found = binary_scan(xq + q * cs, k, *filter, d.data(), ids.data());
    writer.write(q, d.data(), ids.data(), found, false, nullptr);
  }
  return Status::ok();
}

// Indexes that take no selector: oversample and post-filter, k raised 4x while queries are short.
Status AnnIndex::Impl::run_post_filter(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k,
                                       const RowFilter* filter, RowWriter& writer) const {
  const std::size_t n = ntotal();
  const std::size_t row_bytes = binary ? code_size() : static_cast<std::size_t>(core->d) * sizeof(float);
  const auto* base = binary ? bq : reinterpret_cast<const std::uint8_t*>(fq);
  std::vector<std::size_t> pending(nq);
  std::iota(pending.begin(), pending.end(), std::size_t{0});
  std::vector<std::uint8_t> gathered;
  std::size_t kk = filter == nullptr ? k : std::max(k, std::min(n, 2 * k));
  for (;;) {
    const std::size_t m = pending.size();
    const std::uint8_t* x = base;
    if (m != nq) {
      gathered.resize(m * row_bytes);
      for (std::size_t i = 0; i < m; ++i)
        std::memcpy(&gathered[i * row_bytes], base + pending[i] * row_bytes, row_bytes);
      x = gathered.data();
    }
    std::vector<float> d(m * kk);
    std::vector<FaissIdx> ids(m * kk);
    {
      OmpTeamCap cap(m);
      if (binary) {
        std::vector<std::int32_t> di(m * kk);
        bcore->search(static_cast<FaissIdx>(m), x, static_cast<FaissIdx>(kk), di.data(), ids.data());
        std::copy(di.begin(), di.end(), d.begin());
      } else {
        core->search(static_cast<FaissIdx>(m), reinterpret_cast<const float*>(x), static_cast<FaissIdx>(kk), d.data(),
                     ids.data());
      }
    }
    std::vector<std::size_t> found(m);
    for (std::size_t i = 0; i < m; ++i) {
      found[i] = writer.write(pending[i], d.data() + i * kk, ids.data() + i * kk, kk, false, filter);
    }
    if (filter == nullptr || kk >= n) break;
    pending = short_queries(pending, found, k);
    if (pending.empty()) break;
    kk = std::min(n, kk * 4);
  }
  return Status::ok();
}

Status AnnIndex::Impl::run(const float* fq, const std::uint8_t* bq, std::size_t nq, std::size_t k,
                           const AnnSearchParams& params, const AnnAllowFn* allow, TopK* out) const {
  RowWriter writer(out, k, metric, id_map());
  RowFilter filter_value{&id_map(), allow};
  const RowFilter* filter = (allow != nullptr && *allow) ? &filter_value : nullptr;
  switch (strategy) {
    case AnnStrategy::kHnsw: {
      // ef >= k (as hnswlib does); beyond the row count a larger ef changes nothing but the heap size.
      const std::size_t ef0 = static_cast<std::size_t>(std::max(params.ef > 0 ? params.ef : hnsw->efSearch, 1));
      const int ef = static_cast<int>(std::max(k, std::min(ef0, ntotal())));
      return run_hnsw(fq, bq, nq, k, ef, filter, writer);
    }
    case AnnStrategy::kIvfSelector: {
      const std::size_t np0 = params.nprobe > 0 ? static_cast<std::size_t>(params.nprobe) : ivf->nprobe;
      const int np = static_cast<int>(std::clamp<std::size_t>(np0, 1, ivf->nlist));
      return run_ivf(fq, nq, k, np, filter, writer);
    }
    case AnnStrategy::kFlatSelector: {
      std::vector<float> d(nq * k);
      std::vector<FaissIdx> ids(nq * k);
      std::optional<RowSelector> selector;
      faiss::SearchParameters sp;
      if (filter != nullptr) {
        selector.emplace(*filter);
        sp.sel = &*selector;
      }
      {
        OmpTeamCap cap(nq);
        core->search(static_cast<FaissIdx>(nq), fq, static_cast<FaissIdx>(k), d.data(), ids.data(),
                     filter != nullptr ? &sp : nullptr);
      }
      for (std::size_t q = 0; q < nq; ++q) writer.write(q, d.data() + q * k, ids.data() + q * k, k, false, nullptr);
      return Status::ok();
    }
    case AnnStrategy::kBinaryIvf: {
      const std::size_t np0 = params.nprobe > 0 ? static_cast<std::size_t>(params.nprobe) : bivf->nprobe;
      const int np = static_cast<int>(std::clamp<std::size_t>(np0, 1, bivf->nlist));
      return run_binary_ivf(bq, nq, k, np, filter, writer);
    }
    case AnnStrategy::kBinaryFlat: {
      if (filter == nullptr) return run_post_filter(nullptr, bq, nq, k, nullptr, writer);
      std::vector<float> d(k);
      std::vector<FaissIdx> ids(k);
      for (std::size_t q = 0; q < nq; ++q) {
        const std::size_t found = binary_scan(bq + q * code_size(), k, *filter, d.data(), ids.data());
        writer.write(q, d.data(), ids.data(), found, false, nullptr);
      }
      return Status::ok();
    }
    case AnnStrategy::kPostFilter:
      return run_post_filter(fq, bq, nq, k, filter, writer);
  }
  return Status::internal(name() + ": unknown search strategy");
}

// ---- AnnIndex -------------------------------------------------------------------------------------

AnnIndex::AnnIndex(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}
AnnIndex::~AnnIndex() = default;

bool AnnIndex::is_binary() const noexcept { return impl_->binary; }
bool AnnIndex::is_trained() const noexcept { return impl_->trained(); }
std::size_t AnnIndex::size() const noexcept { return impl_->ntotal(); }
const std::string& AnnIndex::spec() const noexcept { return impl_->spec; }
std::size_t AnnIndex::dim() const noexcept { return impl_->dim; }
Metric AnnIndex::metric() const noexcept { return impl_->metric; }

std::size_t AnnIndex::memory_bytes() const {
  const Impl& m = *impl_;
  if (m.hnsw == nullptr) return serialize().size();
  const faiss::HNSW& h = *m.hnsw;
  std::size_t bytes = m.id_map().size() * sizeof(FaissIdx);
  bytes += h.neighbors.size() * sizeof(h.neighbors[0]) + h.levels.size() * sizeof(h.levels[0]) +
           h.offsets.size() * sizeof(h.offsets[0]);
  if (m.fhnsw != nullptr) bytes += m.ntotal() * m.fhnsw->storage->sa_code_size();
  if (m.bhnsw != nullptr) bytes += m.ntotal() * static_cast<std::size_t>(m.bhnsw->storage->code_size);
  return bytes;
}

int AnnIndex::ef_construction() const noexcept { return impl_->hnsw != nullptr ? impl_->hnsw->efConstruction : 0; }

Status AnnIndex::set_ef_construction(int ef) {
  Impl& m = *impl_;
  if (m.hnsw == nullptr)
    return Status::invalid_argument(m.name() + " is not an HNSW index: efConstruction does not apply");
  if (ef < 1 || ef > 4096)
    return Status::invalid_argument("HNSW efConstruction must be in [1, 4096], got " + std::to_string(ef));
  if (m.ntotal() > 0) return Status::invalid_argument(m.name() + ": efConstruction is set before rows are added");
  // The walk reads the graph through const pointers; the build parameter lives in the same struct.
  const_cast<faiss::HNSW*>(m.hnsw)->efConstruction = ef;
  return Status::ok();
}

Result<std::unique_ptr<AnnIndex>> AnnIndex::create(std::string_view spec, std::size_t dim, Metric metric) {
  VECSTASH_RETURN_IF_ERROR(check_create_args(spec, dim, metric));
  auto impl = std::make_unique<Impl>();
  impl->spec = std::string(spec);
  impl->dim = dim;
  impl->metric = metric;
  impl->binary = spec_is_binary(spec);
  try {
    if (impl->binary) {
      std::unique_ptr<faiss::IndexBinary> inner(faiss::index_binary_factory(static_cast<int>(dim), impl->spec.c_str()));
      if (inner->d != static_cast<int>(dim)) {
        return Status::invalid_argument(impl->name() + ": FAISS built a " + std::to_string(inner->d) +
                                        "-bit index for " + std::to_string(dim) + " bits");
      }
      impl->bidx = std::make_unique<faiss::IndexBinaryIDMap>(inner.get());
      impl->bidx->own_fields = true;
      inner.release();
    } else {
      std::unique_ptr<faiss::Index> inner(
          faiss::index_factory(static_cast<int>(dim), impl->spec.c_str(), faiss_metric(metric)));
      if (dynamic_cast<faiss::IndexIDMap*>(inner.get()) != nullptr) {
        return Status::invalid_argument(impl->name() + ": must not be an IDMap (rows are always labelled)");
      }
      if (inner->metric_type != faiss_metric(metric)) {
        return Status::invalid_argument(impl->name() + " does not support metric " + std::string(to_string(metric)) +
                                        " in FAISS 1.7.3 (it builds an index for another metric)");
      }
      if (inner->d != static_cast<int>(dim)) {
        return Status::invalid_argument(impl->name() + ": FAISS built a " + std::to_string(inner->d) +
                                        "-dimensional index for dimension " + std::to_string(dim));
      }
      prepare_training(inner.get());
      impl->fidx = std::make_unique<faiss::IndexIDMap>(inner.get());
      impl->fidx->own_fields = true;
      inner.release();
    }
  } catch (const std::exception& e) {
    return from_exception(StatusCode::kInvalidArgument,
                          "ANN index spec " + quoted(spec) + " (dimension " + std::to_string(dim) + ")", e);
  }
  impl->resolve();
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl)));
}

Status AnnIndex::train(MatrixView<const float> sample) {
  Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (m.binary) return Status::invalid_argument(m.name() + " is binary: use train_binary()");
  if (m.trained()) return Status::ok();
  if (sample.rows == 0) return Status::invalid_argument(m.name() + ": the training sample is empty");
  VECSTASH_RETURN_IF_ERROR(kernels::validate_rows(sample, m.dim, "ANN training sample"));
  if (m.ivf != nullptr) {
    if (sample.rows < m.ivf->nlist) {
      return Status::invalid_argument(m.name() + ": training needs at least " + std::to_string(m.ivf->nlist) +
                                      " rows (one per list), got " + std::to_string(sample.rows));
    }
    if (sample.rows < 39 * m.ivf->nlist) {
      log(LogLevel::kWarn, m.name() + ": training " + std::to_string(m.ivf->nlist) + " lists on " +
                               std::to_string(sample.rows) + " rows (FAISS suggests at least " +
                               std::to_string(39 * m.ivf->nlist) + ")");
    }
  }
  std::vector<float> packed;
  const float* x = sample.data;
  if (sample.stride != sample.cols) {
    packed.resize(sample.rows * sample.cols);
    for (std::size_t i = 0; i < sample.rows; ++i) {
      std::memcpy(&packed[i * sample.cols], sample.row(i), sample.cols * sizeof(float));
    }
    x = packed.data();
  }
  try {
    m.fidx->train(static_cast<FaissIdx>(sample.rows), x);
  } catch (const std::exception& e) {
    return from_exception(StatusCode::kInvalidArgument, m.name() + ": training failed", e);
  }
  if (!m.trained()) return Status::internal(m.name() + ": still untrained after training");
  return Status::ok();
}

Status AnnIndex::train_binary(const std::uint8_t* codes, std::size_t n) {
  Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (!m.binary) return Status::invalid_argument(m.name() + " is a float index: use train()");
  if (m.trained()) return Status::ok();
  if (n == 0) return Status::invalid_argument(m.name() + ": the training sample is empty");
  if (codes == nullptr) return Status::invalid_argument(m.name() + ": null training codes");
  if (m.bivf != nullptr) {
    if (n < m.bivf->nlist) {
      return Status::invalid_argument(m.name() + ": training needs at least " + std::to_string(m.bivf->nlist) +
                                      " codes (one per list), got " + std::to_string(n));
    }
    if (n < 39 * m.bivf->nlist) {
      log(LogLevel::kWarn, m.name() + ": training " + std::to_string(m.bivf->nlist) + " lists on " + std::to_string(n) +
                               " codes (FAISS suggests at least " + std::to_string(39 * m.bivf->nlist) + ")");
    }
    if (auto* ivf = dynamic_cast<faiss::IndexBinaryIVF*>(m.bidx->index)) ivf->cp.min_points_per_centroid = 1;
  }
  try {
    m.bidx->train(static_cast<FaissIdx>(n), codes);
  } catch (const std::exception& e) {
    return from_exception(StatusCode::kInvalidArgument, m.name() + ": training failed", e);
  }
  if (!m.trained()) return Status::internal(m.name() + ": still untrained after training");
  return Status::ok();
}

namespace {

Status check_labels(const std::string& name, std::span<const std::int64_t> labels, std::size_t n) {
  if (labels.size() != n) {
    return Status::invalid_argument(name + ": " + std::to_string(labels.size()) + " labels for " + std::to_string(n) +
                                    " rows");
  }
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0) {
      return Status::invalid_argument(name + ": label " + std::to_string(labels[i]) + " (row " + std::to_string(i) +
                                      ") is negative");
    }
  }
  return Status::ok();
}

}  // namespace

Status AnnIndex::add(std::span<const std::int64_t> labels, MatrixView<const float> rows) {
  Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (m.binary) return Status::invalid_argument(m.name() + " is binary: use add_binary()");
  VECSTASH_RETURN_IF_ERROR(check_labels(m.name(), labels, rows.rows));
  if (rows.rows == 0) return Status::ok();
  if (!m.trained()) return Status::failed_precondition(m.name() + " is not trained: call train() first");
  VECSTASH_RETURN_IF_ERROR(kernels::validate_rows(rows, m.dim, "ANN index rows"));
  if (m.hnsw != nullptr && m.ntotal() + rows.rows > static_cast<std::size_t>(INT_MAX)) {
    return Status::resource_exhausted(m.name() + ": HNSW holds at most 2^31 - 1 rows");
  }
  std::vector<float> packed;
  const float* x = rows.data;
  if (rows.stride != rows.cols) {
    packed.resize(rows.rows * rows.cols);
    for (std::size_t i = 0; i < rows.rows; ++i)
      std::memcpy(&packed[i * rows.cols], rows.row(i), rows.cols * sizeof(float));
    x = packed.data();
  }
  try {
    m.fidx->add_with_ids(static_cast<FaissIdx>(rows.rows), x, labels.data());
  } catch (const std::exception& e) {
    return m.mark_if_inconsistent(from_exception(StatusCode::kInternal, m.name() + ": add failed", e));
  }
  return Status::ok();
}

Status AnnIndex::add_binary(std::span<const std::int64_t> labels, const std::uint8_t* codes, std::size_t n) {
  Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (!m.binary) return Status::invalid_argument(m.name() + " is a float index: use add()");
  VECSTASH_RETURN_IF_ERROR(check_labels(m.name(), labels, n));
  if (n == 0) return Status::ok();
  if (codes == nullptr) return Status::invalid_argument(m.name() + ": null codes");
  if (!m.trained()) return Status::failed_precondition(m.name() + " is not trained: call train_binary() first");
  if (m.hnsw != nullptr && m.ntotal() + n > static_cast<std::size_t>(INT_MAX)) {
    return Status::resource_exhausted(m.name() + ": HNSW holds at most 2^31 - 1 rows");
  }
  try {
    m.bidx->add_with_ids(static_cast<FaissIdx>(n), codes, labels.data());
  } catch (const std::exception& e) {
    return m.mark_if_inconsistent(from_exception(StatusCode::kInternal, m.name() + ": add failed", e));
  }
  return Status::ok();
}

namespace {

Status check_search_args(const std::string& name, std::size_t k, const AnnSearchParams& params, TopK* out) {
  if (out == nullptr) return Status::invalid_argument(name + ": null output");
  if (k == 0 || k > kernels::kMaxK) {
    return Status::invalid_argument(name + ": k must be in [1, " + std::to_string(kernels::kMaxK) + "], got " +
                                    std::to_string(k));
  }
  if (params.ef < 0) return Status::invalid_argument(name + ": ef must be >= 0, got " + std::to_string(params.ef));
  if (params.nprobe < 0) {
    return Status::invalid_argument(name + ": nprobe must be >= 0, got " + std::to_string(params.nprobe));
  }
  return Status::ok();
}

}  // namespace

Status AnnIndex::search(MatrixView<const float> queries, std::size_t k, const AnnSearchParams& params,
                        const AnnAllowFn* allow, TopK* out) const {
  const Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (m.binary) return Status::invalid_argument(m.name() + " is binary: use search_binary()");
  VECSTASH_RETURN_IF_ERROR(check_search_args(m.name(), k, params, out));
  if (queries.rows > 0 && queries.cols != m.dim) {
    return Status::invalid_argument(m.name() + ": query dimension " + std::to_string(queries.cols) +
                                    " != index dimension " + std::to_string(m.dim));
  }
  VECSTASH_RETURN_IF_ERROR(kernels::validate_rows(queries, m.dim, "ANN search queries"));
  const std::size_t nq = queries.rows;
  out->resize(nq, k, m.metric);
  if (nq == 0 || m.ntotal() == 0) return Status::ok();
  try {
    // Contiguous queries in the space of the core index (after PCA/OPQ/... transforms).
    std::vector<float> packed;
    const float* x = queries.data;
    if (queries.stride != queries.cols) {
      packed.resize(nq * queries.cols);
      for (std::size_t i = 0; i < nq; ++i)
        std::memcpy(&packed[i * queries.cols], queries.row(i), queries.cols * sizeof(float));
      x = packed.data();
    }
    std::unique_ptr<float[]> transformed;
    for (const faiss::IndexPreTransform* pt : m.transforms) {
      const float* y = pt->apply_chain(static_cast<FaissIdx>(nq), x);
      if (y != x) {
        transformed.reset(const_cast<float*>(y));
        x = y;
      }
    }
    return m.run(x, nullptr, nq, k, params, allow, out);
  } catch (const std::exception& e) {
    out->resize(nq, k, m.metric);
    return from_exception(StatusCode::kInternal, m.name() + ": search failed", e);
  }
}

Status AnnIndex::search_binary(const std::uint8_t* queries, std::size_t nq, std::size_t k,
                               const AnnSearchParams& params, const AnnAllowFn* allow, TopK* out) const {
  const Impl& m = *impl_;
  VECSTASH_RETURN_IF_ERROR(m.usable());
  if (!m.binary) return Status::invalid_argument(m.name() + " is a float index: use search()");
  VECSTASH_RETURN_IF_ERROR(check_search_args(m.name(), k, params, out));
  if (nq > 0 && queries == nullptr) return Status::invalid_argument(m.name() + ": null query codes");
  out->resize(nq, k, m.metric);
  if (nq == 0 || m.ntotal() == 0) return Status::ok();
  try {
    return m.run(nullptr, queries, nq, k, params, allow, out);
  } catch (const std::exception& e) {
    out->resize(nq, k, m.metric);
    return from_exception(StatusCode::kInternal, m.name() + ": search failed", e);
  }
}

// ---- persistence ----------------------------------------------------------------------------------

std::vector<std::uint8_t> AnnIndex::serialize() const {
  const Impl& m = *impl_;
  if (m.broken) {
    log(LogLevel::kError, m.name() + ": not serialised (broken by an earlier failed add)");
    return {};
  }
  faiss::VectorIOWriter payload;
  try {
    if (m.binary) {
      faiss::write_index_binary(m.bidx.get(), &payload);
    } else {
      faiss::write_index(m.fidx.get(), &payload);
    }
  } catch (const std::exception& e) {
    log(LogLevel::kError, m.name() + ": serialisation failed: " + faiss_message(e));
    return {};
  }
  BlobWriter w(kMagic, kFormatVersion);
  w.u8(static_cast<std::uint8_t>(m.metric));
  w.u8(m.binary ? 1 : 0);
  w.u64(m.dim);
  w.bytes(std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(m.spec.data()), m.spec.size()));
  w.bytes(payload.data);
  return w.finish();
}

namespace {

/// The class of an index for structure checks: read_index builds IndexFlatL2/IndexFlatIP where
/// index_factory builds IndexFlat, so every flat index counts as IndexFlat.
const std::type_info& index_class(const faiss::Index& index) {
  if (dynamic_cast<const faiss::IndexFlat*>(&index) != nullptr) return typeid(faiss::IndexFlat);
  return typeid(index);
}

/// Same index classes, level by level through transforms, as a freshly created index of the spec.
bool same_structure(const faiss::Index* a, const faiss::Index* b) {
  while (a != nullptr && b != nullptr) {
    if (index_class(*a) != index_class(*b) || a->metric_type != b->metric_type || a->d != b->d) return false;
    const auto* pa = dynamic_cast<const faiss::IndexPreTransform*>(a);
    const auto* pb = dynamic_cast<const faiss::IndexPreTransform*>(b);
    if (pa == nullptr || pb == nullptr) return pa == pb;
    if (pa->chain.size() != pb->chain.size()) return false;
    a = pa->index;
    b = pb->index;
  }
  return a == b;
}

}  // namespace

Result<std::unique_ptr<AnnIndex>> AnnIndex::deserialize(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "ANN index blob");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open(kMagic, kFormatVersion, &version));
  std::uint8_t metric_raw = 0, binary_raw = 0;
  std::uint64_t dim = 0;
  std::string spec;
  std::vector<std::uint8_t> payload;
  VECSTASH_RETURN_IF_ERROR(r.u8(&metric_raw));
  VECSTASH_RETURN_IF_ERROR(r.u8(&binary_raw));
  VECSTASH_RETURN_IF_ERROR(r.u64(&dim));
  VECSTASH_RETURN_IF_ERROR(r.string(&spec, kMaxSpecLength));
  VECSTASH_RETURN_IF_ERROR(r.bytes(&payload, blob.size()));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  if (metric_raw > static_cast<std::uint8_t>(Metric::kHamming) || binary_raw > 1) {
    return Status::corruption("ANN index blob: bad metric or kind byte");
  }
  const auto metric = static_cast<Metric>(metric_raw);
  if ((binary_raw == 1) != spec_is_binary(spec)) {
    return Status::corruption("ANN index blob: kind byte disagrees with spec " + quoted(spec));
  }
  // The reference index: the header must describe something this build can create.
  auto fresh = create(spec, static_cast<std::size_t>(std::min<std::uint64_t>(dim, kMaxDim + 1)), metric);
  if (!fresh.is_ok()) return Status::corruption("ANN index blob: bad header: " + fresh.status().message());
  Impl& ref = *(*fresh)->impl_;

  faiss::VectorIOReader reader;
  reader.data = std::move(payload);
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  impl->dim = static_cast<std::size_t>(dim);
  impl->metric = metric;
  impl->binary = binary_raw == 1;
  const std::string what = "ANN index blob (" + quoted(spec) + ")";
  try {
    if (impl->binary) {
      std::unique_ptr<faiss::IndexBinary> loaded(faiss::read_index_binary(&reader));
      auto* idmap = dynamic_cast<faiss::IndexBinaryIDMap*>(loaded.get());
      if (idmap == nullptr || idmap->index == nullptr || ref.bidx->index == nullptr ||
          typeid(*idmap->index) != typeid(*ref.bidx->index) || idmap->d != ref.bidx->d) {
        return Status::corruption(what + ": the FAISS payload is not the index its header names");
      }
      loaded.release();
      impl->bidx.reset(idmap);
      impl->bidx->own_fields = true;
    } else {
      std::unique_ptr<faiss::Index> loaded(faiss::read_index(&reader));
      auto* idmap = dynamic_cast<faiss::IndexIDMap*>(loaded.get());
      if (idmap == nullptr || !same_structure(idmap->index, ref.fidx->index) || idmap->d != ref.fidx->d ||
          idmap->metric_type != ref.fidx->metric_type) {
        return Status::corruption(what + ": the FAISS payload is not the index its header names");
      }
      loaded.release();
      impl->fidx.reset(idmap);
      impl->fidx->own_fields = true;
      prepare_training(impl->fidx->index);
    }
  } catch (const std::exception& e) {
    return from_exception(StatusCode::kCorruption, what + ": FAISS could not read the payload", e);
  }
  if (reader.rp != reader.data.size()) return Status::corruption(what + ": trailing bytes after the FAISS payload");
  if (!impl->consistent()) return Status::corruption(what + ": row counts and labels disagree");
  impl->resolve();
  if (impl->strategy != ref.strategy) return Status::corruption(what + ": unexpected index structure");
  return std::unique_ptr<AnnIndex>(new AnnIndex(std::move(impl)));
}

}  // namespace vecstash::engine
