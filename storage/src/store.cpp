#include "vecstash/storage/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <rocksdb/write_buffer_manager.h>

#include <array>
#include <system_error>
#include <vector>

#include "vecstash/storage/keys.h"

namespace vecstash::storage {

namespace {

constexpr std::array<std::string_view, kColumnCount> kColumnNames = {"default", "codes", "originals", "payloads",
                                                                     "index",   "ids",   "rowmarks"};

Status translate(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::ok();
  std::string msg = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return Status::not_found(std::move(msg));
  if (s.IsCorruption()) return Status::corruption(std::move(msg));
  if (s.IsInvalidArgument() || s.IsNotSupported()) return Status::invalid_argument(std::move(msg));
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) return Status::unavailable(std::move(msg));
  if (s.IsNoSpace() || s.IsMemoryLimit()) return Status::resource_exhausted(std::move(msg));
  return Status::internal(std::move(msg));
}

rocksdb::Slice slice(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

std::string_view column_name(Column c) noexcept { return kColumnNames[static_cast<std::size_t>(c)]; }

// ---- WriteBatch ------------------------------------------------------------------------------
// Operations are recorded and turned into a rocksdb::WriteBatch by Store::write, which owns the
// column-family handles.
struct WriteBatch::Impl {
  enum class Op : std::uint8_t { kPut, kDelete, kDeleteRange };
  std::vector<std::pair<Column, Op>> ops;
  std::vector<std::pair<std::string, std::string>> data;  // key and value, or begin and end
};

WriteBatch::WriteBatch() : impl_(std::make_unique<Impl>()) {}
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

void WriteBatch::put(Column column, std::string_view key, std::string_view value) {
  impl_->ops.emplace_back(column, Impl::Op::kPut);
  impl_->data.emplace_back(std::string(key), std::string(value));
}
void WriteBatch::erase(Column column, std::string_view key) {
  impl_->ops.emplace_back(column, Impl::Op::kDelete);
  impl_->data.emplace_back(std::string(key), std::string());
}
void WriteBatch::erase_range(Column column, std::string_view begin, std::string_view end) {
  impl_->ops.emplace_back(column, Impl::Op::kDeleteRange);
  impl_->data.emplace_back(std::string(begin), std::string(end));
}
std::size_t WriteBatch::count() const noexcept { return impl_->ops.size(); }
void WriteBatch::clear() {
  impl_->ops.clear();
  impl_->data.clear();
}

// ---- Store -----------------------------------------------------------------------------------
struct Store::Impl {
  std::shared_ptr<rocksdb::Cache> cache;
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;  // owned: destroyed before db
  Durability durability = Durability::kSync;

  rocksdb::ColumnFamilyHandle* cf(Column c) const { return handles[static_cast<std::size_t>(c)]; }
  rocksdb::WriteOptions write_options(Durability d) const {
    rocksdb::WriteOptions w;
    w.sync = d == Durability::kSync;
    return w;
  }
  ~Impl() {
    if (db) {
      for (auto* h : handles)
        if (h) db->DestroyColumnFamilyHandle(h);
      (void)db->Close();
    }
  }
};

Store::Store(std::filesystem::path path, std::unique_ptr<Impl> impl) : path_(std::move(path)), impl_(std::move(impl)) {}
Store::~Store() = default;

Result<std::unique_ptr<Store>> Store::open(const std::filesystem::path& dir, const StoreOptions& options) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    return Status::invalid_argument("store: " + dir.string() + " exists and is not a directory");
  if (!std::filesystem::exists(dir, ec) && !options.create_if_missing)
    return Status::not_found("store: no database at " + dir.string());
  if (options.create_if_missing && !std::filesystem::exists(dir, ec)) {
    // Parent folders too, as users of a data directory setting expect.
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::unavailable("store: cannot create " + dir.string() + ": " + ec.message());
  }

  rocksdb::Options db_options;
  db_options.create_if_missing = options.create_if_missing;
  db_options.create_missing_column_families = true;
  db_options.paranoid_checks = true;

  // One cache bounds the store's RAM: table blocks, and the memtables charged to it (a write that
  // would exceed the budget flushes the largest memtable first).
  auto cache = rocksdb::NewLRUCache(std::max<std::size_t>(options.block_cache_mb, 4) << 20);
  db_options.write_buffer_manager =
      std::make_shared<rocksdb::WriteBufferManager>(std::max<std::size_t>(options.block_cache_mb, 4) << 19, cache);
  rocksdb::BlockBasedTableOptions table;
  table.block_cache = cache;
  table.cache_index_and_filter_blocks = true;
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  cf_options.write_buffer_size = std::max<std::size_t>(options.write_buffer_mb, 1) << 20;
  cf_options.max_write_buffer_number = 2;

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (std::string_view name : kColumnNames) families.emplace_back(std::string(name), cf_options);

  auto impl = std::make_unique<Impl>();
  impl->cache = cache;
  impl->durability = options.durability;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s = rocksdb::DB::Open(db_options, dir.string(), families, &impl->handles, &raw);
  if (!s.ok()) return translate(s, "store: opening " + dir.string());
  impl->db.reset(raw);
  return std::unique_ptr<Store>(new Store(dir, std::move(impl)));
}

Status Store::write(const WriteBatch& batch, std::optional<Durability> durability) {
  rocksdb::WriteBatch wb;
  const auto& ops = batch.impl_->ops;
  const auto& data = batch.impl_->data;
  using Op = WriteBatch::Impl::Op;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    rocksdb::ColumnFamilyHandle* cf = impl_->cf(ops[i].first);
    const rocksdb::Status s = ops[i].second == Op::kPut ? wb.Put(cf, slice(data[i].first), slice(data[i].second))
                              : ops[i].second == Op::kDelete
                                  ? wb.Delete(cf, slice(data[i].first))
                                  : wb.DeleteRange(cf, slice(data[i].first), slice(data[i].second));
    if (!s.ok()) return translate(s, "store: building a write batch");
  }
  return translate(impl_->db->Write(impl_->write_options(durability.value_or(impl_->durability)), &wb), "store: write");
}

Status Store::put(Column column, std::string_view key, std::string_view value) {
  return translate(impl_->db->Put(impl_->write_options(impl_->durability), impl_->cf(column), slice(key), slice(value)),
                   "store: put");
}

Status Store::erase(Column column, std::string_view key) {
  return translate(impl_->db->Delete(impl_->write_options(impl_->durability), impl_->cf(column), slice(key)),
                   "store: delete");
}

Result<std::optional<std::string>> Store::get(Column column, std::string_view key) const {
  std::string value;
  const rocksdb::Status s = impl_->db->Get(rocksdb::ReadOptions(), impl_->cf(column), slice(key), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  if (!s.ok()) return translate(s, "store: get");
  return std::optional<std::string>(std::move(value));
}

Result<std::vector<std::optional<std::string>>> Store::multi_get(Column column,
                                                                 std::span<const std::string> keys) const {
  std::vector<rocksdb::Slice> slices;
  slices.reserve(keys.size());
  for (const std::string& k : keys) slices.emplace_back(k);
  std::vector<rocksdb::PinnableSlice> values(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  impl_->db->MultiGet(rocksdb::ReadOptions(), impl_->cf(column), keys.size(), slices.data(), values.data(),
                      statuses.data());
  std::vector<std::optional<std::string>> out(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    if (!statuses[i].ok()) return translate(statuses[i], "store: multi get");
    out[i] = values[i].ToString();
  }
  return out;
}

Status Store::scan(Column column, std::string_view prefix,
                   const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  const std::string end = prefix_end(prefix);
  rocksdb::Slice upper(end);
  if (!end.empty()) ro.iterate_upper_bound = &upper;
  const rocksdb::Snapshot* snap = impl_->db->GetSnapshot();
  ro.snapshot = snap;
  Status result;
  {
    std::unique_ptr<rocksdb::Iterator> it(impl_->db->NewIterator(ro, impl_->cf(column)));
    for (it->Seek(slice(prefix)); it->Valid(); it->Next()) {
      const rocksdb::Slice k = it->key(), v = it->value();
      if (!fn(std::string_view(k.data(), k.size()), std::string_view(v.data(), v.size()))) break;
    }
    result = translate(it->status(), "store: scan");
  }
  impl_->db->ReleaseSnapshot(snap);
  return result;
}

Status Store::erase_range(Column column, std::string_view begin, std::string_view end) {
  return translate(
      impl_->db->DeleteRange(impl_->write_options(impl_->durability), impl_->cf(column), slice(begin), slice(end)),
      "store: delete range");
}

Status Store::flush() {
  rocksdb::FlushOptions fo;
  return translate(impl_->db->Flush(fo, impl_->handles), "store: flush");
}

StoreMemory Store::memory() const {
  StoreMemory m;
  std::uint64_t v = 0;
  for (auto* h : impl_->handles) {
    if (impl_->db->GetIntProperty(h, "rocksdb.cur-size-all-mem-tables", &v)) m.memtables += v;
    if (impl_->db->GetIntProperty(h, "rocksdb.estimate-table-readers-mem", &v)) m.table_readers += v;
  }
  // The cache's usage includes the memtable reservations charged to it; count those once.
  const std::size_t cached = impl_->cache->GetUsage();
  m.block_cache = cached > m.memtables ? cached - m.memtables : 0;
  return m;
}

}  // namespace vecstash::storage
