#include "vecstash/engine/collection.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "anchor_state.h"
#include "engine_shared.h"
#include "vecstash/common/blob.h"
#include "vecstash/common/log.h"
#include "vecstash/engine/ann_index.h"
#include "vecstash/kernels/search.h"

namespace vecstash::engine {

namespace {

using storage::Column;
using storage::Durability;

constexpr std::uint16_t kStateVersion = 1;
constexpr std::uint16_t kCalibrationVersion = 1;
constexpr std::uint16_t kSnapshotVersion = 1;
constexpr std::size_t kEncodeChunk = 8192;

inline bool test_bit(const std::vector<std::uint64_t>& bits, std::size_t i) {
  return (bits[i >> 6] >> (i & 63)) & 1u;
}
inline void set_bit(std::vector<std::uint64_t>& bits, std::size_t i) { bits[i >> 6] |= std::uint64_t{1} << (i & 63); }
inline void clear_bit(std::vector<std::uint64_t>& bits, std::size_t i) {
  bits[i >> 6] &= ~(std::uint64_t{1} << (i & 63));
}

// Grow by at most 1/8 beyond what is needed (std::vector doubles): appends stay amortised O(1)
// while the slack, which counts as memory per vector, stays small.
template <typename T>
void grow(std::vector<T>& v, std::size_t n) {
  if (n > v.capacity()) v.reserve(std::max(n, v.capacity() + v.capacity() / 8));
  v.resize(n);
}

std::string float_bytes(std::span<const float> v) {
  std::string out(v.size() * 4, '\0');
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::uint32_t b = 0;
    std::memcpy(&b, &v[i], 4);
    for (int s = 0; s < 4; ++s) out[i * 4 + s] = static_cast<char>((b >> (8 * s)) & 0xFFu);
  }
  return out;
}

void read_floats(std::string_view bytes, float* out) {
  const std::size_t n = bytes.size() / 4;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint32_t b = 0;
    for (int s = 0; s < 4; ++s) b |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i * 4 + s])) << (8 * s);
    std::memcpy(out + i, &b, 4);
  }
}

std::string payload_bytes(const nlohmann::json& payload) {
  std::string out(1, static_cast<char>(keys::kPayloadFormat));
  out += payload.dump();
  return out;
}

std::optional<Durability> durability_of(const WriteOptions& o) {
  if (!o.sync) return std::nullopt;
  return *o.sync ? Durability::kSync : Durability::kRelaxed;
}

Metric final_metric(const CollectionConfig& c) { return c.metric == Metric::kL2 ? Metric::kL2 : Metric::kIp; }

bool scan_needs_norms(const CollectionConfig& c) {
  const Metric m = c.scan_metric();
  if (m == Metric::kCos) return true;
  return m == Metric::kL2 && c.codec.kind != CodeKind::kB1;
}

}  // namespace

// Calibration: immutable once built, shared by searches through a shared_ptr.
struct Collection::State {
  std::uint32_t generation = 0;
  std::uint64_t epoch = 0;
  bool has_pca = false;
  kernels::Pca pca;
  kernels::Codec codec;
  std::size_t code_dim() const { return codec.dim(); }

  std::vector<std::uint8_t> serialize() const {
    BlobWriter w("VSCA", kCalibrationVersion);
    w.u8(has_pca ? 1 : 0);
    if (has_pca) w.bytes(pca.serialize());
    w.bytes(codec.serialize());
    return w.finish();
  }
  static Result<State> parse(std::span<const std::uint8_t> blob) {
    BlobReader r(blob, "calibration");
    std::uint16_t version = 0;
    VECSTASH_RETURN_IF_ERROR(r.open("VSCA", kCalibrationVersion, &version));
    State s;
    std::uint8_t has_pca = 0;
    VECSTASH_RETURN_IF_ERROR(r.u8(&has_pca));
    std::vector<std::uint8_t> bytes;
    if (has_pca) {
      VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
      auto pca = kernels::Pca::deserialize(bytes);
      if (!pca.is_ok()) return pca.status();
      s.has_pca = true;
      s.pca = std::move(*pca);
    }
    VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
    auto codec = kernels::Codec::deserialize(bytes);
    if (!codec.is_ok()) return codec.status();
    s.codec = std::move(*codec);
    VECSTASH_RETURN_IF_ERROR(r.finish());
    return s;
  }
};

namespace {

std::string state_blob(std::uint32_t generation, std::uint64_t epoch) {
  BlobWriter w("VSST", kStateVersion);
  w.u32(generation);
  w.u64(epoch);
  const auto b = w.finish();
  return {b.begin(), b.end()};
}

}  // namespace

Collection::Collection(EngineShared* shared, std::uint32_t cid, std::string name, CollectionConfig config)
    : shared_(shared), cid_(cid), name_(std::move(name)), config_(std::move(config)),
      instance_(shared->next_instance.fetch_add(1)) {}

// Caller holds mu_ (shared): codes_ and version_ are stable.
bool Collection::scan_on_gpu(MatrixView<const float> queries, const kernels::SearchParams& params,
                             const std::uint64_t* allow, const float* row_bias, kernels::TopK* out) const {
  if (!shared_->gpu || !state_) return false;
  std::lock_guard lock(shared_->gpu_mu);
  Status s;
  if (shared_->gpu_owner != instance_ || shared_->gpu_version != version_) {
    s = shared_->gpu->upload_codes(state_->codec,
                                   kernels::CodeView{codes_.data(), rows_, norms_.empty() ? nullptr : norms_.data()});
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

Collection::~Collection() { wait_for_recalibration(); }

Result<std::shared_ptr<Collection>> Collection::create(EngineShared* shared, std::uint32_t cid, std::string name,
                                                       CollectionConfig config) {
  std::shared_ptr<Collection> c(new Collection(shared, cid, std::move(name), std::move(config)));
  return c;
}

Result<std::shared_ptr<Collection>> Collection::load(EngineShared* shared, std::uint32_t cid, std::string name,
                                                     CollectionConfig config) {
  std::shared_ptr<Collection> c(new Collection(shared, cid, std::move(name), std::move(config)));
  VECSTASH_RETURN_IF_ERROR(with_collection(c->load_data(), c->name_));
  return c;
}

// ---- loading -------------------------------------------------------------------------------------

Status Collection::load_data() {
  storage::Store& store = *shared_->store;
  std::uint32_t generation = 0;
  std::uint64_t epoch = 0;
  auto state_value = store.get(Column::kMeta, keys::state(cid_));
  if (!state_value.is_ok()) return state_value.status();
  if (state_value->has_value()) {
    const auto bytes = to_bytes(**state_value);
    BlobReader r(bytes, "collection state");
    std::uint16_t version = 0;
    VECSTASH_RETURN_IF_ERROR(r.open("VSST", kStateVersion, &version));
    VECSTASH_RETURN_IF_ERROR(r.u32(&generation));
    VECSTASH_RETURN_IF_ERROR(r.u64(&epoch));
    VECSTASH_RETURN_IF_ERROR(r.finish());
  }
  std::shared_ptr<State> state;
  if (generation > 0) {
    auto blob = store.get(Column::kMeta, keys::calibration(cid_, generation));
    if (!blob.is_ok()) return blob.status();
    if (!blob->has_value()) return Status::corruption("calibration generation " + std::to_string(generation) + " is missing");
    auto parsed = State::parse(to_bytes(**blob));
    if (!parsed.is_ok()) return parsed.status();
    state = std::make_shared<State>(std::move(*parsed));
    state->generation = generation;
    state->epoch = epoch;
    if (state->codec.dim() != (state->has_pca ? state->pca.dim_out() : config_.dim) ||
        (state->has_pca && state->pca.dim_in() != config_.dim)) {
      return Status::corruption("calibration dimensions do not match the collection's");
    }
  }
  epoch_ = epoch;

  // Ids and rows.
  const std::string prefix = keys::cid(cid_);
  std::size_t max_row = 0;
  bool any = false;
  std::vector<std::pair<PointId, std::uint64_t>> entries;
  Status bad = Status::ok();
  VECSTASH_RETURN_IF_ERROR(store.scan(Column::kIds, prefix, [&](std::string_view key, std::string_view value) {
    auto id = PointId::from_key(key.substr(4));
    const auto row = storage::read_u64_be(value);
    if (!id.is_ok() || !row || value.size() != 8 || *row > (std::uint64_t{1} << 40)) {
      bad = Status::corruption("malformed id map entry");
      return false;
    }
    entries.emplace_back(*id, *row);
    max_row = std::max<std::size_t>(max_row, *row);
    any = true;
    return true;
  }));
  VECSTASH_RETURN_IF_ERROR(bad);
  rows_ = any ? max_row + 1 : 0;
  row_ids_.assign(rows_, PointId{});
  live_.assign((rows_ + 63) / 64, 0);
  for (const auto& [id, row] : entries) {
    if (test_bit(live_, row)) return Status::corruption("two points share row " + std::to_string(row));
    set_bit(live_, row);
    row_ids_[row] = id;
  }
  id_to_row_.reserve(entries.size(), row_ids_);
  for (const auto& [id, row] : entries) id_to_row_.assign(id, static_cast<std::uint32_t>(row), row_ids_);
  live_count_ = entries.size();
  entries.clear();
  entries.shrink_to_fit();

  auto row_of = [&](std::string_view id_key, std::size_t* row) -> Status {
    auto id = PointId::from_key(id_key);
    if (!id.is_ok()) return Status::corruption("malformed point key");
    const auto found = id_to_row_.find(*id, row_ids_);
    if (!found) return Status::corruption("data for point " + id->to_string() + " without an id entry");
    *row = *found;
    return Status::ok();
  };

  // Codes of the current generation.
  std::vector<std::uint64_t> seen(live_.size(), 0);
  if (state) {
    const std::size_t cs = state->codec.code_size();
    codes_.assign(rows_ * cs, 0);
    VECSTASH_RETURN_IF_ERROR(store.scan(Column::kCodes, keys::code_prefix(cid_, generation),
                                        [&](std::string_view key, std::string_view value) {
                                          std::size_t row = 0;
                                          bad = row_of(key.substr(8), &row);
                                          if (!bad.is_ok()) return false;
                                          if (value.size() != cs) {
                                            bad = Status::corruption("code of " + std::to_string(value.size()) +
                                                                     " bytes, expected " + std::to_string(cs));
                                            return false;
                                          }
                                          std::memcpy(codes_.data() + row * cs, value.data(), cs);
                                          set_bit(seen, row);
                                          return true;
                                        }));
    VECSTASH_RETURN_IF_ERROR(bad);
    if (seen != live_) return Status::corruption("some points have no code");
    if (scan_needs_norms(config_)) {
      norms_.assign(rows_, 0.0f);
      VECSTASH_RETURN_IF_ERROR(state->codec.squared_norms(codes_, norms_, shared_->options.threads));
    }
  }
  // Originals: kept, or pending calibration.
  if (config_.keep_originals || !state) {
    originals_.assign(rows_ * config_.dim, 0.0f);
    std::fill(seen.begin(), seen.end(), 0);
    VECSTASH_RETURN_IF_ERROR(store.scan(Column::kOriginals, prefix, [&](std::string_view key, std::string_view value) {
      std::size_t row = 0;
      bad = row_of(key.substr(4), &row);
      if (!bad.is_ok()) return false;
      if (value.size() != config_.dim * 4) {
        bad = Status::corruption("original vector of " + std::to_string(value.size()) + " bytes, expected " +
                                 std::to_string(config_.dim * 4));
        return false;
      }
      read_floats(value, originals_.data() + row * config_.dim);
      set_bit(seen, row);
      return true;
    }));
    VECSTASH_RETURN_IF_ERROR(bad);
    if (seen != live_) return Status::corruption("some points have no stored vector");
  }
  // Payloads.
  VECSTASH_RETURN_IF_ERROR(store.scan(Column::kPayloads, prefix, [&](std::string_view key, std::string_view value) {
    std::size_t row = 0;
    bad = row_of(key.substr(4), &row);
    if (!bad.is_ok()) return false;
    if (value.empty() || static_cast<std::uint8_t>(value[0]) != keys::kPayloadFormat) {
      bad = Status::corruption("payload with unknown format version");
      return false;
    }
    auto parsed = nlohmann::json::parse(value.substr(1), nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      bad = Status::corruption("payload of point " + row_ids_[row].to_string() + " is not a JSON object");
      return false;
    }
    payloads_.emplace(row, std::move(parsed));
    return true;
  }));
  VECSTASH_RETURN_IF_ERROR(bad);
  state_ = state;

  // Codes of other generations are left-overs of an interrupted recalibration.
  if (state) {
    VECSTASH_RETURN_IF_ERROR(store.erase_range(Column::kCodes, keys::code_prefix(cid_, 0),
                                               keys::code_prefix(cid_, generation)));
    VECSTASH_RETURN_IF_ERROR(store.erase_range(Column::kCodes, keys::code_prefix(cid_, generation + 1),
                                               storage::prefix_end(keys::cid(cid_))));
  }

  // The approximate index: the snapshot when it matches this calibration and row numbering, plus
  // the rows added after it; otherwise a rebuild.
  if (!config_.index.empty() && state) {
    auto snap = store.get(Column::kIndex, keys::cid(cid_));
    if (!snap.is_ok()) return snap.status();
    bool loaded = false;
    if (snap->has_value()) {
      const auto bytes = to_bytes(**snap);
      BlobReader r(bytes, "index snapshot");
      std::uint16_t version = 0;
      std::uint32_t snap_gen = 0;
      std::uint64_t snap_epoch = 0, covered = 0;
      std::vector<std::uint8_t> ann;
      Status s = r.open("VSIS", kSnapshotVersion, &version);
      if (s.is_ok()) s = r.u32(&snap_gen);
      if (s.is_ok()) s = r.u64(&snap_epoch);
      if (s.is_ok()) s = r.u64(&covered);
      if (s.is_ok()) s = r.bytes(&ann, bytes.size());
      if (s.is_ok()) s = r.finish();
      if (!s.is_ok()) {
        log(LogLevel::kWarn, "collection '" + name_ + "': index snapshot unreadable (" + s.to_string() + "), rebuilding");
      } else if (snap_gen == generation && snap_epoch == epoch && covered <= rows_) {
        auto index = AnnIndex::deserialize(ann);
        if (index.is_ok()) {
          index_ = std::move(*index);
          indexed_rows_ = covered;
          loaded = true;
        } else {
          log(LogLevel::kWarn, "collection '" + name_ + "': index snapshot unreadable (" +
                                   index.status().to_string() + "), rebuilding");
        }
      }
    }
    if (loaded) {
      VECSTASH_RETURN_IF_ERROR(add_to_index_locked(indexed_rows_));
    } else {
      VECSTASH_RETURN_IF_ERROR(rebuild_index_locked());
    }
  }
  return load_anchors();
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

namespace {

// Project (when PCA is configured) and encode rows with a calibration.
struct Encoded {
  std::vector<std::uint8_t> codes;
  std::vector<float> norms;
};

Status encode_rows(const Collection::State& state, bool norms, MatrixView<const float> rows, int threads,
                   Encoded* out);

}  // namespace

Status Collection::upsert(std::span<const PointInput> input, const WriteOptions& options) {
  if (input.empty()) return Status::ok();
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  // The last occurrence of an id in a batch wins, as in Qdrant.
  std::vector<std::size_t> keep;
  keep.reserve(input.size());
  {
    std::unordered_map<PointId, std::size_t, PointIdHash> last;
    last.reserve(input.size());
    for (std::size_t i = 0; i < input.size(); ++i) last[input[i].id] = i;
    for (std::size_t i = 0; i < input.size(); ++i) {
      if (last[input[i].id] == i) keep.push_back(i);
    }
  }
  std::vector<PointInput> points;
  points.reserve(keep.size());
  for (std::size_t i : keep) points.push_back(input[i]);

  auto prepared = prepare_rows(points);
  if (!prepared.is_ok()) return with_collection(prepared.status(), name_);
  const std::vector<float>& rows = *prepared;
  const std::size_t n = points.size();
  const std::size_t dim = config_.dim;
  const auto state = state_;  // stable: only writers change it, and we hold write_mu_

  Encoded enc;
  if (state) {
    VECSTASH_RETURN_IF_ERROR(with_collection(
        encode_rows(*state, scan_needs_norms(config_), MatrixView<const float>(rows.data(), n, dim),
                    shared_->options.threads, &enc),
        name_));
  }
  const std::size_t cs = state ? state->codec.code_size() : 0;

  // Relative vectors and hubness terms of the new points, from what will be stored (as
  // Collection::stored_rows).
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
        VECSTASH_RETURN_IF_ERROR(state->pca.inverse_transform(
            MatrixView<const float>(decoded.data(), n, state->code_dim()), MatrixView<float>(back.data(), n, dim),
            shared_->options.threads));
        decoded = std::move(back);
      }
      src = decoded.data();
    }
    if (anchors->store_relative) {
      const std::size_t rcs = anchors->codec.code_size();
      rel_codes.resize(n * rcs);
      rel_norms.resize(n);
      VECSTASH_RETURN_IF_ERROR(with_collection(
          relative_of(*anchors, MatrixView<const float>(src, n, dim), rel_codes, rel_norms), name_));
    }
    for (const auto& [model_name, model] : anchors->models) {
      if (model->info.hubness_weight <= 0.0f) continue;
      hubs.emplace_back(model_name, std::vector<float>(n));
      VECSTASH_RETURN_IF_ERROR(
          with_collection(hubness_of(*model, MatrixView<const float>(src, n, dim), hubs.back().second), name_));
    }
  }

  storage::WriteBatch batch;
  const std::size_t first_row = rows_;
  if (first_row + n > RowIndex::kMaxRow) {
    return Status::resource_exhausted("collection '" + name_ + "' has no free rows left; compact() it");
  }
  for (std::size_t i = 0; i < n; ++i) {
    const PointId& id = points[i].id;
    const std::string pkey = keys::point(cid_, id);
    std::string row_value;
    storage::append_u64_be(row_value, first_row + i);
    batch.put(Column::kIds, pkey, row_value);
    if (state) {
      batch.put(Column::kCodes, keys::code(cid_, state->generation, id),
                std::string_view(reinterpret_cast<const char*>(enc.codes.data() + i * cs), cs));
    }
    if (config_.keep_originals || !state) {
      batch.put(Column::kOriginals, pkey, float_bytes({rows.data() + i * dim, dim}));
    }
    if (points[i].payload) {
      batch.put(Column::kPayloads, pkey, payload_bytes(*points[i].payload));
    } else {
      batch.erase(Column::kPayloads, pkey);
    }
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, durability_of(options)), name_));

  {
    std::unique_lock lock(mu_);
    const std::size_t new_rows = first_row + n;
    grow(row_ids_, new_rows);
    live_.resize((new_rows + 63) / 64, 0);
    if (state) {
      grow(codes_, new_rows * cs);
      std::memcpy(codes_.data() + first_row * cs, enc.codes.data(), n * cs);
      if (!enc.norms.empty()) {
        grow(norms_, new_rows);
        std::copy(enc.norms.begin(), enc.norms.end(), norms_.begin() + static_cast<std::ptrdiff_t>(first_row));
      }
    }
    if (config_.keep_originals || !state) {
      grow(originals_, new_rows * dim);
      std::copy(rows.begin(), rows.end(), originals_.begin() + static_cast<std::ptrdiff_t>(first_row * dim));
    }
    if (!rel_norms.empty()) {
      const std::size_t rcs = anchors->codec.code_size();
      grow(rel_codes_, new_rows * rcs);
      std::memcpy(rel_codes_.data() + first_row * rcs, rel_codes.data(), n * rcs);
      grow(rel_norms_, new_rows);
      std::copy(rel_norms.begin(), rel_norms.end(), rel_norms_.begin() + static_cast<std::ptrdiff_t>(first_row));
    }
    for (auto& [model_name, terms] : hubs) {
      std::vector<float>& all = hubs_[model_name];
      grow(all, new_rows);
      std::copy(terms.begin(), terms.end(), all.begin() + static_cast<std::ptrdiff_t>(first_row));
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t row = first_row + i;
      row_ids_[row] = points[i].id;
      if (const auto old = id_to_row_.assign(points[i].id, static_cast<std::uint32_t>(row), row_ids_)) {
        kill_row_locked(*old);
      }
      set_bit(live_, row);
      ++live_count_;
      if (points[i].payload) payloads_.emplace(row, *points[i].payload);
    }
    rows_ = new_rows;
    ++version_;
    if (index_) VECSTASH_RETURN_IF_ERROR(with_collection(add_to_index_locked(first_row), name_));
  }
  if (!state && live_count_ >= config_.calibration_sample) {
    VECSTASH_RETURN_IF_ERROR(with_collection(calibrate_locked(config_.calibration_sample), name_));
  }
  schedule_compaction_locked();
  return Status::ok();
}

void Collection::schedule_compaction_locked() {
  // As Qdrant's vacuum optimizer: at least 1,000 dead rows and at least 20 % of all rows.
  constexpr std::size_t kMinDeadRows = 1000;
  const std::size_t dead = rows_ - live_count_;
  if (dropped_ || dead < kMinDeadRows || dead * 5 < rows_) return;
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
      log(LogLevel::kDebug, "collection '" + name_ + "': compacted " + std::to_string(reclaimed.value()) + " dead rows");
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

std::vector<std::size_t> Collection::live_row_list() const {
  std::vector<std::size_t> rows;
  rows.reserve(live_count_);
  for (std::size_t r = 0; r < rows_; ++r) {
    if (test_bit(live_, r)) rows.push_back(r);
  }
  return rows;
}

Status Collection::check_not_dropped() const {
  if (dropped_) return Status::not_found("collection '" + name_ + "' was dropped");
  return Status::ok();
}

void Collection::kill_row_locked(std::size_t row) {
  if (!test_bit(live_, row)) return;
  clear_bit(live_, row);
  --live_count_;
  payloads_.erase(row);
}

Result<std::size_t> Collection::erase(std::span<const PointId> ids, const WriteOptions& options) {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const auto state = state_;
  storage::WriteBatch batch;
  std::vector<std::size_t> rows;
  for (const PointId& id : ids) {
    const auto found = id_to_row_.find(id, row_ids_);
    if (!found) continue;
    if (std::find(rows.begin(), rows.end(), *found) != rows.end()) continue;
    rows.push_back(*found);
    const std::string pkey = keys::point(cid_, id);
    batch.erase(Column::kIds, pkey);
    if (state) batch.erase(Column::kCodes, keys::code(cid_, state->generation, id));
    batch.erase(Column::kOriginals, pkey);
    batch.erase(Column::kPayloads, pkey);
  }
  if (rows.empty()) return std::size_t{0};
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, durability_of(options)), name_));
  {
    std::unique_lock lock(mu_);
    for (std::size_t row : rows) {
      id_to_row_.erase(row_ids_[row], row_ids_);
      kill_row_locked(row);
    }
  }
  schedule_compaction_locked();
  return rows.size();
}

Result<std::size_t> Collection::erase_matching(const Filter& filter, const WriteOptions& options) {
  std::vector<PointId> ids;
  {
    std::shared_lock lock(mu_);
    for (std::size_t r = 0; r < rows_; ++r) {
      if (!test_bit(live_, r)) continue;
      const auto p = payloads_.find(r);
      if (filter.matches(row_ids_[r], p == payloads_.end() ? nullptr : &p->second)) ids.push_back(row_ids_[r]);
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
  for (const PointId& id : ids) {
    const auto found = id_to_row_.find(id, row_ids_);
    if (!found) {
      return Status::not_found("collection '" + name_ + "': no point with id " + id.to_string());
    }
    nlohmann::json next = payload;
    if (!overwrite) {
      const auto p = payloads_.find(*found);
      next = p == payloads_.end() ? nlohmann::json::object() : p->second;
      for (const auto& [k, v] : payload.items()) next[k] = v;
    }
    batch.put(Column::kPayloads, keys::point(cid_, id), payload_bytes(next));
    updates.emplace_back(*found, std::move(next));
  }
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, durability_of(options)), name_));
  std::unique_lock lock(mu_);
  for (auto& [row, value] : updates) payloads_[row] = std::move(value);
  return Status::ok();
}

// ---- calibration ---------------------------------------------------------------------------------

namespace {

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

}  // namespace

Status Collection::calibrate() {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (state_) return Status::failed_precondition("collection '" + name_ + "' is already calibrated; use recalibration");
  if (live_count_ < 2) {
    return Status::failed_precondition("collection '" + name_ + "' needs at least 2 points to calibrate, has " +
                                       std::to_string(live_count_));
  }
  return with_collection(calibrate_locked(config_.calibration_sample), name_);
}

// Train on the first `sample_rows` live rows, re-encode every row under a new generation, then
// switch over atomically. Needs write_mu_ held; the arrays are stable (only writers change them).
Status Collection::calibrate_locked(std::size_t sample_rows) {
  const std::size_t dim = config_.dim;
  const int threads = shared_->options.threads;
  const auto old = state_;
  if (old && !config_.keep_originals) {
    return Status::failed_precondition("a codes-only collection cannot be re-calibrated: its originals are not kept");
  }
  const std::vector<std::size_t> live_rows = live_row_list();
  if (live_rows.size() < 2) return Status::failed_precondition("calibration needs at least 2 points");
  {
    std::lock_guard lock(recal_mu_);
    recal_.done = 0;
    recal_.total = live_rows.size();
  }
  // An evenly spaced sample of the live rows: all of them at the first calibration, and at a
  // re-calibration points from the whole history, the newest included.
  const std::size_t ns = std::min(sample_rows, live_rows.size());
  std::vector<float> sample(ns * dim);
  for (std::size_t i = 0; i < ns; ++i) {
    const std::size_t row = live_rows[i * live_rows.size() / ns];
    std::copy_n(originals_.data() + row * dim, dim, sample.data() + i * dim);
  }
  auto next = std::make_shared<State>();
  next->generation = old ? old->generation + 1 : 1;
  next->epoch = epoch_;
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
    VECSTASH_RETURN_IF_ERROR(next->pca.transform(
        train_view, MatrixView<float>(projected.data(), ns, next->pca.dim_out()), true, threads));
    train_view = MatrixView<const float>(projected.data(), ns, next->pca.dim_out());
  }
  auto codec = kernels::Codec::train(config_.codec, train_view);
  if (!codec.is_ok()) return codec.status();
  next->codec = std::move(*codec);
  if (!config_.index.empty() && config_.index[0] == 'B' && next->codec.kind() != CodeKind::kB1) {
    return Status::invalid_argument("binary index '" + config_.index + "' needs b1 codes");
  }

  // Encode every row (dead rows get zero codes) and write the codes under the new generation.
  const std::size_t cs = next->codec.code_size();
  const bool want_norms = scan_needs_norms(config_);
  std::vector<std::uint8_t> codes(rows_ * cs, 0);
  std::vector<float> norms(want_norms ? rows_ : 0, 0.0f);
  for (std::size_t begin = 0; begin < live_rows.size(); begin += kEncodeChunk) {
    const std::size_t end = std::min(live_rows.size(), begin + kEncodeChunk);
    std::vector<float> chunk((end - begin) * dim);
    for (std::size_t i = begin; i < end; ++i) {
      std::copy_n(originals_.data() + live_rows[i] * dim, dim, chunk.data() + (i - begin) * dim);
    }
    Encoded enc;
    VECSTASH_RETURN_IF_ERROR(
        encode_rows(*next, want_norms, MatrixView<const float>(chunk.data(), end - begin, dim), threads, &enc));
    storage::WriteBatch batch;
    for (std::size_t i = begin; i < end; ++i) {
      const std::size_t r = live_rows[i];
      std::memcpy(codes.data() + r * cs, enc.codes.data() + (i - begin) * cs, cs);
      if (want_norms) norms[r] = enc.norms[i - begin];
      batch.put(Column::kCodes, keys::code(cid_, next->generation, row_ids_[r]),
                std::string_view(reinterpret_cast<const char*>(codes.data() + r * cs), cs));
    }
    // Not yet visible (the state still names the old generation): no need to sync each chunk.
    VECSTASH_RETURN_IF_ERROR(shared_->store->write(batch, Durability::kRelaxed));
    std::lock_guard lock(recal_mu_);
    recal_.done = end;
  }

  // Build the new index before switching, so searches keep using the old one meanwhile.
  std::unique_ptr<AnnIndex> index;
  if (!config_.index.empty()) {
    auto built = build_ann(*next, codes, live_rows);
    if (!built.is_ok()) return built.status();
    index = std::move(*built);
  }

  // Switch: calibration, state and (for codes-only collections) dropping originals, in one batch.
  storage::WriteBatch flip;
  const auto cal = next->serialize();
  flip.put(Column::kMeta, keys::calibration(cid_, next->generation),
           std::string_view(reinterpret_cast<const char*>(cal.data()), cal.size()));
  flip.put(Column::kMeta, keys::state(cid_), state_blob(next->generation, epoch_));
  if (old) flip.erase(Column::kMeta, keys::calibration(cid_, old->generation));
  if (!config_.keep_originals) {
    for (std::size_t r : live_rows) flip.erase(Column::kOriginals, keys::point(cid_, row_ids_[r]));
  }
  flip.erase(Column::kIndex, keys::cid(cid_));
  VECSTASH_RETURN_IF_ERROR(shared_->store->write(flip, Durability::kSync));
  {
    std::unique_lock lock(mu_);
    state_ = next;
    ++version_;
    codes_ = std::move(codes);
    norms_ = std::move(norms);
    if (!config_.keep_originals) {
      originals_.clear();
      originals_.shrink_to_fit();
    }
    index_ = std::move(index);
    indexed_rows_ = index_ ? rows_ : 0;
  }
  if (old) {
    VECSTASH_RETURN_IF_ERROR(shared_->store->erase_range(Column::kCodes, keys::code_prefix(cid_, old->generation),
                                                         keys::code_prefix(cid_, old->generation + 1)));
  }
  if (index_) VECSTASH_RETURN_IF_ERROR(save_index_snapshot());
  // The stored vectors of a codes-only collection are now the decoded codes.
  if (!config_.keep_originals) VECSTASH_RETURN_IF_ERROR(refresh_derived_locked());
  log(LogLevel::kInfo, "collection '" + name_ + "': calibrated (generation " + std::to_string(next->generation) +
                           ", " + std::to_string(ns) + " sample rows, " + std::to_string(live_rows.size()) +
                           " rows encoded)");
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
    recal_ = RecalibrationProgress{RecalibrationState::kRunning, 0, live_count_, ""};
  }
  // Hold a reference so the collection outlives the job even if it is dropped meanwhile.
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
    } else if (live_count_ < 2) {
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

Result<std::unique_ptr<AnnIndex>> Collection::build_ann(const State& state, std::span<const std::uint8_t> codes,
                                                        std::span<const std::size_t> rows) const {
  const bool binary = config_.index[0] == 'B';
  const std::size_t cs = state.codec.code_size();
  const std::size_t code_dim = state.code_dim();
  auto created = AnnIndex::create(config_.index, binary ? cs * 8 : code_dim,
                                  binary ? Metric::kHamming : final_metric(config_));
  if (!created.is_ok()) return with_collection(created.status(), name_);
  std::unique_ptr<AnnIndex> index = std::move(*created);
  if (config_.hnsw_ef_construction > 0) {
    VECSTASH_RETURN_IF_ERROR(with_collection(index->set_ef_construction(config_.hnsw_ef_construction), name_));
  }
  std::vector<std::int64_t> labels(rows.begin(), rows.end());
  std::vector<std::uint8_t> packed(rows.size() * cs);
  for (std::size_t i = 0; i < rows.size(); ++i) std::memcpy(packed.data() + i * cs, codes.data() + rows[i] * cs, cs);
  if (binary) {
    if (!index->is_trained()) VECSTASH_RETURN_IF_ERROR(index->train_binary(packed.data(), rows.size()));
    VECSTASH_RETURN_IF_ERROR(index->add_binary(labels, packed.data(), rows.size()));
    return index;
  }
  // Float indexes hold what the codes represent: the decoded (post-PCA) vectors.
  std::vector<float> decoded(rows.size() * code_dim);
  VECSTASH_RETURN_IF_ERROR(state.codec.decode(packed, MatrixView<float>(decoded.data(), rows.size(), code_dim),
                                              shared_->options.threads));
  const MatrixView<const float> view(decoded.data(), rows.size(), code_dim);
  if (!index->is_trained()) VECSTASH_RETURN_IF_ERROR(index->train(view));
  VECSTASH_RETURN_IF_ERROR(index->add(labels, view));
  return index;
}

// Offer rows [first_row, rows_) that are live to the index. Caller holds mu_ exclusively (or is
// loading).
Status Collection::add_to_index_locked(std::size_t first_row) {
  if (!index_ || !state_) return Status::ok();
  const State& state = *state_;
  const std::size_t cs = state.codec.code_size();
  std::vector<std::int64_t> labels;
  std::vector<std::uint8_t> packed;
  for (std::size_t r = first_row; r < rows_; ++r) {
    if (!test_bit(live_, r)) continue;
    labels.push_back(static_cast<std::int64_t>(r));
    packed.insert(packed.end(), codes_.begin() + static_cast<std::ptrdiff_t>(r * cs),
                  codes_.begin() + static_cast<std::ptrdiff_t>((r + 1) * cs));
  }
  indexed_rows_ = rows_;
  if (labels.empty()) return Status::ok();
  if (index_->is_binary()) return index_->add_binary(labels, packed.data(), labels.size());
  std::vector<float> decoded(labels.size() * state.code_dim());
  VECSTASH_RETURN_IF_ERROR(state.codec.decode(
      packed, MatrixView<float>(decoded.data(), labels.size(), state.code_dim()), shared_->options.threads));
  return index_->add(labels, MatrixView<const float>(decoded.data(), labels.size(), state.code_dim()));
}

Status Collection::rebuild_index_locked() {
  if (config_.index.empty() || !state_) return Status::ok();
  const std::vector<std::size_t> live_rows = live_row_list();
  auto built = build_ann(*state_, codes_, live_rows);
  if (!built.is_ok()) return built.status();
  index_ = std::move(*built);
  indexed_rows_ = rows_;
  return save_index_snapshot();
}

Status Collection::save_index_snapshot() {
  // Callers hold write_mu_ (or are loading), so the index does not change underneath.
  if (!index_ || !state_) return Status::ok();
  BlobWriter w("VSIS", kSnapshotVersion);
  w.u32(state_->generation);
  w.u64(epoch_);
  w.u64(indexed_rows_);
  w.bytes(index_->serialize());
  const auto blob = w.finish();
  return shared_->store->put(Column::kIndex, keys::cid(cid_),
                             std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()));
}

Status Collection::build_index() {
  if (config_.index.empty()) {
    return Status::failed_precondition("collection '" + name_ + "' has no approximate index configured");
  }
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  if (!state_) return Status::failed_precondition("collection '" + name_ + "' is not calibrated yet");
  const std::vector<std::size_t> live_rows = live_row_list();
  auto built = build_ann(*state_, codes_, live_rows);
  if (!built.is_ok()) return built.status();
  {
    std::unique_lock lock(mu_);
    index_ = std::move(*built);
    indexed_rows_ = rows_;
  }
  return with_collection(save_index_snapshot(), name_);
}

Status Collection::snapshot_index() {
  std::lock_guard write_lock(write_mu_);
  if (dropped_) return Status::ok();
  return with_collection(save_index_snapshot(), name_);
}

Result<std::size_t> Collection::compact() {
  std::lock_guard write_lock(write_mu_);
  VECSTASH_RETURN_IF_ERROR(check_not_dropped());
  const std::size_t dead = rows_ - live_count_;
  if (dead == 0) return std::size_t{0};
  const auto state = state_;
  const std::size_t cs = state ? state->codec.code_size() : 0;
  const std::size_t dim = config_.dim;
  const bool have_originals = !originals_.empty();
  std::vector<PointId> ids;
  std::vector<std::uint8_t> codes;
  std::vector<float> norms, originals;
  std::vector<std::uint8_t> rel_codes;
  std::vector<float> rel_norms;
  const std::size_t rcs = anchors_ && anchors_->store_relative ? anchors_->codec.code_size() : 0;
  std::unordered_map<std::string, std::vector<float>> hubs;
  for (const auto& [model_name, terms] : hubs_) hubs[model_name].reserve(live_count_);
  std::unordered_map<std::uint64_t, nlohmann::json> payloads;
  // Exact sizes, so memory_usage() (by capacity) drops after a compaction.
  ids.reserve(live_count_);
  codes.reserve(live_count_ * cs);
  if (!norms_.empty()) norms.reserve(live_count_);
  if (have_originals) originals.reserve(live_count_ * dim);
  storage::WriteBatch batch;
  std::size_t out = 0;
  for (std::size_t r = 0; r < rows_; ++r) {
    if (!test_bit(live_, r)) continue;
    ids.push_back(row_ids_[r]);
    if (state) codes.insert(codes.end(), codes_.begin() + static_cast<std::ptrdiff_t>(r * cs),
                            codes_.begin() + static_cast<std::ptrdiff_t>((r + 1) * cs));
    if (!norms_.empty()) norms.push_back(norms_[r]);
    if (rcs > 0) {
      rel_codes.insert(rel_codes.end(), rel_codes_.begin() + static_cast<std::ptrdiff_t>(r * rcs),
                       rel_codes_.begin() + static_cast<std::ptrdiff_t>((r + 1) * rcs));
      rel_norms.push_back(rel_norms_[r]);
    }
    for (const auto& [model_name, terms] : hubs_) hubs[model_name].push_back(terms[r]);
    if (have_originals) originals.insert(originals.end(), originals_.begin() + static_cast<std::ptrdiff_t>(r * dim),
                                         originals_.begin() + static_cast<std::ptrdiff_t>((r + 1) * dim));
    if (auto p = payloads_.find(r); p != payloads_.end()) payloads.emplace(out, p->second);
    if (out != r) {
      std::string row_value;
      storage::append_u64_be(row_value, out);
      batch.put(Column::kIds, keys::point(cid_, row_ids_[r]), row_value);
    }
    ++out;
  }
  const std::uint64_t epoch = epoch_ + 1;
  batch.put(Column::kMeta, keys::state(cid_), state_blob(state ? state->generation : 0, epoch));
  batch.erase(Column::kIndex, keys::cid(cid_));
  VECSTASH_RETURN_IF_ERROR(with_collection(shared_->store->write(batch, Durability::kSync), name_));
  std::unique_ptr<AnnIndex> index;
  if (state && !config_.index.empty()) {
    std::vector<std::size_t> all(out);
    std::iota(all.begin(), all.end(), std::size_t{0});
    auto built = build_ann(*state, codes, all);
    if (!built.is_ok()) return built.status();
    index = std::move(*built);
  }
  {
    std::unique_lock lock(mu_);
    epoch_ = epoch;
    ++version_;
    rows_ = out;
    row_ids_ = std::move(ids);
    live_.assign((out + 63) / 64, 0);
    for (std::size_t r = 0; r < out; ++r) set_bit(live_, r);
    id_to_row_.clear();
    id_to_row_.reserve(out, row_ids_);
    for (std::size_t r = 0; r < out; ++r) id_to_row_.assign(row_ids_[r], static_cast<std::uint32_t>(r), row_ids_);
    codes_ = std::move(codes);
    norms_ = std::move(norms);
    if (have_originals) originals_ = std::move(originals);
    payloads_ = std::move(payloads);
    if (rcs > 0) {
      rel_codes_ = std::move(rel_codes);
      rel_norms_ = std::move(rel_norms);
    }
    hubs_ = std::move(hubs);
    index_ = std::move(index);
    indexed_rows_ = index_ ? out : 0;
  }
  if (index_) VECSTASH_RETURN_IF_ERROR(with_collection(save_index_snapshot(), name_));
  return dead;
}

// ---- reads ---------------------------------------------------------------------------------------

std::vector<std::uint64_t> Collection::allow_bits(const Filter* filter) const {
  if (!filter || filter->matches_all()) return live_;
  std::vector<std::uint64_t> bits(live_.size(), 0);
  for (std::size_t r = 0; r < rows_; ++r) {
    if (!test_bit(live_, r)) continue;
    const auto p = payloads_.find(r);
    if (filter->matches(row_ids_[r], p == payloads_.end() ? nullptr : &p->second)) set_bit(bits, r);
  }
  return bits;
}

std::optional<nlohmann::json> Collection::payload_of(std::size_t row) const {
  const auto p = payloads_.find(row);
  if (p == payloads_.end()) return nlohmann::json::object();
  return p->second;
}

std::vector<float> Collection::reconstruct(std::size_t row) const {
  const std::size_t dim = config_.dim;
  if (!originals_.empty()) {
    return {originals_.begin() + static_cast<std::ptrdiff_t>(row * dim),
            originals_.begin() + static_cast<std::ptrdiff_t>((row + 1) * dim)};
  }
  // Codes only: decode, then map back through PCA.
  const State& state = *state_;
  const std::size_t cs = state.codec.code_size();
  std::vector<float> decoded(state.code_dim());
  if (!state.codec.decode({codes_.data() + row * cs, cs}, MatrixView<float>(decoded.data(), 1, decoded.size()), 1)
           .is_ok()) {
    return std::vector<float>(dim, 0.0f);
  }
  if (!state.has_pca) return decoded;
  std::vector<float> out(dim);
  if (!state.pca.inverse_transform(MatrixView<const float>(decoded.data(), 1, decoded.size()),
                                   MatrixView<float>(out.data(), 1, dim), 1)
           .is_ok()) {
    return std::vector<float>(dim, 0.0f);
  }
  return out;
}

Result<std::vector<std::vector<ScoredPoint>>> Collection::search(const SearchRequest& req) const {
  if (!req.space.name.empty() && req.space.name != config_.vector_name.value_or("")) return search_space(req);
  if (req.space.method || req.space.relative_input || req.space.hubness_weight) {
    return Status::invalid_argument(
        "a cross-model method, a hubness weight or a relative query needs 'using' a model or the relative vector");
  }
  return search_impl(req, nullptr);
}

namespace {

// Re-rank each query's results by score (best first; ties: smaller row) and keep the best k.
void sort_and_trim(kernels::TopK* t, std::size_t k, bool higher_better) {
  std::vector<std::pair<float, std::int64_t>> row;
  kernels::TopK out;
  out.nq = t->nq;
  out.k = std::min(k, t->k);
  out.ids.assign(out.nq * out.k, -1);
  out.scores.assign(out.nq * out.k, higher_better ? -std::numeric_limits<float>::infinity()
                                                  : std::numeric_limits<float>::infinity());
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

// Candidates taken from an approximate index per result when a hubness term re-ranks them.
constexpr std::size_t kHubnessIndexOversampling = 8;

}  // namespace

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
  const Metric fmetric = final_metric(config_);
  // Hubness correction: each row's final score is lowered by weight x its term (anchors.h). The exact
  // scans take it as a per-row bias over all rows; an index's candidates get it one by one.
  const std::vector<float>* terms = nullptr;
  if (hub) {
    const auto it = hubs_.find(hub->model);
    if (it == hubs_.end() || it->second.size() < rows_) {
      return Status::unavailable("collection '" + name_ + "': model '" + hub->model +
                                 "' changed during the search; retry");
    }
    terms = &it->second;
  }
  // -weight x term per row, times `scale` (the natural form of the scan metric).
  auto full_bias = [&](float scale) {
    std::vector<float> b(rows_);
    for (std::size_t r = 0; r < rows_; ++r) b[r] = -scale * hub->weight * (*terms)[r];
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
  const std::vector<std::uint64_t> allow = allow_bits(req.filter);
  // No filter and no dead rows: no eligibility checks at all in the scan or the index walk.
  const bool everything = (!req.filter || req.filter->matches_all()) && live_count_ == rows_;
  const std::uint64_t* allow_ptr = everything ? nullptr : allow.data();

  kernels::TopK found;
  if (!state_) {
    // Not calibrated: exact float32 search over the pending rows.
    if (hub) bias_final = full_bias(1.0f);
    const float* final_bias = hub ? bias_final.data() : nullptr;
    kernels::SearchParams sp{fmetric, want, threads};
    VECSTASH_RETURN_IF_ERROR(kernels::search_f32(qv, MatrixView<const float>(originals_.data(), rows_, dim), sp, &found,
                                                 allow_ptr, final_bias));
  } else {
    const State& state = *state_;
    const Metric smetric = config_.scan_metric();
    const bool rescore = !originals_.empty() && req.rescore.value_or(config_.search.rescore);
    const bool use_index = index_ && !req.exact;
    std::size_t r = want;
    if (rescore) r = std::min<std::size_t>(kernels::kMaxK, static_cast<std::size_t>(std::ceil(want * oversampling)));
    // The index ranks without the hubness term: take more of its candidates and re-rank them.
    if (hub && use_index) {
      if (index_->is_binary() && !rescore) {
        return Status::invalid_argument("collection '" + name_ +
                                        "': the hubness correction over a binary index needs rescoring "
                                        "(kept originals); search with exact or a weight of 0");
      }
      // (oversampling x the results even without rescoring: the terms move points up from deep ranks)
      r = std::min<std::size_t>(kernels::kMaxK, static_cast<std::size_t>(std::ceil(want * oversampling)) *
                                                    kHubnessIndexOversampling);
    }
    if (hub && !use_index) {
      // The exact scan adds the term in the scan metric's natural form: a similarity s' = s - w r, or
      // for the b1 rows of a cosine collection (ranked by squared L2, cos = 1 - d^2 / 2) d^2 + 2 w r;
      // rescoring adds it to the float32 similarity.
      bias_final = full_bias(1.0f);
      if (smetric == Metric::kL2) bias_scan = full_bias(-2.0f);
    }
    // Queries in the space of the codes.
    std::vector<float> projected;
    MatrixView<const float> qs = qv;
    if (state.has_pca) {
      projected.resize(nq * state.pca.dim_out());
      VECSTASH_RETURN_IF_ERROR(state.pca.transform_queries(
          qv, MatrixView<float>(projected.data(), nq, state.pca.dim_out()), smetric, threads));
      qs = MatrixView<const float>(projected.data(), nq, state.pca.dim_out());
    }
    kernels::TopK candidates;
    if (use_index) {
      AnnSearchParams ap;
      ap.ef = req.hnsw_ef.value_or(config_.search.hnsw_ef);
      ap.nprobe = req.ivf_nprobe.value_or(config_.search.ivf_nprobe);
      const std::function<bool(std::int64_t)> pred = [&allow, this](std::int64_t label) {
        return label >= 0 && static_cast<std::size_t>(label) < rows_ && test_bit(allow, static_cast<std::size_t>(label));
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
    } else {
      kernels::CodeView view{codes_.data(), rows_, norms_.empty() ? nullptr : norms_.data(), allow_ptr,
                             !hub ? nullptr : smetric == Metric::kL2 ? bias_scan.data() : bias_final.data()};
      kernels::SearchParams sp{smetric, r, threads};
      if (scan_on_gpu(qs, sp, allow_ptr, view.row_bias, &candidates)) {
        // done on the device
      } else if (!hub && rescore && state.codec.kind() == CodeKind::kI8) {
        // Candidates only: int8 codes scored against an integer-quantised query (integer SIMD), whose
        // small score error the float32 rescoring removes. (It takes no per-row term: with a hubness
        // term, search_cpu below.)
        VECSTASH_RETURN_IF_ERROR(kernels::search_i8_candidates_cpu(state.codec, qs, view, sp, &candidates));
      } else {
        VECSTASH_RETURN_IF_ERROR(kernels::search_cpu(state.codec, qs, view, sp, &candidates));
      }
    }
    if (rescore) {
      // With an index and a hubness term: every candidate's float32 score, then the terms.
      const bool later = hub && use_index;
      kernels::SearchParams sp{fmetric, later ? candidates.k : want, threads};
      VECSTASH_RETURN_IF_ERROR(kernels::rescore_f32(qv, MatrixView<const float>(originals_.data(), rows_, dim),
                                                    candidates, sp, &found,
                                                    hub && !use_index ? bias_final.data() : nullptr));
      if (later) add_terms(&found);
    } else {
      found = std::move(candidates);
      // Put code scores on the scale of the metric. Inner products over PCA-centred rows miss the
      // constant q . mean; b1 rows of a cosine collection were ranked by L2 to their reconstruction
      // (unit query and row: cos = 1 - d^2 / 2).
      for (std::size_t i = 0; i < nq; ++i) {
        float shift = 0.0f;
        if (state.has_pca && smetric == Metric::kIp) {
          const auto& mean = state.pca.params().mean;
          double dot = 0.0;
          for (std::size_t j = 0; j < dim; ++j) dot += static_cast<double>(q[i * dim + j]) * mean[j];
          shift = static_cast<float>(dot);
        }
        for (std::size_t j = 0; j < found.k; ++j) {
          float& s = found.scores[i * found.k + j];
          if (found.ids[i * found.k + j] < 0) continue;
          if (smetric == Metric::kIp) s += shift;
          if (config_.metric == Metric::kCos && smetric == Metric::kL2) s = 1.0f - 0.5f * s;
        }
      }
      // Index candidates carry no hubness term yet (the exact scan added it already).
      if (hub && use_index) add_terms(&found);
    }
  }

  return collect_results(found, req, config_.metric == Metric::kL2);
}

std::vector<std::vector<ScoredPoint>> Collection::collect_results(const kernels::TopK& found,
                                                                  const SearchRequest& req, bool distance) const {
  std::vector<std::vector<ScoredPoint>> results(found.nq);
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
      p.id = row_ids_[static_cast<std::size_t>(row)];
      p.score = score;
      if (req.with_payload) p.payload = payload_of(static_cast<std::size_t>(row));
      if (req.with_vector) p.vector = reconstruct(static_cast<std::size_t>(row));
      out.push_back(std::move(p));
    }
  }
  return results;
}

Result<std::vector<Record>> Collection::retrieve(std::span<const PointId> ids, bool with_payload,
                                                 bool with_vector) const {
  std::shared_lock lock(mu_);
  std::vector<Record> out;
  for (const PointId& id : ids) {
    const auto found = id_to_row_.find(id, row_ids_);
    if (!found) continue;
    Record rec;
    rec.id = id;
    if (with_payload) rec.payload = payload_of(*found);
    if (with_vector) rec.vector = reconstruct(*found);
    out.push_back(std::move(rec));
  }
  return out;
}

Result<ScrollPage> Collection::scroll(const ScrollRequest& req) const {
  if (req.limit == 0) return Status::invalid_argument("limit must be at least 1");
  std::shared_lock lock(mu_);
  std::vector<std::size_t> rows;
  const std::vector<std::uint64_t> allow = allow_bits(req.filter);
  for (std::size_t r = 0; r < rows_; ++r) {
    if (!test_bit(allow, r)) continue;
    if (req.offset && row_ids_[r] < *req.offset) continue;
    rows.push_back(r);
  }
  const std::size_t take = std::min(rows.size(), req.limit + 1);
  auto by_id = [this](std::size_t a, std::size_t b) { return row_ids_[a] < row_ids_[b]; };
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(take), rows.end(), by_id);
  ScrollPage page;
  for (std::size_t i = 0; i < std::min(take, req.limit); ++i) {
    Record rec;
    rec.id = row_ids_[rows[i]];
    if (req.with_payload) rec.payload = payload_of(rows[i]);
    if (req.with_vector) rec.vector = reconstruct(rows[i]);
    page.points.push_back(std::move(rec));
  }
  if (take > req.limit) page.next_offset = row_ids_[rows[req.limit]];
  return page;
}

std::size_t Collection::count(const Filter* filter) const {
  std::shared_lock lock(mu_);
  if (!filter || filter->matches_all()) return live_count_;
  const auto bits = allow_bits(filter);
  std::size_t n = 0;
  for (auto w : bits) n += static_cast<std::size_t>(std::popcount(w));
  return n;
}

MemoryUsage Collection::memory_usage() const {
  std::shared_lock lock(mu_);
  MemoryUsage m;
  m.codes = codes_.capacity() + norms_.capacity() * sizeof(float) + live_.capacity() * 8 + rel_codes_.capacity() +
            rel_norms_.capacity() * sizeof(float);
  for (const auto& [model_name, terms] : hubs_) m.codes += terms.capacity() * sizeof(float);
  m.originals = originals_.capacity() * sizeof(float);
  m.ids = row_ids_.capacity() * sizeof(PointId) + id_to_row_.memory_bytes();
  for (const auto& [row, value] : payloads_) {
    m.payloads += sizeof(std::pair<const std::uint64_t, nlohmann::json>) + 2 * sizeof(void*) + value.dump().size();
  }
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
  info.points = live_count_;
  info.rows = rows_;
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
    rep.points = live_count_;
    if (state_) {
      rep.code_dim = state_->code_dim();
      rep.code_bytes = state_->codec.code_size();
    }
    if (live_count_ > 0) {
      const double per = 1.0 / static_cast<double>(live_count_);
      rep.code_bytes_per_vector = static_cast<double>(mem.codes) * per;
      rep.ram_bytes_per_vector = static_cast<double>(mem.total()) * per;
    }
    if (!state_) {
      rep.code_bytes_per_vector = rep.float32_bytes;
      rep.note = "not calibrated yet: the " + std::to_string(live_count_) +
                 " points are stored as float32 until calibration_sample (" +
                 std::to_string(config_.calibration_sample) + ") is reached";
    } else if (originals_.empty()) {
      rep.note = "codes only: float32 originals are not kept, so there is no float32 truth to compare with";
    } else if (live_count_ < 2) {
      rep.note = "fewer than 2 points";
    }
    if (rep.code_bytes_per_vector > 0) rep.compression_ratio = rep.float32_bytes / rep.code_bytes_per_vector;
    if (!rep.note.empty()) return rep;

    // Sample live rows with a fixed seed (a partial Fisher-Yates over the live row list).
    std::vector<std::size_t> rows = live_row_list();
    std::mt19937_64 rng(seed);
    const std::size_t m = std::min(sample, rows.size());
    for (std::size_t i = 0; i < m; ++i) {
      std::uniform_int_distribution<std::size_t> pick(i, rows.size() - 1);
      std::swap(rows[i], rows[pick(rng)]);
    }
    rows.resize(m);
    queries.resize(m * dim);
    for (std::size_t i = 0; i < m; ++i) {
      std::copy_n(originals_.data() + rows[i] * dim, dim, queries.data() + i * dim);
      query_ids.push_back(row_ids_[rows[i]]);
    }
    // The truth: exact float32 search over the live originals; the query point itself is dropped.
    const std::vector<std::uint64_t> allow = allow_bits(nullptr);
    const bool everything = live_count_ == rows_;
    kernels::SearchParams sp{final_metric(config_), std::min(k + 1, live_count_), shared_->options.threads};
    kernels::TopK top;
    VECSTASH_RETURN_IF_ERROR(kernels::search_f32(MatrixView<const float>(queries.data(), m, dim),
                                                 MatrixView<const float>(originals_.data(), rows_, dim), sp, &top,
                                                 everything ? nullptr : allow.data()));
    truth.resize(m);
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < top.k && truth[i].size() < k; ++j) {
        const std::int64_t r = top.ids[i * top.k + j];
        if (r < 0) break;
        const PointId& id = row_ids_[static_cast<std::size_t>(r)];
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
