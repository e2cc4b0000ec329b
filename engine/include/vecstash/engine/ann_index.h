// Approximate nearest-neighbour index: a thin adapter over FAISS (1.7.3) that keeps every FAISS type
// out of this header.
//
// An index is named by a FAISS factory string (its "spec") that is stored with it:
//   float:  "HNSW<M>", "HNSW<M>,SQ8", "HNSW<M>,SQfp16", "HNSW<M>,PQ<m>" (L2 only), "IVF<n>,Flat", "IVF<n>,SQ8",
//           "IVF<n>,SQfp16", "IVF<n>,PQ<m>", "Flat", "SQ8", ... (whatever faiss::index_factory
//           accepts, optionally behind transforms such as "PCA<d>," or "OPQ<m>,")
//   binary: "BHNSW<M>", "BIVF<n>", "BFlat" (spec starts with 'B'; faiss::index_binary_factory)
// Rows carry caller-chosen int64 labels (>= 0, sparse and large values are fine): results are labels.
//
// Scores are in the metric's natural form (as in kernels/search.h): inner product for kIp and kCos
// (higher is better; kCos expects normalised rows and queries and is an inner product), squared L2
// for kL2 and the number of differing bits for kHamming (lower is better). Rows of a TopK are best
// first and padded with id -1 and the worst score, like TopK::resize.
//
// Filtered search ("allow" predicate on labels). Results only ever hold allowed labels; how the
// index finds k of them depends on its structure:
//   HNSW (float and binary)  the graph walk skips disallowed rows when collecting results (it still
//                            walks through them); when a query finds fewer than k, ef is raised 4x
//                            at a time (up to max(ef, 4096)), then the stored rows are scanned
//                            exhaustively: k results whenever k allowed rows exist.
//   float IVF (Flat/SQ/PQ)   faiss::IDSelector inside the list scan; nprobe raised 4x at a time up
//                            to nlist (an exhaustive scan) while a query has fewer than k results.
//   float Flat / SQ (flat)   faiss::IDSelector inside the exact scan.
//   binary IVF               FAISS 1.7.3 takes no selector there: oversample (2k) and post-filter,
//                            then 8x k and nprobe, then an exhaustive filtered Hamming scan.
//   binary Flat              our exact filtered Hamming scan over the stored codes.
//   anything else            (e.g. "IVF<n>,PQ<m>x4fs", "LSH", "...,RFlat") oversample and
//                            post-filter, k raised 4x at a time up to size(): only what the
//                            index's own default search reaches (its nprobe etc. are fixed).
//
// Per-query knobs never touch shared state: ef runs our own walk over the FAISS graph (FAISS 1.7.3
// ignores SearchParametersHNSW::efSearch for the candidate queue), nprobe goes through
// SearchParametersIVF (float) or IndexBinaryIVF::search_preassigned (binary).
//
// Threads: HNSW walks and exhaustive scans run on the calling thread, one query after another; each
// thread keeps a visited-marks buffer of size() bytes (the largest index it searched) between calls.
// Other searches call FAISS, which uses OpenMP; a search caps the calling thread's OpenMP team at nq
// (so nq = 1 never wakes a thread team; FAISS's HNSW and binary searches would otherwise open a
// full team even for one query).
//
// Thread safety: const methods (search, search_binary, serialize, accessors) may run concurrently
// from any number of threads. train*, add* need exclusive access (no concurrent searches). The
// `allow` predicate may be called from several threads at once (FAISS's OpenMP workers) and must
// not throw.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/search.h"

namespace vecstash::engine {

/// Per-query search knobs; 0 = the index's default (FAISS: efSearch 16, nprobe 1 unless the stored
/// index says otherwise). Knobs that do not apply to the index are ignored.
struct AnnSearchParams {
  int ef = 0;      ///< HNSW candidate list size (raised to k when smaller)
  int nprobe = 0;  ///< IVF lists to visit (clamped to the number of lists)
};

/// Label filter: true when the label may be returned.
using AnnAllowFn = std::function<bool(std::int64_t)>;

class AnnIndex {
 public:
  /// Build an empty index. `dim` is the float dimension, or the number of bits for a binary spec
  /// (a multiple of 8). `metric`: kIp, kCos or kL2 for float specs, kHamming for binary ones.
  /// Errors: InvalidArgument naming the spec (syntax, unsupported combination, FAISS's message).
  static Result<std::unique_ptr<AnnIndex>> create(std::string_view spec, std::size_t dim, Metric metric);

  ~AnnIndex();
  AnnIndex(const AnnIndex&) = delete;
  AnnIndex& operator=(const AnnIndex&) = delete;

  bool is_binary() const noexcept;
  /// False until train() for indexes that need training (IVF, SQ, PQ); true otherwise.
  bool is_trained() const noexcept;
  /// Number of rows added.
  std::size_t size() const noexcept;
  const std::string& spec() const noexcept;
  /// Float dimension, or number of bits for a binary index.
  std::size_t dim() const noexcept;
  Metric metric() const noexcept;
  /// Bytes the index holds in memory. HNSW: graph links, levels and stored codes counted from FAISS's
  /// structures (cheap); other kinds: the size of their serialised form.
  std::size_t memory_bytes() const;
  /// HNSW build breadth (efConstruction) of an HNSW or binary HNSW index; 0 for other kinds.
  int ef_construction() const noexcept;
  /// Set efConstruction before rows are added (FAISS's default is 40). InvalidArgument for a value
  /// outside [1, 4096], for an index that is not HNSW, or once rows were added.
  Status set_ef_construction(int ef);

  /// Train on a sample (rows x dim, finite values). A no-op when the index is already trained
  /// (including indexes that need no training): an index is never retrained. IVF needs at least
  /// nlist rows (FAISS suggests 39 * nlist; fewer is logged as a warning); PQ needs 2^nbits rows.
  Status train(MatrixView<const float> sample);
  /// Binary variant: `n` codes of dim / 8 bytes each.
  Status train_binary(const std::uint8_t* codes, std::size_t n);

  /// Add rows labelled `labels[i]` (>= 0; labels should be unique: a repeated label is stored twice).
  /// FailedPrecondition before training. On a FAISS failure in the middle of an add the index is
  /// marked broken and every later call returns Internal (rebuild it).
  Status add(std::span<const std::int64_t> labels, MatrixView<const float> rows);
  /// Binary variant: `n` codes of dim / 8 bytes each, row-major.
  Status add_binary(std::span<const std::int64_t> labels, const std::uint8_t* codes, std::size_t n);

  /// k nearest rows for each query (queries: nq x dim). k in [1, kernels::kMaxK]. `allow` (nullable)
  /// restricts the results to allowed labels; see the top of this file for how each index type
  /// reaches k allowed rows. out becomes nq x k.
  Status search(MatrixView<const float> queries, std::size_t k, const AnnSearchParams& params, const AnnAllowFn* allow,
                kernels::TopK* out) const;
  /// Binary variant: `nq` query codes of dim / 8 bytes each; scores are Hamming distances.
  Status search_binary(const std::uint8_t* queries, std::size_t nq, std::size_t k, const AnnSearchParams& params,
                       const AnnAllowFn* allow, kernels::TopK* out) const;

  /// A self-describing blob (common/blob.h, little-endian): magic "VSAX", u16 format version,
  /// u8 metric, u8 binary flag, u64 dim, bytes spec, bytes FAISS payload (faiss::write_index of
  /// the IndexIDMap / IndexBinaryIDMap via VectorIOWriter), then a CRC-32 of all of it. Empty only
  /// if FAISS fails to serialise (out of memory) or the index is broken; both are logged.
  std::vector<std::uint8_t> serialize() const;
  /// Inverse of serialize(). Corruption (never a crash) for damaged blobs, unknown format versions
  /// and payloads that do not match their header. Blobs are trusted not to be crafted maliciously:
  /// the checksum catches damage, not attacks.
  static Result<std::unique_ptr<AnnIndex>> deserialize(std::span<const std::uint8_t> blob);

  /// Format version written by serialize().
  static constexpr std::uint16_t kFormatVersion = 1;

  struct Impl;  ///< FAISS objects and resolved search strategy (defined in ann_index.cpp)

 private:
  explicit AnnIndex(std::unique_ptr<Impl> impl) noexcept;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecstash::engine
