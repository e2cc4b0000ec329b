#include "vecstash/storage/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>

#include <array>
#include <system_error>
#include <vector>

#include "vecstash/storage/keys.h"

namespace vecstash::storage {

namespace {

constexpr std::array<std::string_view, kColumnCount> kColumnNames = {
    "default", "codes", "originals", "payloads", "index", "ids"};

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
  std::vector<std::pair<Column, bool>> ops;  // (column, true = put / false = delete)
  std::vector<std::pair<std::string, std::string>> data;
};

WriteBatch::WriteBatch() : impl_(std::make_unique<Impl>()) {}
WriteBatch::~WriteBatch() = default;
WriteBatch::WriteBatch(WriteBatch&&) noexcept = default;
WriteBatch& WriteBatch::operator=(WriteBatch&&) noexcept = default;

void WriteBatch::put(Column column, std::string_view key, std::string_view value) {
  impl_->ops.emplace_back(column, true);
  impl_->data.emplace_back(std::string(key), std::string(value));
}
void WriteBatch::erase(Column column, std::string_view key) {
  impl_->ops.emplace_back(column, false);
  impl_->data.emplace_back(std::string(key), std::string());
}
std::size_t WriteBatch::count() const noexcept { return impl_->ops.size(); }
void WriteBatch::clear() {
  impl_->ops.clear();
  impl_->data.clear();
}

// ---- Store -----------------------------------------------------------------------------------
struct Store::Impl {
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

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_mb << 20);
  rocksdb::ColumnFamilyOptions cf_options;
  cf_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));

  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (std::string_view name : kColumnNames) families.emplace_back(std::string(name), cf_options);

  auto impl = std::make_unique<Impl>();
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
  for (std::size_t i = 0; i < ops.size(); ++i) {
    rocksdb::Status s = ops[i].second ? wb.Put(impl_->cf(ops[i].first), slice(data[i].first), slice(data[i].second))
                                      : wb.Delete(impl_->cf(ops[i].first), slice(data[i].first));
    if (!s.ok()) return translate(s, "store: building a write batch");
  }
  return translate(impl_->db->Write(impl_->write_options(durability.value_or(impl_->durability)), &wb),
                   "store: write");
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
  return translate(impl_->db->DeleteRange(impl_->write_options(impl_->durability), impl_->cf(column), slice(begin),
                                          slice(end)),
                   "store: delete range");
}

Status Store::flush() {
  rocksdb::FlushOptions fo;
  return translate(impl_->db->Flush(fo, impl_->handles), "store: flush");
}

}  // namespace vecstash::storage
