#include "vecstash/engine/engine.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "anchor_state.h"
#include "collection_state.h"
#include "engine_shared.h"
#include "vecstash/common/blob.h"
#include "vecstash/common/log.h"

namespace vecstash::engine {

namespace {

using storage::Column;
constexpr std::uint16_t kCollectionVersion = 1;

std::vector<std::uint8_t> collection_blob(std::uint32_t cid, const CollectionConfig& config) {
  BlobWriter w("VSCO", kCollectionVersion);
  w.u32(cid);
  const std::string text = config_to_json(config).dump();
  w.bytes({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  return w.finish();
}

Status parse_collection_blob(std::string_view name, std::string_view value, std::uint32_t* cid,
                             CollectionConfig* config) {
  const std::vector<std::uint8_t> bytes(value.begin(), value.end());
  BlobReader r(bytes, "collection '" + std::string(name) + "' config");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open("VSCO", kCollectionVersion, &version));
  VECSTASH_RETURN_IF_ERROR(r.u32(cid));
  std::string text;
  VECSTASH_RETURN_IF_ERROR(r.string(&text, bytes.size()));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return Status::corruption("collection '" + std::string(name) + "': config is not JSON");
  auto parsed = config_from_json(j);
  if (!parsed.is_ok()) {
    return Status::corruption("collection '" + std::string(name) +
                              "': stored config is invalid: " + parsed.status().message());
  }
  *config = std::move(*parsed);
  return Status::ok();
}

}  // namespace

Engine::Engine(std::unique_ptr<EngineShared> shared) : shared_(std::move(shared)) {}

Engine::~Engine() {
  // Finish background work first (it may still write), then snapshot indexes so the next open
  // loads them instead of rebuilding.
  std::map<std::string, std::shared_ptr<Collection>> all;
  {
    std::lock_guard lock(mu_);
    all = collections_;
  }
  for (auto& [name, c] : all) c->wait_for_recalibration();
  shared_->pool.reset();
  for (auto& [name, c] : all) {
    const Status s = c->snapshot_index();
    if (!s.is_ok()) log(LogLevel::kWarn, "closing: " + s.to_string());
  }
  collections_.clear();
  all.clear();
  shared_->store.reset();
}

Result<std::unique_ptr<Engine>> Engine::open(const std::filesystem::path& dir, const EngineOptions& options) {
  if (options.threads < 0) return Status::invalid_argument("threads must be >= 0");
  auto shared = std::make_unique<EngineShared>();
  shared->options = options;
  storage::StoreOptions so;
  so.durability = options.sync_writes ? storage::Durability::kSync : storage::Durability::kRelaxed;
  so.block_cache_mb = options.block_cache_mb;
  auto store = storage::Store::open(dir, so);
  if (!store.is_ok()) return store.status();
  shared->store = std::move(*store);
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  shared->pool = std::make_unique<ThreadPool>(options.pool_threads ? options.pool_threads : cores,
                                              std::max<std::size_t>(1, options.pool_queue));
  if (options.use_gpu && kernels::gpu_available()) {
    auto gpu = kernels::GpuContext::create();
    if (gpu.is_ok()) {
      shared->gpu = std::move(*gpu);
      log(LogLevel::kInfo, "exact scans run on " + kernels::gpu_description());
    } else {
      log(LogLevel::kWarn, "GPU unusable (" + gpu.status().to_string() + "); exact scans run on the CPU");
    }
  }
  std::unique_ptr<Engine> engine(new Engine(std::move(shared)));
  VECSTASH_RETURN_IF_ERROR(engine->load_collections());
  return engine;
}

Status Engine::load_collections() {
  storage::Store& store = *shared_->store;
  std::vector<std::pair<std::string, std::string>> entries;
  VECSTASH_RETURN_IF_ERROR(store.scan(Column::kMeta, "collection/", [&](std::string_view key, std::string_view value) {
    entries.emplace_back(std::string(key.substr(11)), std::string(value));
    return true;
  }));
  for (const auto& [name, value] : entries) {
    std::uint32_t cid = 0;
    CollectionConfig config;
    VECSTASH_RETURN_IF_ERROR(parse_collection_blob(name, value, &cid, &config));
    auto c = Collection::load(shared_.get(), cid, name, std::move(config));
    if (!c.is_ok()) return c.status();
    collections_.emplace(name, std::move(*c));
  }
  // Directories of collections that no longer exist (a drop interrupted by a crash).
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(shared_->store->path() / "collections", ec)) {
    bool used = false;
    for (const auto& [name, c] : collections_) used = used || entry.path() == collection_dir(c->cid_);
    if (!used) std::filesystem::remove_all(entry.path(), ec);
  }
  return Status::ok();
}

Result<std::shared_ptr<Collection>> Engine::create_collection(const std::string& name, const CollectionConfig& config) {
  VECSTASH_RETURN_IF_ERROR(validate_collection_name(name));
  VECSTASH_RETURN_IF_ERROR(config.validate());
  std::lock_guard lock(mu_);
  if (collections_.count(name)) return Status::already_exists("collection '" + name + "' already exists");
  storage::Store& store = *shared_->store;
  auto next = store.get(Column::kMeta, keys::kNextCid);
  if (!next.is_ok()) return next.status();
  std::uint32_t cid = 1;
  if (next->has_value()) {
    const std::string& v = **next;
    if (v.size() != 4) return Status::corruption("next collection id is malformed");
    cid = 0;
    for (char ch : v) cid = (cid << 8) | static_cast<unsigned char>(ch);
  }
  // Clear anything a dropped collection with this id may have left (a crash during a drop).
  VECSTASH_RETURN_IF_ERROR(erase_collection_data(cid));
  storage::WriteBatch batch;
  const auto blob = collection_blob(cid, config);
  batch.put(Column::kMeta, keys::collection(name),
            std::string_view(reinterpret_cast<const char*>(blob.data()), blob.size()));
  batch.put(Column::kMeta, keys::kNextCid, keys::cid(cid + 1));
  batch.erase(Column::kMeta, keys::state(cid));
  VECSTASH_RETURN_IF_ERROR(store.write(batch, storage::Durability::kSync));
  auto c = Collection::create(shared_.get(), cid, name, config);
  if (!c.is_ok()) return c.status();
  collections_.emplace(name, *c);
  return *c;
}

Status Engine::drop_collection(const std::string& name) {
  std::shared_ptr<Collection> c;
  {
    std::lock_guard lock(mu_);
    const auto it = collections_.find(name);
    if (it == collections_.end()) return Status::not_found("collection '" + name + "' does not exist");
    c = it->second;
    collections_.erase(it);
  }
  c->wait_for_recalibration();
  {
    std::lock_guard write_lock(c->write_mu_);
    c->dropped_ = true;
  }
  c->wait_for_recalibration();  // a compaction scheduled by a write just before the drop
  storage::Store& store = *shared_->store;
  const std::uint32_t cid = c->cid_;
  // The config key goes first (synced): after it the collection is gone even if the range deletes
  // below are interrupted; the next create with a new id never sees the left-overs, and they are
  // cleared if the id were ever reused.
  storage::WriteBatch batch;
  batch.erase(Column::kMeta, keys::collection(name));
  batch.erase(Column::kMeta, keys::state(cid));
  VECSTASH_RETURN_IF_ERROR(store.write(batch, storage::Durability::kSync));
  return erase_collection_data(cid);
}

Status Engine::erase_collection_data(std::uint32_t cid) {
  storage::Store& store = *shared_->store;
  for (Column column :
       {Column::kIds, Column::kCodes, Column::kOriginals, Column::kPayloads, Column::kIndex, Column::kRowMarks}) {
    VECSTASH_RETURN_IF_ERROR(store.erase_range(column, keys::cid(cid), storage::prefix_end(keys::cid(cid))));
  }
  const std::string cal_prefix = "calibration/" + keys::cid(cid);
  VECSTASH_RETURN_IF_ERROR(store.erase_range(Column::kMeta, cal_prefix, storage::prefix_end(cal_prefix)));
  VECSTASH_RETURN_IF_ERROR(store.erase(Column::kMeta, keys::anchors(cid)));
  VECSTASH_RETURN_IF_ERROR(store.erase(Column::kMeta, keys::payload_schema(cid)));
  VECSTASH_RETURN_IF_ERROR(
      store.erase_range(Column::kMeta, keys::model_prefix(cid), storage::prefix_end(keys::model_prefix(cid))));
  std::error_code ec;
  std::filesystem::remove_all(collection_dir(cid), ec);
  if (ec) return Status::unavailable("removing " + collection_dir(cid).string() + ": " + ec.message());
  return Status::ok();
}

std::filesystem::path Engine::collection_dir(std::uint32_t cid) const {
  return engine::collection_dir(shared_->store->path(), cid);
}

Result<std::shared_ptr<Collection>> Engine::collection(const std::string& name) const {
  std::lock_guard lock(mu_);
  const auto it = collections_.find(name);
  if (it == collections_.end()) return Status::not_found("collection '" + name + "' does not exist");
  return it->second;
}

std::vector<std::string> Engine::list_collections() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& [name, c] : collections_) names.push_back(name);
  return names;
}

ThreadPool& Engine::pool() { return *shared_->pool; }
const std::filesystem::path& Engine::path() const noexcept { return shared_->store->path(); }

}  // namespace vecstash::engine
