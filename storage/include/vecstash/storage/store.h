// A durable key-value store for everything vecstash persists: RocksDB behind a bytes-in, bytes-out
// interface. One database directory holds all collections; data is split into column families by
// access pattern. Keys are compared bytewise, so integers in keys are written big-endian
// (keys.h) and scans come back in numeric order.
//
// Durability: with Durability::kSync (the default) write() returns only after the write-ahead log is
// fsynced, so an acknowledged write survives a crash of the process or the machine. kRelaxed writes the
// log without fsync: it survives `kill -9` of the process (the log is in the OS page cache) but not a
// power loss or kernel crash; use it for bulk loads that can be repeated.
//
// Thread safety: a Store is safe for concurrent use from many threads. A WriteBatch is not (one owner).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash::storage {

/// Column families, by access pattern. kMeta is RocksDB's default family.
enum class Column : std::uint8_t {
  kMeta = 0,       ///< collection configs, calibration blobs, counters
  kCodes = 1,      ///< encoded vectors of earlier releases (read when migrating)
  kOriginals = 2,  ///< float32 originals of earlier releases (read when migrating)
  kPayloads = 3,   ///< JSON payloads (point reads)
  kIndex = 4,      ///< index snapshots of earlier releases (read when migrating)
  kIds = 5,        ///< id maps of earlier releases (read when migrating)
  kRowMarks = 6,   ///< small per-row marks (dead rows, rows whose payload changed)
};
inline constexpr int kColumnCount = 7;
std::string_view column_name(Column c) noexcept;

enum class Durability : std::uint8_t {
  kSync = 0,     ///< fsync the write-ahead log before acknowledging (default)
  kRelaxed = 1,  ///< write the log, no fsync: survives a process crash, not a power loss
};

struct StoreOptions {
  bool create_if_missing = true;  ///< default true
  Durability durability = Durability::kSync;
  /// Shared block cache (the bounded cache of everything read from the store, payloads above all).
  /// Memtables are charged to it as well, so it bounds what RocksDB holds in RAM. Default 32 MiB.
  std::size_t block_cache_mb = 32;
  /// Memtable size per column family before it is flushed to a table file. Default 8 MiB.
  std::size_t write_buffer_mb = 8;
};

/// What the store holds in RAM, in bytes (RocksDB's own accounting).
struct StoreMemory {
  std::size_t memtables = 0;      ///< unflushed writes, all column families
  std::size_t block_cache = 0;    ///< blocks cached (memtable reservations excluded)
  std::size_t table_readers = 0;  ///< index and filter blocks of open table files
  std::size_t total() const { return memtables + block_cache + table_readers; }
};

/// Mutations applied atomically by Store::write (all or nothing, also across a crash).
class WriteBatch {
 public:
  WriteBatch();
  ~WriteBatch();
  WriteBatch(WriteBatch&&) noexcept;
  WriteBatch& operator=(WriteBatch&&) noexcept;

  void put(Column column, std::string_view key, std::string_view value);
  void erase(Column column, std::string_view key);
  /// Delete every key in [begin, end) of a column.
  void erase_range(Column column, std::string_view begin, std::string_view end);
  /// Number of put/erase operations recorded.
  std::size_t count() const noexcept;
  void clear();

 private:
  friend class Store;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Store {
 public:
  /// Open (or create) the database in `dir`. A directory held by another process, a path that is
  /// not a directory, or a damaged database gives a Status naming the path; nothing is changed.
  static Result<std::unique_ptr<Store>> open(const std::filesystem::path& dir, const StoreOptions& options = {});
  ~Store();  ///< flushes nothing extra: acknowledged writes are already in the log
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Apply `batch` atomically with the store's durability (or `durability` when given).
  Status write(const WriteBatch& batch, std::optional<Durability> durability = std::nullopt);
  Status put(Column column, std::string_view key, std::string_view value);
  Status erase(Column column, std::string_view key);
  /// The value, or std::nullopt when the key is absent.
  Result<std::optional<std::string>> get(Column column, std::string_view key) const;
  /// The values of many keys of one column at once (one RocksDB MultiGet), in key order of `keys`.
  Result<std::vector<std::optional<std::string>>> multi_get(Column column, std::span<const std::string> keys) const;
  /// Visit the keys starting with `prefix` in ascending byte order, from a consistent snapshot;
  /// `fn` returns false to stop early.
  Status scan(Column column, std::string_view prefix,
              const std::function<bool(std::string_view key, std::string_view value)>& fn) const;
  /// Delete every key in [begin, end) of a column (e.g. all rows of a dropped collection).
  Status erase_range(Column column, std::string_view begin, std::string_view end);
  /// Flush memtables to table files (speeds up the next open; not needed for durability).
  Status flush();
  /// RocksDB's memory: memtables, block cache, table readers.
  StoreMemory memory() const;

  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  struct Impl;
  Store(std::filesystem::path path, std::unique_ptr<Impl> impl);
  std::filesystem::path path_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vecstash::storage
