// A collection: points (id, float vector, JSON payload) stored compressed and durable, searchable
// by exact scan over the codes or an approximate FAISS index, with float32 rescoring.
//
// Life of a vector: normalised (cosine collections) -> kept as float32 until the collection is
// calibrated -> projected by PCA (if configured) -> encoded by the codec. The float32 original is
// kept for rescoring unless the collection is "codes only".
//
// Tiers: RAM holds what every query touches: the codes, per-row norms, the row -> id array, the live
// rows, the id map, the approximate index and the payload indexes. The float32 originals live in a
// file and are read for the candidates being rescored (config originals_in_ram keeps a RAM copy);
// payloads live in the store and are read for the points returned (config payloads_in_ram keeps
// them in RAM). docs/ARCHITECTURE.md, "Storage", has the layout.
//
// Rows: every point occupies a row. Rows only grow; a deleted or replaced point leaves a dead row
// that searches skip, and compact() renumbers rows when dead ones pile up. A point's row is
// persisted with its id, so a restart restores the same row order and therefore the same results,
// ties included. Opening reads the rows file once (no per-point reads).
//
// Thread safety: all public methods are safe to call concurrently. Searches run in parallel with
// each other and with writes; a write (a batch of upserts or deletes) becomes visible to searches
// all at once, after it is durable. Writes to one collection are serialised.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <shared_mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/anchors.h"
#include "vecstash/engine/collection_config.h"
#include "vecstash/engine/filter.h"
#include "vecstash/engine/point_id.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/pca.h"
#include "vecstash/kernels/search.h"

namespace vecstash::storage {
class RowFile;
class WriteBatch;
}  // namespace vecstash::storage

namespace vecstash::engine {

class AnnIndex;
class ThreadPool;
struct ModelState;
class RowStore;
class Originals;
class PayloadStore;

/// A point to upsert. `vector` holds dim floats (finite). A payload that is not an object is rejected.
struct PointInput {
  PointId id;
  std::span<const float> vector;
  std::optional<nlohmann::json> payload;  ///< nullopt = no payload (an upsert replaces the old one)
};

struct WriteOptions {
  /// true: fsync the write-ahead log before returning (survives power loss); false: relaxed, for
  /// bulk loads (survives a process crash, not a power loss). Empty: the engine's default (synced).
  std::optional<bool> sync;
};

/// Per-query knobs; unset fields take the collection's SearchDefaults.
struct SearchRequest {
  std::span<const float> queries;  ///< nq x dim, row-major
  std::size_t nq = 0;
  std::size_t limit = 10;
  std::size_t offset = 0;
  const Filter* filter = nullptr;        ///< nullptr = every point
  std::optional<float> score_threshold;  ///< similarities >= it, or L2 distances <= it
  bool with_payload = false;
  bool with_vector = false;
  bool exact = false;  ///< scan the codes even when an index exists
  std::optional<bool> rescore;
  std::optional<double> oversampling;
  std::optional<int> hnsw_ef;
  std::optional<int> ivf_nprobe;
  /// Which vectors the queries are for: the collection's own (default), its relative vectors or a
  /// registered model's space (anchors.h). The query dimension follows: dim, anchors, or the model's.
  QuerySpace space;
};

/// One search hit. score: cosine or inner product (higher is better) or Euclidean distance (lower).
struct ScoredPoint {
  PointId id;
  float score = 0.0f;
  std::optional<nlohmann::json> payload;
  std::optional<std::vector<float>> vector;
};

struct Record {
  PointId id;
  std::optional<nlohmann::json> payload;
  std::optional<std::vector<float>> vector;
};

struct ScrollRequest {
  std::optional<PointId> offset;  ///< first id to return (inclusive); nullopt = from the smallest
  std::size_t limit = 10;
  const Filter* filter = nullptr;
  bool with_payload = true;
  bool with_vector = false;
};
struct ScrollPage {
  std::vector<Record> points;
  std::optional<PointId> next_offset;  ///< id to pass as the next offset; nullopt = no more
};

/// Memory a collection holds in RAM, in bytes (resident pages of its arrays; estimates where noted).
/// What stays on disk (originals without originals_in_ram, payloads without payloads_in_ram) is not
/// counted: it is read through the OS page cache or the store's bounded block cache.
struct MemoryUsage {
  std::size_t codes = 0;          ///< codes, per-row norms, live bits, relative vectors, hubness terms
  std::size_t originals = 0;      ///< float32 originals held in RAM (before calibration, or originals_in_ram)
  std::size_t ids = 0;            ///< row -> id array and id -> row map
  std::size_t payloads = 0;       ///< payloads held in RAM (payloads_in_ram; estimated)
  std::size_t payload_index = 0;  ///< payload indexes (estimated from container sizes)
  std::size_t index = 0;          ///< approximate index (estimated from FAISS's sizes)
  std::size_t total() const { return codes + originals + ids + payloads + payload_index + index; }
};

/// A payload index, as Qdrant's payload_schema lists it.
struct PayloadIndexInfo {
  std::string field;       ///< the key path it indexes, e.g. "metadata.source"
  std::string type;        ///< keyword, integer, float, bool, uuid, datetime or text
  std::size_t points = 0;  ///< live points with a value of the field
};

enum class RecalibrationState : std::uint8_t { kIdle, kRunning, kDone, kFailed };
struct RecalibrationProgress {
  RecalibrationState state = RecalibrationState::kIdle;
  std::size_t done = 0;   ///< rows re-encoded so far
  std::size_t total = 0;  ///< rows to re-encode
  std::string message;    ///< the error when kFailed
};

struct CollectionInfo {
  std::string name;
  CollectionConfig config;
  std::size_t points = 0;
  std::size_t rows = 0;  ///< including dead rows awaiting compaction
  bool calibrated = false;
  std::size_t code_dim = 0;    ///< dimension after PCA (0 before calibration)
  std::size_t code_bytes = 0;  ///< bytes per stored code (0 before calibration)
  double explained_variance = 1.0;
  std::uint32_t generation = 0;  ///< calibration generation (0 = not calibrated)
  std::size_t indexed = 0;       ///< rows covered by the approximate index
  MemoryUsage memory;
  RecalibrationProgress recalibration;
};

/// How much a collection's compression costs in accuracy, measured on its own data: `sample` stored
/// points (chosen with a fixed seed) are used as queries; each one's k nearest other points by exact
/// float32 search over the kept originals are the truth; recall@k is measured for the stored codes
/// alone (exact scan, no rescoring) and with float32 rescoring of the oversampled candidates.
struct CompressionReport {
  std::size_t points = 0;
  std::size_t sample = 0;  ///< queries actually used (<= requested, <= points)
  std::size_t k = 0;
  std::size_t dim = 0;         ///< stored vector dimension
  std::size_t code_dim = 0;    ///< after PCA (0 before calibration)
  std::size_t code_bytes = 0;  ///< bytes per code (0 before calibration)
  double float32_bytes = 0;    ///< dim * 4
  /// In-memory bytes per point: the codes (+ norms) alone, and everything the collection holds
  /// (codes, originals, ids, payloads, index) divided by the points.
  double code_bytes_per_vector = 0;
  double ram_bytes_per_vector = 0;
  double compression_ratio = 0;           ///< float32_bytes / code_bytes_per_vector
  std::optional<double> recall_codes;     ///< nullopt when it cannot be measured (see note)
  std::optional<double> recall_rescored;  ///< nullopt when originals are not kept
  double oversampling = 0;
  std::string note;  ///< why a recall is missing, or empty
};

struct EngineShared;  // engine-wide resources (store, pool, threads); defined in engine.cpp

class Collection {
 public:
  ~Collection();
  Collection(const Collection&) = delete;
  Collection& operator=(const Collection&) = delete;

  const std::string& name() const noexcept { return name_; }
  const CollectionConfig& config() const noexcept { return config_; }

  /// Insert or replace points (one atomic, durable batch). Ids must be unique within the batch.
  /// Crossing calibration_sample points calibrates the collection (in this call).
  Status upsert(std::span<const PointInput> points, const WriteOptions& options = {});
  /// Delete points by id (absent ids are ignored). Returns how many existed.
  Result<std::size_t> erase(std::span<const PointId> ids, const WriteOptions& options = {});
  /// Delete every point matching `filter`.
  Result<std::size_t> erase_matching(const Filter& filter, const WriteOptions& options = {});
  /// Replace (overwrite = true) or merge top-level keys into the payload of the given points.
  Status set_payload(std::span<const PointId> ids, const nlohmann::json& payload, bool overwrite,
                     const WriteOptions& options = {});

  /// Nearest neighbours for each of req.nq queries.
  Result<std::vector<std::vector<ScoredPoint>>> search(const SearchRequest& req) const;
  /// The points with these ids, in request order; absent ids are skipped.
  Result<std::vector<Record>> retrieve(std::span<const PointId> ids, bool with_payload, bool with_vector) const;
  /// Points in id order (numbers first, then UUIDs), optionally filtered.
  Result<ScrollPage> scroll(const ScrollRequest& req) const;
  /// Live points.
  std::size_t count() const;
  /// Live points matching `filter` (nullptr: all). Filters on fields without a payload index read the
  /// payloads.
  Result<std::size_t> count(const Filter* filter) const;

  /// Calibrate now from the points ingested so far (needs >= 2). FailedPrecondition if calibrated.
  Status calibrate();
  /// Re-train PCA and codec on the current points and re-encode everything, in the background on
  /// the engine's pool (needs kept originals). Searches keep running on the old codes; writes wait.
  Status start_recalibration();
  RecalibrationProgress recalibration_progress() const;
  /// Block until no background work (recalibration, automatic compaction) is queued or running.
  void wait_for_recalibration() const;
  /// (Re)build the approximate index over all live rows now and persist a snapshot of it.
  Status build_index();
  /// Renumber rows to drop dead ones (and rebuild the index). Returns the rows reclaimed. Writes also
  /// schedule it on the engine's pool once dead rows are at least 1,000 and 20 % of all rows.
  Result<std::size_t> compact();
  /// Persist the approximate index so the next open loads it instead of rebuilding (the engine
  /// does this on close; rows added after a snapshot are re-added on open).
  Status snapshot_index();

  /// Build (or rebuild with another type) a payload index on `field` (a key path as filters take
  /// it) of `type` (keyword, integer, float, bool, uuid, datetime, text) over every point, kept up to
  /// date by writes and persisted. Filters on the field take their rows from it. Creating an index
  /// that exists with the same type changes nothing.
  Status create_payload_index(const std::string& field, const std::string& type);
  /// Remove a payload index (filters on the field scan payloads again). NotFound when absent.
  Status drop_payload_index(const std::string& field);
  /// The payload indexes, by field name.
  std::vector<PayloadIndexInfo> payload_indexes() const;

  CollectionInfo info() const;
  MemoryUsage memory_usage() const;
  /// Measure recall@k of the stored codes against float32 (see CompressionReport). sample in
  /// [1, 10000], k in [1, 1000]. Runs exact scans over the whole collection: O(sample x points).
  Result<CompressionReport> evaluate_compression(std::size_t sample, std::size_t k, std::uint64_t seed = 42) const;

  // ---- anchors, relative vectors and cross-model queries (anchors.h) ----
  /// Choose (or take) the anchor set, replacing any earlier one and removing its models; computes
  /// the relative vectors when requested. Durable when it returns.
  Result<AnchorInfo> set_anchors(const AnchorRequest& request);
  /// The anchor set, or nullopt when there is none.
  std::optional<AnchorInfo> anchors() const;
  /// The anchor vectors (count x dim, in the collection's space, as stored), or NotFound.
  Result<std::vector<float>> anchor_vectors() const;
  /// Remove the anchor set, its models and the relative vectors. NotFound when there is none.
  Status clear_anchors();
  /// Register (or replace) a model by its embeddings of the anchors; fits both maps and the local
  /// correction (anchors.h). Durable.
  Result<ModelInfo> register_model(const ModelRequest& request);
  /// NotFound when absent.
  Status remove_model(const std::string& name);

  struct State;        ///< internal: the immutable calibration (PCA, codec, generation)
  struct AnchorState;  ///< internal: the immutable anchor set and its models

 private:
  friend class Engine;
  Collection(EngineShared* shared, std::uint32_t cid, std::string name, CollectionConfig config);

  static Result<std::shared_ptr<Collection>> create(EngineShared* shared, std::uint32_t cid, std::string name,
                                                    CollectionConfig config);
  static Result<std::shared_ptr<Collection>> load(EngineShared* shared, std::uint32_t cid, std::string name,
                                                  CollectionConfig config);
  // ---- opening (collection_open.cpp) ----
  Status load_data();
  Result<std::shared_ptr<State>> load_calibration(std::uint32_t generation) const;
  Status load_rows(std::uint32_t generation, std::uint64_t rows);  // rows file, dead marks, originals
  Status load_payloads();                                          // RAM tier, payload indexes
  Status load_index();                                             // the approximate index
  Status load_anchors();                                           // from the store; recomputes the relative vectors
  Status migrate_legacy_layout(std::uint32_t generation, std::uint64_t epoch);
  void remove_stray_files() const;

  // ---- storage layout ----
  std::filesystem::path rows_path(std::uint32_t generation, std::uint64_t epoch) const;
  std::filesystem::path originals_path(std::uint64_t epoch) const;
  std::filesystem::path payload_index_path() const;
  std::filesystem::path ann_path() const;
  // Whether float32 originals are stored: always before calibration, afterwards when kept.
  bool stores_originals(const State* state) const noexcept;
  // The collection state blob (VSST v2): generation, epoch, row watermark.
  std::string state_value(std::uint32_t generation, std::uint64_t epoch, std::uint64_t rows) const;
  // Write `files` to disk and `batch` to the store, durable as the options ask: files are synced
  // before the batch that makes their rows visible commits.
  Status commit(storage::WriteBatch& batch, const WriteOptions& options, bool rows_written);

  // ---- derived data (anchors.cpp) ----
  // Relative vectors of rows [first, rows_) (or of all rows when first == 0) with `anchors`, computed
  // from the stored vectors. Caller holds write_mu_ (rows are stable); no lock on mu_ needed.
  Status compute_relative(const AnchorState& anchors, std::size_t first, std::size_t count,
                          std::vector<std::uint8_t>* codes, std::vector<float>* norms) const;
  // Relative codes (and norms) of float rows in the collection's space: GPU when present, else CPU.
  Status relative_of(const AnchorState& anchors, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                     std::span<float> norms) const;
  // After calibration or recalibration changed the stored vectors (and at open): recompute every
  // relative vector and every model's hubness terms. Caller holds write_mu_ (or is loading).
  Status refresh_derived_locked();
  // Call fn(offset from first, block) for rows [first, first + count) in blocks of stored vectors
  // (stored_rows), so derived data is computed without a float32 copy of everything.
  Status for_stored_blocks(std::size_t first, std::size_t count,
                           const std::function<Status(std::size_t, MatrixView<const float>)>& fn) const;
  // Hubness terms (anchors.h) of rows [first, first + count) for `model`, from the stored vectors.
  // Caller holds write_mu_.
  Status compute_hubness(const ModelState& model, std::size_t first, std::size_t count, std::vector<float>* out) const;
  // Hubness terms of float rows in the collection's space.
  Status hubness_of(const ModelState& model, MatrixView<const float> rows, std::span<float> out) const;

  // ---- search (collection_search.cpp) ----
  // The search of search() (validation included); with `hub`, each row's score is lowered by
  // hub->weight x its hubness term for hub->model (anchors.h).
  struct HubBias {
    std::string model;
    float weight = 0.0f;
  };
  Result<std::vector<std::vector<ScoredPoint>>> search_impl(const SearchRequest& req, const HubBias* hub) const;
  Result<std::vector<std::vector<ScoredPoint>>> search_space(const SearchRequest& req) const;
  Result<std::vector<std::vector<ScoredPoint>>> search_relative(const AnchorState& anchors, MatrixView<const float> rel,
                                                                const SearchRequest& req) const;
  // Turn row ids and scores into results (threshold, offset, limit, payloads, vectors); caller holds mu_.
  Result<std::vector<std::vector<ScoredPoint>>> collect_results(const kernels::TopK& found, const SearchRequest& req,
                                                                bool distance) const;
  // The stored vectors of rows (originals, or codes decoded and mapped back through PCA); caller holds a lock.
  Result<std::vector<float>> stored_rows(std::span<const std::size_t> rows) const;
  // Eligible rows for a filter (live rows matching it), as an eligibility bitset; caller holds mu_.
  Result<std::vector<std::uint64_t>> allow_bits(const Filter* filter, std::size_t* count = nullptr) const;
  // Rescore candidates against the float32 originals (from RAM or disk) and keep the best k.
  Status rescore(MatrixView<const float> queries, const kernels::TopK& candidates, std::size_t k, const float* row_bias,
                 kernels::TopK* out) const;
  /// Exact scan on the GPU; false (with the CPU to be used) when there is none or it failed.
  bool scan_on_gpu(MatrixView<const float> queries, const kernels::SearchParams& params, const std::uint64_t* allow,
                   const float* row_bias, kernels::TopK* out) const;

  // ---- writes, calibration, index (collection.cpp) ----
  Result<std::vector<float>> prepare_rows(std::span<const PointInput> points) const;
  Status calibrate_locked(std::size_t sample_rows);
  Status add_to_index_locked(std::size_t first_row);
  Status rebuild_index_locked();  // build over all live rows and persist a snapshot
  Result<std::unique_ptr<AnnIndex>> build_ann(const State& state, const std::uint8_t* codes,
                                              std::span<const std::size_t> rows) const;
  Status save_index_snapshot();
  Status save_payload_index_snapshot();  // caller holds write_mu_
  void run_recalibration();
  void schedule_compaction_locked();  // caller holds write_mu_
  Status check_not_dropped() const;
  // Payload index definitions as persisted: [{"field": .., "type": ..}, ...].
  Status persist_payload_schema(storage::WriteBatch& batch) const;

  EngineShared* shared_;
  const std::uint32_t cid_;
  const std::string name_;
  const CollectionConfig config_;
  const std::filesystem::path dir_;  // this collection's files

  // Serialises writers (upsert, delete, calibration, recalibration, compaction).
  mutable std::mutex write_mu_;
  // Guards everything below: shared for readers, exclusive while a write is applied.
  mutable std::shared_mutex mu_;
  std::shared_ptr<const State> state_;           // null until calibrated
  std::unique_ptr<RowStore> rows_;               // the RAM tier: codes, norms, ids, live rows
  std::unique_ptr<storage::RowFile> rows_file_;  // rows_ on disk (this generation and epoch)
  std::unique_ptr<Originals> originals_;         // null when none are stored
  std::unique_ptr<PayloadStore> payloads_;
  std::unique_ptr<AnnIndex> index_;
  std::shared_ptr<const AnchorState> anchors_;  // null without anchors
  std::vector<std::uint8_t> rel_codes_;         // rows x relative code size, when relative vectors are kept
  std::vector<float> rel_norms_;                // rows
  std::unordered_map<std::string, std::vector<float>> hubs_;  // model -> hubness term per row (models with one)
  std::size_t indexed_rows_ = 0;                              // rows [0, indexed_rows_) were offered to the index
  std::size_t payload_indexed_rows_ = 0;                      // rows [0, this) are in the payload-index snapshot
  std::uint64_t epoch_ = 0;                                   // row numbering; compaction increments it
  bool dropped_ = false;                                      // set (under write_mu_) when the engine drops it
  std::uint64_t version_ = 0;                                 // bumped whenever codes change (GPU copy freshness)
  std::uint64_t instance_ = 0;                                // unique per Collection object (GPU copy owner)

  mutable std::mutex recal_mu_;
  mutable std::condition_variable recal_cv_;
  RecalibrationProgress recal_;
  bool compaction_queued_ = false;  // guarded by recal_mu_
};

}  // namespace vecstash::engine
