// Collection: opening. The state record names the calibration generation, the row epoch and the row
// watermark; the rows file is read once up to the watermark, the dead-row marks are applied, and the
// payload indexes and the approximate index come from their snapshots plus the rows written after
// them. Directories written by earlier releases (every point's code, original and id as store
// records) are migrated to this layout once, when first opened.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>
#include <unordered_set>

#include "anchor_state.h"
#include "collection_state.h"
#include "originals.h"
#include "payload_store.h"
#include "row_store.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/ann_index.h"
#include "vecstash/engine/collection.h"
#include "vecstash/storage/row_file.h"

namespace vecstash::engine {

namespace {

using storage::Column;
using storage::Durability;

constexpr std::uint16_t kStateVersion = 2;  // 1: generation and epoch (earlier releases' layout)

struct StoredState {
  std::uint16_t version = 0;
  std::uint32_t generation = 0;
  std::uint64_t epoch = 0;
  std::uint64_t rows = 0;
};

Result<std::optional<StoredState>> read_state(storage::Store& store, std::uint32_t cid) {
  auto value = store.get(Column::kMeta, keys::state(cid));
  if (!value.is_ok()) return value.status();
  if (!value->has_value()) return std::optional<StoredState>();
  const auto bytes = to_bytes(**value);
  BlobReader r(bytes, "collection state");
  StoredState s;
  VECSTASH_RETURN_IF_ERROR(r.open("VSST", kStateVersion, &s.version));
  VECSTASH_RETURN_IF_ERROR(r.u32(&s.generation));
  VECSTASH_RETURN_IF_ERROR(r.u64(&s.epoch));
  if (s.version >= 2) VECSTASH_RETURN_IF_ERROR(r.u64(&s.rows));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  return std::optional<StoredState>(s);
}

}  // namespace

Status Collection::load_data() {
  storage::Store& store = *shared_->store;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::unavailable("cannot create " + dir_.string() + ": " + ec.message());
  ::chmod(dir_.c_str(), 0700);

  auto stored = read_state(store, cid_);
  if (!stored.is_ok()) return stored.status();
  if (!stored->has_value()) {
    // Never written in this layout: a new collection, or one of an earlier release that was never
    // calibrated (its points are id records).
    bool legacy = false;
    VECSTASH_RETURN_IF_ERROR(store.scan(Column::kIds, keys::cid(cid_), [&](std::string_view, std::string_view) {
      legacy = true;
      return false;
    }));
    if (legacy) {
      VECSTASH_RETURN_IF_ERROR(migrate_legacy_layout(0, 0));
    } else {
      RowStore empty(0, false);
      auto file = storage::RowFile::create(rows_path(0, 0), empty.record_size(), empty.file_tag());
      if (!file.is_ok()) return file.status();
      auto originals = Originals::create(originals_path(0), config_.dim, true);
      if (!originals.is_ok()) return originals.status();
      VECSTASH_RETURN_IF_ERROR(storage::sync_directory(dir_));
      VECSTASH_RETURN_IF_ERROR(store.put(Column::kMeta, keys::state(cid_), state_value(0, 0, 0)));
    }
    stored = read_state(store, cid_);
    if (!stored.is_ok()) return stored.status();
  } else if ((*stored)->version < 2) {
    VECSTASH_RETURN_IF_ERROR(migrate_legacy_layout((*stored)->generation, (*stored)->epoch));
    stored = read_state(store, cid_);
    if (!stored.is_ok()) return stored.status();
  }
  const StoredState st = **stored;
  if (st.rows > RowIndex::kMaxRow) return Status::corruption("collection state names too many rows");
  epoch_ = st.epoch;
  if (st.generation > 0) {
    auto state = load_calibration(st.generation);
    if (!state.is_ok()) return state.status();
    state_ = std::move(*state);
  }
  VECSTASH_RETURN_IF_ERROR(load_rows(st.generation, st.rows));
  VECSTASH_RETURN_IF_ERROR(load_payloads());
  VECSTASH_RETURN_IF_ERROR(load_index());
  VECSTASH_RETURN_IF_ERROR(load_anchors());
  remove_stray_files();
  return Status::ok();
}

Result<std::shared_ptr<Collection::State>> Collection::load_calibration(std::uint32_t generation) const {
  auto blob = shared_->store->get(Column::kMeta, keys::calibration(cid_, generation));
  if (!blob.is_ok()) return blob.status();
  if (!blob->has_value())
    return Status::corruption("calibration generation " + std::to_string(generation) + " is missing");
  auto parsed = State::parse(to_bytes(**blob));
  if (!parsed.is_ok()) return parsed.status();
  auto state = std::make_shared<State>(std::move(*parsed));
  state->generation = generation;
  if (state->codec.dim() != (state->has_pca ? state->pca.dim_out() : config_.dim) ||
      (state->has_pca && state->pca.dim_in() != config_.dim)) {
    return Status::corruption("calibration dimensions do not match the collection's");
  }
  state->make_plan(config_);
  return state;
}

Status Collection::load_rows(std::uint32_t generation, std::uint64_t rows) {
  const State* state = state_.get();
  rows_ = std::make_unique<RowStore>(state ? state->codec.code_size() : 0, state && state->plan.needs_norms);
  auto file = storage::RowFile::open(rows_path(generation, epoch_), rows_->record_size(), rows_->file_tag());
  if (!file.is_ok()) return file.status();
  if ((*file)->rows_on_disk() < rows) {
    return Status::corruption((*file)->path().string() + " holds " + std::to_string((*file)->rows_on_disk()) +
                              " rows; the collection has " + std::to_string(rows));
  }
  VECSTASH_RETURN_IF_ERROR(rows_->load(**file, rows));
  const std::string prefix = keys::mark_prefix(cid_, keys::kDeadMark, epoch_);
  Status bad;
  VECSTASH_RETURN_IF_ERROR(shared_->store->scan(Column::kRowMarks, prefix, [&](std::string_view key, std::string_view) {
    const auto row = storage::read_u64_be(key, prefix.size());
    if (!row || key.size() != prefix.size() + 8) {
      bad = Status::corruption("malformed row mark");
      return false;
    }
    if (*row < rows) rows_->kill_loaded(*row);
    return true;
  }));
  VECSTASH_RETURN_IF_ERROR(bad);
  rows_->finish_load();
  rows_file_ = std::move(*file);
  if (stores_originals(state)) {
    // Before calibration the originals are what searches scan: they are held in RAM.
    auto originals = Originals::open(originals_path(epoch_), config_.dim, rows, !state || config_.originals_in_ram);
    if (!originals.is_ok()) return originals.status();
    originals_ = std::move(*originals);
  }
  return Status::ok();
}

Status Collection::load_payloads() {
  payloads_ = std::make_unique<PayloadStore>(shared_->store.get(), cid_, config_.payloads_in_ram);
  VECSTASH_RETURN_IF_ERROR(payloads_->load(*rows_));
  auto schema = shared_->store->get(Column::kMeta, keys::payload_schema(cid_));
  if (!schema.is_ok()) return schema.status();
  if (!schema->has_value()) return Status::ok();
  const auto list = nlohmann::json::parse(**schema, nullptr, /*allow_exceptions=*/false);
  if (list.is_discarded() || !list.is_array()) return Status::corruption("payload index definitions are damaged");
  std::map<std::string, FieldSchema> wanted;
  for (const auto& entry : list) {
    if (!entry.is_object() || !entry.contains("field") || !entry["field"].is_string() || !entry.contains("type") ||
        !entry["type"].is_string()) {
      return Status::corruption("payload index definitions are damaged");
    }
    const auto type = field_schema_from_name(entry["type"].get<std::string>());
    if (!type) return Status::corruption("payload index of unknown type '" + entry["type"].get<std::string>() + "'");
    wanted.emplace(entry["field"].get<std::string>(), *type);
  }
  if (wanted.empty()) return Status::ok();

  // The snapshot, when it is of this row numbering and these definitions.
  bool loaded = false;
  if (auto file = storage::read_whole_file(payload_index_path()); file.is_ok()) {
    const auto bytes = to_bytes(*file);
    BlobReader r(bytes, "payload index snapshot");
    std::uint16_t version = 0;
    std::uint64_t epoch = 0, covered = 0;
    std::vector<std::uint8_t> blob;
    Status s = r.open("VSPS", 1, &version);
    if (s.is_ok()) s = r.u64(&epoch);
    if (s.is_ok()) s = r.u64(&covered);
    if (s.is_ok()) s = r.bytes(&blob, bytes.size());
    if (s.is_ok()) s = r.finish();
    if (s.is_ok() && epoch == epoch_ && covered <= rows_->rows()) {
      auto indexes = PayloadIndexes::deserialize(blob);
      bool same = indexes.is_ok() && indexes->fields().size() == wanted.size();
      if (same) {
        for (const auto& [field, type] : wanted) {
          const FieldIndex* f = indexes->find(field);
          same = same && f != nullptr && f->schema() == type;
        }
      }
      if (same) {
        payloads_->set_indexes(std::move(*indexes));
        payload_indexed_rows_ = covered;
        loaded = true;
      } else if (!indexes.is_ok()) {
        log(LogLevel::kWarn, "collection '" + name_ + "': payload index snapshot unreadable (" +
                                 indexes.status().to_string() + "), rebuilding");
      }
    } else if (!s.is_ok()) {
      log(LogLevel::kWarn,
          "collection '" + name_ + "': payload index snapshot unreadable (" + s.to_string() + "), rebuilding");
    }
  }
  if (loaded) {
    // The rows written after the snapshot, and those whose payload changed since.
    std::vector<std::size_t> tail;
    for (std::size_t r = payload_indexed_rows_; r < rows_->rows(); ++r) {
      if (rows_->is_live(r)) tail.push_back(r);
    }
    const std::string prefix = keys::mark_prefix(cid_, keys::kPayloadMark, epoch_);
    VECSTASH_RETURN_IF_ERROR(
        shared_->store->scan(Column::kRowMarks, prefix, [&](std::string_view key, std::string_view) {
          const auto row = storage::read_u64_be(key, prefix.size());
          if (row && *row < payload_indexed_rows_ && rows_->is_live(*row)) tail.push_back(*row);
          return true;
        }));
    VECSTASH_RETURN_IF_ERROR(payloads_->reindex(tail, *rows_));
    if (tail.empty()) return Status::ok();
  } else {
    for (const auto& [field, type] : wanted) {
      auto built = payloads_->build_index(field, type, *rows_);
      if (!built.is_ok()) return built.status();
      payloads_->install_index(std::move(*built));
    }
  }
  return save_payload_index_snapshot();
}

Status Collection::load_index() {
  if (config_.index.empty() || !state_) return Status::ok();
  bool loaded = false;
  if (auto file = storage::read_whole_file(ann_path()); file.is_ok()) {
    const auto bytes = to_bytes(*file);
    BlobReader r(bytes, "index snapshot");
    std::uint16_t version = 0;
    std::uint32_t snap_gen = 0;
    std::uint64_t snap_epoch = 0, covered = 0;
    std::vector<std::uint8_t> ann;
    Status s = r.open("VSIS", 2, &version);
    if (s.is_ok()) s = r.u32(&snap_gen);
    if (s.is_ok()) s = r.u64(&snap_epoch);
    if (s.is_ok()) s = r.u64(&covered);
    if (s.is_ok()) s = r.bytes(&ann, bytes.size());
    if (s.is_ok()) s = r.finish();
    if (!s.is_ok()) {
      log(LogLevel::kWarn, "collection '" + name_ + "': index snapshot unreadable (" + s.to_string() + "), rebuilding");
    } else if (snap_gen == state_->generation && snap_epoch == epoch_ && covered <= rows_->rows()) {
      auto index = AnnIndex::deserialize(ann);
      if (index.is_ok()) {
        index_ = std::move(*index);
        indexed_rows_ = covered;
        loaded = true;
      } else {
        log(LogLevel::kWarn,
            "collection '" + name_ + "': index snapshot unreadable (" + index.status().to_string() + "), rebuilding");
      }
    }
  }
  if (loaded) return add_to_index_locked(indexed_rows_);
  return rebuild_index_locked();
}

void Collection::remove_stray_files() const {
  // Files of other generations or epochs are left-overs of an interrupted calibration or compaction.
  std::unordered_set<std::string> keep = {rows_file_->path().filename().string(),
                                          payload_index_path().filename().string(), ann_path().filename().string()};
  if (originals_) keep.insert(originals_->path().filename().string());
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir_, ec)) {
    if (!keep.count(entry.path().filename().string())) {
      std::error_code rm;
      std::filesystem::remove_all(entry.path(), rm);
    }
  }
}

// ---- the layout of earlier releases --------------------------------------------------------------

// Earlier releases kept one store record per point for its id -> row, its code and its original.
// They are rewritten as this layout's files (rows renumbered densely, in the same order, so results
// and ties are unchanged), then the old records go, in one synced batch with the new state.
Status Collection::migrate_legacy_layout(std::uint32_t generation, std::uint64_t epoch) {
  storage::Store& store = *shared_->store;
  std::shared_ptr<State> state;
  if (generation > 0) {
    auto loaded = load_calibration(generation);
    if (!loaded.is_ok()) return loaded.status();
    state = std::move(*loaded);
  }
  log(LogLevel::kInfo, "collection '" + name_ + "': migrating to the file layout");
  // Ids in row order.
  std::vector<std::pair<std::uint64_t, PointId>> entries;
  Status bad;
  VECSTASH_RETURN_IF_ERROR(store.scan(Column::kIds, keys::cid(cid_), [&](std::string_view key, std::string_view value) {
    auto id = PointId::from_key(key.substr(4));
    const auto row = storage::read_u64_be(value);
    if (!id.is_ok() || !row || value.size() != 8) {
      bad = Status::corruption("malformed id map entry");
      return false;
    }
    entries.emplace_back(*row, *id);
    return true;
  }));
  VECSTASH_RETURN_IF_ERROR(bad);
  std::sort(entries.begin(), entries.end());
  const std::size_t n = entries.size();
  std::vector<PointId> ids(n);
  std::unordered_map<PointId, std::uint32_t, PointIdHash> row_of;
  row_of.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids[i] = entries[i].second;
    if (!row_of.emplace(ids[i], static_cast<std::uint32_t>(i)).second) return Status::corruption("duplicate point id");
  }
  entries = {};
  auto find_row = [&](std::string_view id_key, std::size_t* row) -> Status {
    auto id = PointId::from_key(id_key);
    if (!id.is_ok()) return Status::corruption("malformed point key");
    const auto it = row_of.find(*id);
    if (it == row_of.end()) return Status::corruption("data for point " + id->to_string() + " without an id entry");
    *row = it->second;
    return Status::ok();
  };

  const std::uint64_t next_epoch = epoch + 1;
  const std::size_t cs = state ? state->codec.code_size() : 0;
  const bool norms = state && state->plan.needs_norms;
  std::vector<std::uint8_t> codes(n * cs, 0);
  if (state) {
    std::vector<bool> seen(n, false);
    VECSTASH_RETURN_IF_ERROR(store.scan(Column::kCodes, keys::code_prefix(cid_, generation),
                                        [&](std::string_view key, std::string_view value) {
                                          std::size_t row = 0;
                                          bad = find_row(key.substr(8), &row);
                                          if (!bad.is_ok()) return false;
                                          if (value.size() != cs) {
                                            bad = Status::corruption("code of " + std::to_string(value.size()) +
                                                                     " bytes, expected " + std::to_string(cs));
                                            return false;
                                          }
                                          std::memcpy(codes.data() + row * cs, value.data(), cs);
                                          seen[row] = true;
                                          return true;
                                        }));
    VECSTASH_RETURN_IF_ERROR(bad);
    if (std::find(seen.begin(), seen.end(), false) != seen.end()) return Status::corruption("some points have no code");
  }
  std::vector<float> norm_values(norms ? n : 0, 0.0f);
  if (norms) VECSTASH_RETURN_IF_ERROR(state->codec.squared_norms(codes, norm_values, shared_->options.threads));
  RowStore migrated(cs, norms);
  migrated.append(ids, codes.data(), norms ? norm_values.data() : nullptr);
  codes = {};
  auto file = storage::RowFile::create(rows_path(generation, next_epoch), migrated.record_size(), migrated.file_tag());
  if (!file.is_ok()) return file.status();
  VECSTASH_RETURN_IF_ERROR(migrated.write_all(**file));
  VECSTASH_RETURN_IF_ERROR((*file)->sync());

  if (stores_originals(state.get())) {
    auto originals = Originals::create(originals_path(next_epoch), config_.dim, false);
    if (!originals.is_ok()) return originals.status();
    std::size_t seen = 0;
    std::vector<float> v(config_.dim);
    VECSTASH_RETURN_IF_ERROR(
        store.scan(Column::kOriginals, keys::cid(cid_), [&](std::string_view key, std::string_view value) {
          std::size_t row = 0;
          bad = find_row(key.substr(4), &row);
          if (!bad.is_ok()) return false;
          if (value.size() != config_.dim * 4) {
            bad = Status::corruption("original vector of " + std::to_string(value.size()) + " bytes, expected " +
                                     std::to_string(config_.dim * 4));
            return false;
          }
          std::memcpy(v.data(), value.data(), value.size());  // little-endian, as the file
          bad = (*originals)->persist(row, v.data(), 1);
          ++seen;
          return bad.is_ok();
        }));
    VECSTASH_RETURN_IF_ERROR(bad);
    if (seen != n) return Status::corruption("some points have no stored vector");
    VECSTASH_RETURN_IF_ERROR((*originals)->sync());
  }
  VECSTASH_RETURN_IF_ERROR(storage::sync_directory(dir_));
  storage::WriteBatch batch;
  batch.put(Column::kMeta, keys::state(cid_), state_value(generation, next_epoch, n));
  const std::string begin = keys::cid(cid_), end = storage::prefix_end(begin);
  for (Column column : {Column::kIds, Column::kCodes, Column::kOriginals, Column::kIndex}) {
    batch.erase_range(column, begin, end);
  }
  VECSTASH_RETURN_IF_ERROR(store.write(batch, Durability::kSync));
  log(LogLevel::kInfo, "collection '" + name_ + "': migrated " + std::to_string(n) + " points");
  return Status::ok();
}

}  // namespace vecstash::engine
