// Collection: writes (upsert, delete, payloads), calibration, compaction and the approximate index.
// Opening is in collection_open.cpp, reads and searches in collection_search.cpp.
#include "vecstash/engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "anchor_state.h"
#include "collection_state.h"
#include "originals.h"
#include "payload_path.h"
#include "payload_store.h"
#include "row_store.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/ann_index.h"
#include "vecstash/storage/row_file.h"

namespace vecstash::engine {

namespace {

using storage::Column;
using storage::Durability;

constexpr std::size_t kEncodeChunk = 8192;
// The payload indexes are saved again once this many rows (and a quarter of all rows) were added
// since the last save, so that an open after a crash re-indexes a bounded tail.
constexpr std::size_t kPayloadSnapshotRows = 50000;

}  // namespace

Status encode_rows(const Collection::State& state, bool norms, MatrixView<const float> rows, int threads,
                   Encoded* out) {
  const std::size_t n = rows.rows;
  std::vector<float> projected;
  MatrixView<const float> input = rows;
  if (state.has_pca) {
    projected.resize(n * state.pca.dim_out());
    VECSTASH_RETURN_IF_ERROR(
        state.pca.transform(rows, MatrixView<float>(projected.data(), n, state.pca.dim_out()), true, threads));
    input = MatrixView<const float>(projected.data(), n, state.pca.dim_out());
  }
  out->codes.resize(n * state.codec.code_size());
  out->norms.assign(norms ? n : 0, 0.0f);
  return state.codec.encode(input, out->codes, out->norms, threads);
}

Collection::Collection(EngineShared* shared, std::uint32_t cid, std::string name, CollectionConfig config)
    : shared_(shared),
      cid_(cid),
      name_(std::move(name)),
      config_(std::move(config)),
      dir_(collection_dir(shared->store->path(), cid)),
      instance_(shared->next_instance.fetch_add(1)) {}

Collection::~Collection() { wait_for_recalibration(); }

// ---- storage layout ------------------------------------------------------------------------------

std::filesystem::path Collection::rows_path(std::uint32_t generation, std::uint64_t epoch) const {
  return dir_ / ("rows-g" + std::to_string(generation) + "-e" + std::to_string(epoch) + ".vsr");
}
std::filesystem::path Collection::originals_path(std::uint64_t epoch) const {
  return dir_ / ("originals-e" + std::to_string(epoch) + ".vsr");
}
std::filesystem::path Collection::payload_index_path() const { return dir_ / "payload-index.vspi"; }
std::filesystem::path Collection::ann_path() const { return dir_ / "ann-index.vsis"; }

bool Collection::stores_originals(const State* state) const noexcept {
  return state == nullptr || config_.keep_originals;
}

std::string Collection::state_value(std::uint32_t generation, std::uint64_t epoch, std::uint64_t rows) const {
  BlobWriter w("VSST", 2);
  w.u32(generation);
  w.u64(epoch);
  w.u64(rows);
  const auto b = w.finish();
  return {b.begin(), b.end()};
}

Status Collection::commit(storage::WriteBatch& batch, const WriteOptions& options, bool rows_written) {
  const bool sync = options.sync.value_or(shared_->options.sync_writes);
  // The rows the batch makes visible must be on disk first: synced when the write is.
  if (rows_written && sync) {
    VECSTASH_RETURN_IF_ERROR(rows_file_->sync());
    if (originals_) VECSTASH_RETURN_IF_ERROR(originals_->sync());
  }
  return shared_->store->write(batch, sync ? Durability::kSync : Durability::kRelaxed);
}

Result<std::shared_ptr<Collection>> Collection::create(EngineShared* shared, std::uint32_t cid, std::string name,
                                                       CollectionConfig config) {
  std::shared_ptr<Collection> c(new Collection(shared, cid, std::move(name), std::move(config)));
  VECSTASH_RETURN_IF_ERROR(with_collection(c->load_data(), c->name_));
  return c;
}

Result<std::shared_ptr<Collection>> Collection::load(EngineShared* shared, std::uint32_t cid, std::string name,
                                                     CollectionConfig config) {
  std::shared_ptr<Collection> c(new Collection(shared, cid, std::move(name), std::move(config)));
  VECSTASH_RETURN_IF_ERROR(with_collection(c->load_data(), c->name_));
  return c;
}

// ---- writes --------------------------------------------------------------------------------------

Result<std::vector<float>> Collection::prepare_rows(std::span<const PointInput> points) const {
  const std::size_t dim = config_.dim;
  std::vector<float> rows(points.size() * dim);
  for (std::size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (p.vector.size() != dim) {
      return Status::invalid_argument("point " + p.id.to_string() + ": vector has " + std::to_string(p.vector.size()) +
                                      " dimensions, the collection has " + std::to_string(dim));
    }
    for (std::size_t j = 0; j < dim; ++j) {
      if (!std::isfinite(p.vector[j])) {
        return Status::invalid_argument("point " + p.id.to_string() + ": vector element " + std::to_string(j) +
                                        " is not a finite number");
      }
    }
    if (p.payload && !p.payload->is_object()) {
      return Status::invalid_argument("point " + p.id.to_string() + ": payload must be a JSON object");
    }
    float* dst = rows.data() + i * dim;
    std::copy(p.vector.begin(), p.vector.end(), dst);
    if (config_.metric == Metric::kCos) normalize(dst, dim);
  }
  return rows;
}

Status Collection::upsert(std::span<const PointInput> input, const WriteOptions& options) {
  if (input.empty()) return Status::ok();
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  // The last occurrence of an id in a batch wins, as in Qdrant.
  std::vector<const PointInput*> points;
  {
    std::unordered_map<PointId, std::size_t, PointIdHash> last;
    last.reserve(input.size());
    for (std::size_t i = 0; i < input.size(); ++i) last[input[i].id] = i;
    points.reserve(last.size());
    for (std::size_t i = 0; i < input.size(); ++i) {
      if (last[input[i].id] == i) points.push_back(&input[i]);
    }
  }
  const std::size_t n = points.size();
  const std::size_t dim = config_.dim;
  std::vector<PointInput> unique;
  unique.reserve(n);
  for (const PointInput* p : points) unique.push_back(*p);
  auto prepared = prepare_rows(unique);
  if (!prepared.is_ok()) return with_collection(prepared.status(), name_);
  const std::vector<float>& rows = *prepared;
  const auto state = state_;  // stable: only writers change it, and we hold write_mu_
  const std::size_t first_row = rows_->rows();
  if (first_row + n > RowIndex::kMaxRow) {
    return Status::resource_exhausted("collection '" + name_ + "' has no free rows left; compact() it");
  }

  Encoded enc;
  if (state) {
    VECSTASH_RETURN_IF_ERROR(
        with_collection(encode_rows(*state, state->plan.needs_norms, MatrixView<const float>(rows.data(), n, dim),
                                    shared_->options.threads, &enc),
                        name_));
  }

  // Relative vectors and hubness terms of the new points, from what will be stored (as stored_rows).
  const auto anchors = anchors_;  // stable: only writers change it
  std::vector<std::uint8_t> rel_codes;
  std::vector<float> rel_norms;
  std::vector<std::pair<std::string, std::vector<float>>> hubs;
  bool any_hubs = false;
  if (anchors) {
    for (const auto& [model_name, model] : anchors->models) any_hubs |= model->info.hubness_weight > 0.0f;
  }
  if (anchors && (anchors->store_relative || any_hubs)) {
    std::vector<float> decoded;
    const float* src = rows.data();
    if (state && !config_.keep_originals) {
      decoded.resize(n * state->code_dim());
      VECSTASH_RETURN_IF_ERROR(state->codec.decode(enc.codes, MatrixView<float>(decoded.data(), n, state->code_dim()),
                                                   shared_->options.threads));
      if (state->has_pca) {
        std::vector<float> back(n * dim);
        VECSTASH_RETURN_IF_ERROR(
            state->pca.inverse_transform(MatrixView<const float>(decoded.data(), n, state->code_dim()),
                                         MatrixView<float>(back.data(), n, dim), shared_->options.threads));
        decoded = std::move(back);
      }
      src = decoded.data();
    }
    if (anchors->store_relative) {
      const std::size_t rcs = anchors->codec.code_size();
      rel_codes.resize(n * rcs);
      rel_norms.resize(n);
      VECSTASH_RETURN_IF_ERROR(
          with_collection(relative_of(*anchors, MatrixView<const float>(src, n, dim), rel_codes, rel_norms), name_));
    }
    for (const auto& [model_name, model] : anchors->models) {
      if (model->info.hubness_weight <= 0.0f) continue;
      hubs.emplace_back(model_name, std::vector<float>(n));
      VECSTASH_RETURN_IF_ERROR(
          with_collection(hubness_of(*model, MatrixView<const float>(src, n, dim), hubs.back().second), name_));
    }
  }

  // The rows go to disk first; the batch below raises the watermark that makes them visible.
  std::vector<PointId> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = points[i]->id;
  VECSTASH_RETURN_IF_ERROR(with_collection(
      rows_file_->write(first_row,
                        rows_->records(ids, enc.codes.data(), enc.norms.empty() ? nullptr : enc.norms.data())),
      name_));
  if (originals_) VECSTASH_RETURN_IF_ERROR(with_collection(originals_->persist(first_row, rows.data(), n), name_));

  storage::WriteBatch batch;
  batch.put(Column::kMeta, keys::state(cid_), state_value(state ? state->generation : 0, epoch_, first_row + n));
  for (std::size_t i = 0; i < n; ++i) {
    if (const auto old = rows_->find(ids[i]))
      batch.put(Column::kRowMarks, keys::mark(cid_, keys::kDeadMark, epoch_, *old), "");
    if (points[i]->payload) {
      payloads_->put(batch, ids[i], *points[i]->payload);
    } else {
      payloads_->erase(batch, ids[i]);
    }
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(commit(batch, options, /*rows_written=*/true), name_));

  {
    std::unique_lock lock(mu_);
    std::vector<std::size_t> replaced;
    rows_->append(ids, enc.codes.data(), enc.norms.empty() ? nullptr : enc.norms.data(), &replaced);
    for (std::size_t row : replaced) payloads_->forget(row);
    if (originals_) originals_->apply(first_row, rows.data(), n);
    for (std::size_t i = 0; i < n; ++i) {
      payloads_->apply(first_row + i, points[i]->payload ? &*points[i]->payload : nullptr);
    }
    const std::size_t new_rows = first_row + n;
    if (!rel_norms.empty()) {
      const std::size_t rcs = anchors->codec.code_size();
      rel_codes_.resize(new_rows * rcs);
      std::memcpy(rel_codes_.data() + first_row * rcs, rel_codes.data(), n * rcs);
      rel_norms_.resize(new_rows);
      std::copy(rel_norms.begin(), rel_norms.end(), rel_norms_.begin() + static_cast<std::ptrdiff_t>(first_row));
    }
    for (auto& [model_name, terms] : hubs) {
      std::vector<float>& all = hubs_[model_name];
      all.resize(new_rows);
      std::copy(terms.begin(), terms.end(), all.begin() + static_cast<std::ptrdiff_t>(first_row));
    }
    ++version_;
    if (index_) VECSTASH_RETURN_IF_ERROR(with_collection(add_to_index_locked(first_row), name_));
  }
  if (!state && rows_->live_count() >= config_.calibration_sample) {
    VECSTASH_RETURN_IF_ERROR(with_collection(calibrate_locked(config_.calibration_sample), name_));
  }
  const std::size_t fresh = rows_->rows() - std::min(rows_->rows(), payload_indexed_rows_);
  if (!payloads_->indexes().empty() && fresh >= kPayloadSnapshotRows && fresh * 4 >= rows_->rows()) {
    VECSTASH_RETURN_IF_ERROR(with_collection(save_payload_index_snapshot(), name_));
  }
  schedule_compaction_locked();
  return Status::ok();
}

void Collection::schedule_compaction_locked() {
  // As Qdrant's vacuum optimizer: at least 1,000 dead rows and at least 20 % of all rows.
  constexpr std::size_t kMinDeadRows = 1000;
  const std::size_t dead = rows_->rows() - rows_->live_count();
  if (dropped_ || dead < kMinDeadRows || dead * 5 < rows_->rows()) return;
  {
    std::lock_guard lock(recal_mu_);
    if (compaction_queued_ || recal_.state == RecalibrationState::kRunning) return;
    compaction_queued_ = true;
  }
  const Status s = shared_->pool->submit([this] {
    const auto reclaimed = compact();
    if (!reclaimed.is_ok()) {
      log(LogLevel::kWarn, "background compaction: " + reclaimed.status().to_string());
    } else {
      log(LogLevel::kDebug,
          "collection '" + name_ + "': compacted " + std::to_string(reclaimed.value()) + " dead rows");
    }
    std::lock_guard lock(recal_mu_);
    compaction_queued_ = false;
    recal_cv_.notify_all();
  });
  if (!s.is_ok()) {
    std::lock_guard lock(recal_mu_);
    compaction_queued_ = false;  // the next write tries again
    recal_cv_.notify_all();
  }
}

Status Collection::check_not_dropped() const {
  if (dropped_) return Status::not_found("collection '" + name_ + "' was dropped");
  return Status::ok();
}

Result<std::size_t> Collection::erase(std::span<const PointId> ids, const WriteOptions& options) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  storage::WriteBatch batch;
  std::vector<std::size_t> rows;
  for (const PointId& id : ids) {
    const auto found = rows_->find(id);
    if (!found) continue;
    if (std::find(rows.begin(), rows.end(), *found) != rows.end()) continue;
    rows.push_back(*found);
    batch.put(Column::kRowMarks, keys::mark(cid_, keys::kDeadMark, epoch_, *found), "");
    payloads_->erase(batch, id);
  }
  if (rows.empty()) return std::size_t{0};
  VECSTASH_RETURN_IF_ERROR(with_collection(commit(batch, options, /*rows_written=*/false), name_));
  {
    std::unique_lock lock(mu_);
    for (std::size_t row : rows) {
      rows_->kill(row);
      payloads_->forget(row);
    }
  }
  schedule_compaction_locked();
  return rows.size();
}

Result<std::size_t> Collection::erase_matching(const Filter& filter, const WriteOptions& options) {
  std::vector<PointId> ids;
  {
    std::shared_lock lock(mu_);
    auto bits = allow_bits(&filter);
    if (!bits.is_ok()) return with_collection(bits.status(), name_);
    for (std::size_t w = 0; w < bits->size(); ++w) {
      for (std::uint64_t b = (*bits)[w]; b != 0; b &= b - 1) {
        ids.push_back(rows_->id(w * 64 + static_cast<std::size_t>(std::countr_zero(b))));
      }
    }
  }
  // A point written between the two steps is judged by its state at the first; like Qdrant, a
  // delete by filter is not a transaction across concurrent writers.
  return erase(ids, options);
}

Status Collection::set_payload(std::span<const PointId> ids, const nlohmann::json& payload, bool overwrite,
                               const WriteOptions& options) {
  if (!payload.is_object()) return Status::invalid_argument("payload must be a JSON object");
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  storage::WriteBatch batch;
  std::vector<std::pair<std::size_t, nlohmann::json>> updates;
  const bool mark = !payloads_->indexes().empty();
  for (const PointId& id : ids) {
    const auto found = rows_->find(id);
    if (!found) {
      return Status::not_found("collection '" + name_ + "': no point with id " + id.to_string());
    }
    nlohmann::json next = payload;
    if (!overwrite) {
      auto old = payloads_->get(*found, id);
      if (!old.is_ok()) return with_collection(old.status(), name_);
      next = std::move(*old);
      for (const auto& [k, v] : payload.items()) next[k] = v;
    }
    payloads_->put(batch, id, next);
    // The payload-index snapshot holds the old values of this row: re-index it when opening.
    if (mark && *found < payload_indexed_rows_) {
      batch.put(Column::kRowMarks, keys::mark(cid_, keys::kPayloadMark, epoch_, *found), "");
    }
    updates.emplace_back(*found, std::move(next));
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(commit(batch, options, /*rows_written=*/false), name_));
  std::unique_lock lock(mu_);
  for (auto& [row, value] : updates) payloads_->apply(row, &value);
  return Status::ok();
}

// ---- payload indexes -----------------------------------------------------------------------------

Status Collection::persist_payload_schema(storage::WriteBatch& batch) const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& [field, index] : payloads_->indexes().fields()) {
    list.push_back({{"field", field}, {"type", std::string(field_schema_name(index.schema()))}});
  }
  batch.put(Column::kMeta, keys::payload_schema(cid_), list.dump());
  return Status::ok();
}

Status Collection::create_payload_index(const std::string& field, const std::string& type) {
  const auto schema = field_schema_from_name(type);
  if (!schema) {
    return Status::invalid_argument("field_schema '" + type +
                                    "' is not one of keyword, integer, float, bool, uuid, datetime, text");
  }
  Path path;
  VECSTASH_RETURN_IF_ERROR(parse_path(field, "field_name", &path));
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (const FieldIndex* existing = payloads_->indexes().find(field); existing && existing->schema() == *schema) {
    return Status::ok();  // as Qdrant: creating an existing index again changes nothing
  }
  // Built while searches go on (writers are held off by write_mu_), then put in place.
  auto built = payloads_->build_index(field, *schema, *rows_);
  if (!built.is_ok()) return with_collection(built.status(), name_);
  {
    std::unique_lock lock(mu_);
    payloads_->install_index(std::move(*built));
  }
  storage::WriteBatch batch;
  VECSTASH_RETURN_IF_ERROR(persist_payload_schema(batch));
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  return with_collection(save_payload_index_snapshot(), name_);
}

Status Collection::drop_payload_index(const std::string& field) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  {
    std::unique_lock lock(mu_);
    if (!payloads_->drop_index(field)) {
      return Status::not_found("collection '" + name_ + "' has no payload index on '" + field + "'");
    }
  }
  storage::WriteBatch batch;
  VECSTASH_RETURN_IF_ERROR(persist_payload_schema(batch));
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  return with_collection(save_payload_index_snapshot(), name_);
}

std::vector<PayloadIndexInfo> Collection::payload_indexes() const {
  std::shared_lock lock(mu_);
  std::vector<PayloadIndexInfo> out;
  for (const auto& [field, index] : payloads_->indexes().fields()) {
    std::size_t points = 0;
    index.for_each_row([&](std::uint32_t row) { points += rows_->is_live(row) ? 1 : 0; });
    for (std::uint32_t row : index.uncovered()) points += rows_->is_live(row) && !index.has_values(row) ? 1 : 0;
    out.push_back({field, std::string(field_schema_name(index.schema())), points});
  }
  return out;
}

Status Collection::save_payload_index_snapshot() {
  // Callers hold write_mu_: the rows and the indexes do not change underneath (readers may run).
  if (payloads_->indexes().empty()) {
    std::error_code ec;
    std::filesystem::remove(payload_index_path(), ec);
    payload_indexed_rows_ = rows_->rows();
    return Status::ok();
  }
  const auto blob = payloads_->indexes().serialize();
  BlobWriter w("VSPS", 1);
  w.u64(epoch_);
  w.u64(rows_->rows());
  w.bytes(blob);
  const auto file = w.finish();
  VECSTASH_RETURN_IF_ERROR(storage::write_file_atomically(payload_index_path(), file));
  payload_indexed_rows_ = rows_->rows();
  // The marks of changed payloads are covered by the snapshot now.
  const std::string prefix = keys::mark_prefix(cid_, keys::kPayloadMark, epoch_);
  return shared_->store->erase_range(Column::kRowMarks, prefix, storage::prefix_end(prefix));
}

// ---- calibration ---------------------------------------------------------------------------------

Status Collection::calibrate() {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (state_) return Status::failed_precondition("collection '" + name_ + "' is already calibrated; use recalibration");
  if (rows_->live_count() < 2) {
    return Status::failed_precondition("collection '" + name_ + "' needs at least 2 points to calibrate, has " +
                                       std::to_string(rows_->live_count()));
  }
  return with_collection(calibrate_locked(config_.calibration_sample), name_);
}

// Train on an evenly spaced sample of `sample_rows` live rows, re-encode every row under a new
// generation (a new rows file), then switch over atomically. Needs write_mu_ held: the rows are
// stable (only writers change them), and searches keep using the old codes meanwhile.
Status Collection::calibrate_locked(std::size_t sample_rows) {
  const std::size_t dim = config_.dim;
  const int threads = shared_->options.threads;
  const auto old = state_;
  if (old && !config_.keep_originals) {
    return Status::failed_precondition("a codes-only collection cannot be re-calibrated: its originals are not kept");
  }
  const std::vector<std::size_t> live_rows = rows_->live_rows();
  if (live_rows.size() < 2) return Status::failed_precondition("calibration needs at least 2 points");
  {
    std::lock_guard lock(recal_mu_);
    recal_.done = 0;
    recal_.total = live_rows.size();
  }
  // An evenly spaced sample of the live rows: all of them at the first calibration, and at a
  // re-calibration points from the whole history, the newest included.
  const std::size_t ns = std::min(sample_rows, live_rows.size());
  std::vector<std::size_t> sample_rows_list(ns);
  for (std::size_t i = 0; i < ns; ++i) sample_rows_list[i] = live_rows[i * live_rows.size() / ns];
  std::vector<float> sample(ns * dim);
  VECSTASH_RETURN_IF_ERROR(originals_->read_rows(sample_rows_list, sample.data()));
  auto next = std::make_shared<State>();
  next->generation = old ? old->generation + 1 : 1;
  MatrixView<const float> train_view(sample.data(), ns, dim);
  std::vector<float> projected;
  if (config_.pca.enabled()) {
    kernels::PcaOptions po;
    po.components = config_.pca.components;
    po.variance_fraction = config_.pca.variance_fraction;
    auto pca = kernels::Pca::fit(train_view, po, threads);
    if (!pca.is_ok()) return pca.status();
    next->has_pca = true;
    next->pca = std::move(*pca);
    projected.resize(ns * next->pca.dim_out());
    VECSTASH_RETURN_IF_ERROR(
        next->pca.transform(train_view, MatrixView<float>(projected.data(), ns, next->pca.dim_out()), true, threads));
    train_view = MatrixView<const float>(projected.data(), ns, next->pca.dim_out());
  }
  auto codec = kernels::Codec::train(config_.codec, train_view);
  if (!codec.is_ok()) return codec.status();
  next->codec = std::move(*codec);
  next->make_plan(config_);
  sample = {};
  projected = {};
  if (!config_.index.empty() && config_.index[0] == 'B' && next->codec.kind() != CodeKind::kB1) {
    return Status::invalid_argument("binary index '" + config_.index + "' needs b1 codes");
  }

  // Encode every row (dead rows get zero codes) into new arrays and a new rows file.
  const std::size_t rows = rows_->rows();
  const std::size_t cs = next->codec.code_size();
  const bool want_norms = next->plan.needs_norms;
  MappedArray<std::uint8_t> codes(rows * cs);
  MappedArray<float> norms(want_norms ? rows : 0);
  std::vector<float> chunk;
  for (std::size_t begin = 0; begin < live_rows.size(); begin += kEncodeChunk) {
    const std::size_t end = std::min(live_rows.size(), begin + kEncodeChunk);
    chunk.resize((end - begin) * dim);
    VECSTASH_RETURN_IF_ERROR(
        originals_->read_rows(std::span<const std::size_t>(live_rows.data() + begin, end - begin), chunk.data()));
    Encoded enc;
    VECSTASH_RETURN_IF_ERROR(
        encode_rows(*next, want_norms, MatrixView<const float>(chunk.data(), end - begin, dim), threads, &enc));
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t r = live_rows[i];
      std::memcpy(codes.data() + r * cs, enc.codes.data() + (i - begin) * cs, cs);
      if (want_norms) norms[r] = enc.norms[i - begin];
    }
    std::lock_guard lock(recal_mu_);
    recal_.done = end;
  }
  chunk = {};
  RowStore next_rows(cs, want_norms);
  auto next_file =
      storage::RowFile::create(rows_path(next->generation, epoch_), next_rows.record_size(), next_rows.file_tag());
  if (!next_file.is_ok()) return next_file.status();
  {
    // The records of every row: ids from the current rows, codes from the new arrays.
    constexpr std::size_t kBlock = 16384;
    for (std::size_t begin = 0; begin < rows; begin += kBlock) {
      const std::size_t n = std::min(kBlock, rows - begin);
      const auto recs = next_rows.records(rows_->ids().subspan(begin, n), codes.data() + begin * cs,
                                          want_norms ? norms.data() + begin : nullptr);
      VECSTASH_RETURN_IF_ERROR((*next_file)->write(begin, recs));
    }
    VECSTASH_RETURN_IF_ERROR((*next_file)->sync());
  }

  // Build the new index before switching, so searches keep using the old one meanwhile.
  std::unique_ptr<AnnIndex> index;
  if (!config_.index.empty()) {
    auto built = build_ann(*next, codes.data(), live_rows);
    if (!built.is_ok()) return built.status();
    index = std::move(*built);
  }

  // Switch: calibration and state in one synced batch.
  storage::WriteBatch flip;
  const auto cal = next->serialize();
  flip.put(Column::kMeta, keys::calibration(cid_, next->generation),
           std::string_view(reinterpret_cast<const char*>(cal.data()), cal.size()));
  flip.put(Column::kMeta, keys::state(cid_), state_value(next->generation, epoch_, rows));
  if (old) flip.erase(Column::kMeta, keys::calibration(cid_, old->generation));
  VECSTASH_RETURN_IF_ERROR(shared_->store->write(flip, Durability::kSync));
  const std::filesystem::path old_rows_path = rows_file_->path();
  std::filesystem::path dropped_originals;
  {
    std::unique_lock lock(mu_);
    state_ = next;
    ++version_;
    rows_->replace_codes(cs, want_norms, std::move(codes), std::move(norms));
    rows_file_ = std::move(*next_file);
    if (!config_.keep_originals) {
      dropped_originals = originals_->path();
      originals_.reset();
    } else if (!config_.originals_in_ram) {
      VECSTASH_RETURN_IF_ERROR(originals_->set_in_ram(false, 0));  // calibrated: originals live on disk
    }
    index_ = std::move(index);
    indexed_rows_ = index_ ? rows : 0;
  }
  std::error_code ec;
  std::filesystem::remove(old_rows_path, ec);
  if (!dropped_originals.empty()) std::filesystem::remove(dropped_originals, ec);
  if (index_) VECSTASH_RETURN_IF_ERROR(save_index_snapshot());
  // The stored vectors of a codes-only collection are now the decoded codes.
  if (!config_.keep_originals) VECSTASH_RETURN_IF_ERROR(refresh_derived_locked());
  log(LogLevel::kInfo, "collection '" + name_ + "': calibrated (generation " + std::to_string(next->generation) + ", " +
                           std::to_string(ns) + " sample rows, " + std::to_string(live_rows.size()) + " rows encoded)");
  return Status::ok();
}

Status Collection::start_recalibration() {
  {
    std::lock_guard lock(recal_mu_);
    if (recal_.state == RecalibrationState::kRunning) {
      return Status::failed_precondition("collection '" + name_ + "': a recalibration is already running");
    }
    if (!config_.keep_originals) {
      return Status::failed_precondition("collection '" + name_ +
                                         "' keeps codes only: re-calibration needs the float32 originals");
    }
    recal_ = RecalibrationProgress{RecalibrationState::kRunning, 0, 0, ""};
  }
  Status s = shared_->pool->submit([this] { run_recalibration(); });
  if (!s.is_ok()) {
    std::lock_guard lock(recal_mu_);
    recal_ = RecalibrationProgress{RecalibrationState::kFailed, 0, 0, s.message()};
    recal_cv_.notify_all();
  }
  return s;
}

void Collection::run_recalibration() {
  Status s;
  {
    std::lock_guard write_lock(write_mu_);
    if (dropped_) {
      s = check_not_dropped();
    } else if (rows_->live_count() < 2) {
      s = Status::failed_precondition("calibration needs at least 2 points");
    } else {
      s = calibrate_locked(std::max(config_.calibration_sample, std::size_t{2}));
    }
  }
  std::lock_guard lock(recal_mu_);
  recal_.state = s.is_ok() ? RecalibrationState::kDone : RecalibrationState::kFailed;
  recal_.message = s.is_ok() ? "" : s.to_string();
  recal_cv_.notify_all();
}

RecalibrationProgress Collection::recalibration_progress() const {
  std::lock_guard lock(recal_mu_);
  return recal_;
}

void Collection::wait_for_recalibration() const {
  std::unique_lock lock(recal_mu_);
  recal_cv_.wait(lock, [this] { return recal_.state != RecalibrationState::kRunning && !compaction_queued_; });
}

// ---- the approximate index ----------------------------------------------------------------------

Result<std::unique_ptr<AnnIndex>> Collection::build_ann(const State& state, const std::uint8_t* codes,
                                                        std::span<const std::size_t> rows) const {
  const bool binary = config_.index[0] == 'B';
  const std::size_t cs = state.codec.code_size();
  const std::size_t code_dim = state.code_dim();
  auto created =
      AnnIndex::create(config_.index, binary ? cs * 8 : code_dim, binary ? Metric::kHamming : state.plan.final_metric);
  if (!created.is_ok()) return with_collection(created.status(), name_);
  std::unique_ptr<AnnIndex> index = std::move(*created);
  if (config_.hnsw_ef_construction > 0) {
    VECSTASH_RETURN_IF_ERROR(with_collection(index->set_ef_construction(config_.hnsw_ef_construction), name_));
  }
  // Trained on an evenly spaced sample, then filled in blocks, so that decoded float copies stay small.
  constexpr std::size_t kTrainRows = 131072, kBlock = 65536;
  auto add_block = [&](std::span<const std::size_t> block, bool train) -> Status {
    const std::size_t n = block.size();
    std::vector<std::uint8_t> packed(n * cs);
    for (std::size_t i = 0; i < n; ++i) std::memcpy(packed.data() + i * cs, codes + block[i] * cs, cs);
    if (binary) {
      if (train) return index->train_binary(packed.data(), n);
      const std::vector<std::int64_t> labels(block.begin(), block.end());
      return index->add_binary(labels, packed.data(), n);
    }
    // Float indexes hold what the codes represent: the decoded (post-PCA) vectors.
    std::vector<float> decoded(n * code_dim);
    VECSTASH_RETURN_IF_ERROR(
        state.codec.decode(packed, MatrixView<float>(decoded.data(), n, code_dim), shared_->options.threads));
    const MatrixView<const float> view(decoded.data(), n, code_dim);
    if (train) return index->train(view);
    const std::vector<std::int64_t> labels(block.begin(), block.end());
    return index->add(labels, view);
  };
  if (!index->is_trained()) {
    const std::size_t ns = std::min(kTrainRows, rows.size());
    std::vector<std::size_t> sample(ns);
    for (std::size_t i = 0; i < ns; ++i) sample[i] = rows[i * rows.size() / ns];
    VECSTASH_RETURN_IF_ERROR(add_block(sample, /*train=*/true));
  }
  for (std::size_t begin = 0; begin < rows.size(); begin += kBlock) {
    VECSTASH_RETURN_IF_ERROR(add_block(rows.subspan(begin, std::min(kBlock, rows.size() - begin)), /*train=*/false));
  }
  return index;
}

// Offer rows [first_row, rows) that are live to the index. Caller holds mu_ exclusively (or is
// loading).
Status Collection::add_to_index_locked(std::size_t first_row) {
  if (!index_ || !state_) return Status::ok();
  const State& state = *state_;
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> packed;
  for (std::size_t r = first_row; r < rows_->rows(); ++r) {
    if (!rows_->is_live(r)) continue;
    labels.push_back(static_cast<std::int64_t>(r));
    const auto code = rows_->code(r);
    packed.insert(packed.end(), code.begin(), code.end());
  }
  indexed_rows_ = rows_->rows();
  if (labels.empty()) return Status::ok();
  if (index_->is_binary()) return index_->add_binary(labels, packed.data(), labels.size());
  std::vector<float> decoded(labels.size() * state.code_dim());
  VECSTASH_RETURN_IF_ERROR(state.codec.decode(
      packed, MatrixView<float>(decoded.data(), labels.size(), state.code_dim()), shared_->options.threads));
  return index_->add(labels, MatrixView<const float>(decoded.data(), labels.size(), state.code_dim()));
}

Status Collection::rebuild_index_locked() {
  if (config_.index.empty() || !state_) return Status::ok();
  const std::vector<std::size_t> live_rows = rows_->live_rows();
  auto built = build_ann(*state_, rows_->codes(), live_rows);
  if (!built.is_ok()) return built.status();
  index_ = std::move(*built);
  indexed_rows_ = rows_->rows();
  return save_index_snapshot();
}

Status Collection::save_index_snapshot() {
  // Callers hold write_mu_ (or are loading), so the index does not change underneath.
  if (!index_ || !state_) return Status::ok();
  BlobWriter w("VSIS", 2);
  w.u32(state_->generation);
  w.u64(epoch_);
  w.u64(indexed_rows_);
  w.bytes(index_->serialize());
  return storage::write_file_atomically(ann_path(), w.finish());
}

Status Collection::build_index() {
  if (config_.index.empty()) {
    return Status::failed_precondition("collection '" + name_ + "' has no approximate index configured");
  }
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (!state_) return Status::failed_precondition("collection '" + name_ + "' is not calibrated yet");
  const std::vector<std::size_t> live_rows = rows_->live_rows();
  auto built = build_ann(*state_, rows_->codes(), live_rows);
  if (!built.is_ok()) return built.status();
  {
    std::unique_lock lock(mu_);
    index_ = std::move(*built);
    indexed_rows_ = rows_->rows();
  }
  return with_collection(save_index_snapshot(), name_);
}

Status Collection::snapshot_index() {
  std::lock_guard write_lock(write_mu_);
  if (dropped_) return Status::ok();
  VECSTASH_RETURN_IF_ERROR(with_collection(save_index_snapshot(), name_));
  if (payloads_->indexes().empty() || payload_indexed_rows_ == rows_->rows()) return Status::ok();
  return with_collection(save_payload_index_snapshot(), name_);
}

// ---- compaction ------------------------------------------------------------------------------------

Result<std::size_t> Collection::compact() {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const std::size_t rows = rows_->rows();
  const std::size_t dead = rows - rows_->live_count();
  if (dead == 0) return std::size_t{0};
  const auto state = state_;
  const std::size_t dim = config_.dim;
  const std::uint64_t epoch = epoch_ + 1;
  const std::vector<std::size_t> live = rows_->live_rows();
  const std::size_t out = live.size();
  std::vector<std::uint32_t> old_to_new(rows, UINT32_MAX);
  for (std::size_t i = 0; i < out; ++i) old_to_new[live[i]] = static_cast<std::uint32_t>(i);

  // The live rows, renumbered, in new arrays and new files.
  auto next = std::make_unique<RowStore>(rows_->code_size(), rows_->has_norms());
  {
    constexpr std::size_t kBlock = 16384;
    std::vector<PointId> ids;
    std::vector<std::uint8_t> codes;
    std::vector<float> norms;
    const std::size_t cs = rows_->code_size();
    for (std::size_t begin = 0; begin < out; begin += kBlock) {
      const std::size_t n = std::min(kBlock, out - begin);
      ids.resize(n);
      codes.resize(n * cs);
      norms.resize(rows_->has_norms() ? n : 0);
      for (std::size_t i = 0; i < n; ++i) {
        const std::size_t r = live[begin + i];
        ids[i] = rows_->id(r);
        if (cs > 0) std::memcpy(codes.data() + i * cs, rows_->code(r).data(), cs);
        if (rows_->has_norms()) norms[i] = rows_->norms()[r];
      }
      next->append(ids, codes.data(), norms.empty() ? nullptr : norms.data());
    }
  }
  auto next_file =
      storage::RowFile::create(rows_path(state ? state->generation : 0, epoch), next->record_size(), next->file_tag());
  if (!next_file.is_ok()) return with_collection(next_file.status(), name_);
  VECSTASH_RETURN_IF_ERROR(with_collection(next->write_all(**next_file), name_));
  VECSTASH_RETURN_IF_ERROR(with_collection((*next_file)->sync(), name_));
  std::unique_ptr<Originals> next_originals;
  if (originals_) {
    auto created = Originals::create(originals_path(epoch), dim, false);
    if (!created.is_ok()) return with_collection(created.status(), name_);
    next_originals = std::move(*created);
    constexpr std::size_t kBlock = 4096;
    std::vector<float> block;
    for (std::size_t begin = 0; begin < out; begin += kBlock) {
      const std::size_t n = std::min(kBlock, out - begin);
      block.resize(n * dim);
      VECSTASH_RETURN_IF_ERROR(with_collection(
          originals_->read_rows(std::span<const std::size_t>(live.data() + begin, n), block.data()), name_));
      VECSTASH_RETURN_IF_ERROR(with_collection(next_originals->persist(begin, block.data(), n), name_));
    }
    VECSTASH_RETURN_IF_ERROR(with_collection(next_originals->sync(), name_));
    VECSTASH_RETURN_IF_ERROR(with_collection(next_originals->set_in_ram(originals_->in_ram(), out), name_));
  }
  std::unique_ptr<AnnIndex> index;
  if (state && !config_.index.empty()) {
    std::vector<std::size_t> all(out);
    std::iota(all.begin(), all.end(), std::size_t{0});
    auto built = build_ann(*state, next->codes(), all);
    if (!built.is_ok()) return built.status();
    index = std::move(*built);
  }

  // Switch: the new epoch and row count; the row marks of the old numbering go.
  storage::WriteBatch batch;
  batch.put(Column::kMeta, keys::state(cid_), state_value(state ? state->generation : 0, epoch, out));
  for (const char type : {keys::kDeadMark, keys::kPayloadMark}) {
    const std::string prefix = keys::mark_prefix(cid_, type, epoch_);
    batch.erase_range(Column::kRowMarks, prefix, storage::prefix_end(prefix));
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  const std::filesystem::path old_rows = rows_file_->path();
  const std::filesystem::path old_originals = originals_ ? originals_->path() : std::filesystem::path();
  {
    std::unique_lock lock(mu_);
    epoch_ = epoch;
    ++version_;
    rows_ = std::move(next);
    rows_file_ = std::move(*next_file);
    originals_ = std::move(next_originals);
    payloads_->renumber(old_to_new);
    const std::size_t rcs = anchors_ && anchors_->store_relative ? anchors_->codec.code_size() : 0;
    if (rcs > 0) {
      std::vector<std::uint8_t> rel_codes(out * rcs);
      std::vector<float> rel_norms(out);
      for (std::size_t i = 0; i < out; ++i) {
        std::memcpy(rel_codes.data() + i * rcs, rel_codes_.data() + live[i] * rcs, rcs);
        rel_norms[i] = rel_norms_[live[i]];
      }
      rel_codes_ = std::move(rel_codes);
      rel_norms_ = std::move(rel_norms);
    }
    for (auto& [model_name, terms] : hubs_) {
      std::vector<float> kept(out);
      for (std::size_t i = 0; i < out; ++i) kept[i] = terms[live[i]];
      terms = std::move(kept);
    }
    index_ = std::move(index);
    indexed_rows_ = index_ ? out : 0;
  }
  std::error_code ec;
  std::filesystem::remove(old_rows, ec);
  if (!old_originals.empty()) std::filesystem::remove(old_originals, ec);
  if (index_) VECSTASH_RETURN_IF_ERROR(with_collection(save_index_snapshot(), name_));
  VECSTASH_RETURN_IF_ERROR(with_collection(save_payload_index_snapshot(), name_));
  return dead;
}

}  // namespace vecstash::engine
