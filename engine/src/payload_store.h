// Private to engine/: a collection's payloads and payload indexes.
//
// Payloads are JSON objects stored in the store's payloads column, keyed by point id (a format byte,
// then the JSON text). On disk (the default, Qdrant's on_disk_payload) they are read for the points
// a request returns and by filters on fields without an index, through the store's bounded block
// cache; in RAM (on_disk_payload = false) every payload is also held parsed, as a map by row.
//
// Filters: matching() asks the payload indexes first (Filter::candidates). An exact answer is used
// as is; candidates that need checking are checked against their payloads; a filter the indexes
// cannot narrow is evaluated on every live row.
//
// Thread safety: reads may run concurrently (the caller's shared lock); apply*, the index changes and
// renumber need the caller's exclusive lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "payload_index.h"
#include "row_store.h"
#include "vecstash/common/status.h"
#include "vecstash/engine/filter.h"
#include "vecstash/storage/store.h"

namespace vecstash::engine {

class PayloadStore {
 public:
  PayloadStore(storage::Store* store, std::uint32_t cid, bool in_ram) : store_(store), cid_(cid), in_ram_(in_ram) {}

  bool in_ram() const noexcept { return in_ram_; }

  // ---- writes: into the caller's batch, then applied once committed ----
  void put(storage::WriteBatch& batch, const PointId& id, const nlohmann::json& payload) const;
  void erase(storage::WriteBatch& batch, const PointId& id) const;
  /// A committed payload of a (new or existing) row: RAM copy and indexes. nullptr: no payload.
  void apply(std::size_t row, const nlohmann::json* payload);
  /// A row that died: drop its RAM copy (index entries of dead rows are dropped at compaction).
  void forget(std::size_t row);
  /// After a compaction: old_to_new[r] is the new row, or UINT32_MAX for a dropped row.
  void renumber(std::span<const std::uint32_t> old_to_new);

  // ---- reads ----
  /// The payload of a live row ({} when it has none).
  Result<nlohmann::json> get(std::size_t row, const PointId& id) const;
  /// The payloads of many rows (one batched read on disk), in the order given.
  Result<std::vector<nlohmann::json>> get_many(std::span<const std::size_t> rows, const RowStore& store) const;
  /// Call fn(row, payload) for every live row that has a payload (in key order on disk).
  Status for_each(const RowStore& rows, const std::function<bool(std::size_t, const nlohmann::json&)>& fn) const;
  /// Bitset (rows.live_words() words) of the live rows matching `filter`; also the number of them.
  Result<std::vector<std::uint64_t>> matching(const Filter& filter, const RowStore& rows, std::size_t* count) const;

  // ---- indexes ----
  const PayloadIndexes& indexes() const noexcept { return indexes_; }
  /// An index of `field` over every live row (reads every payload; changes nothing here).
  Result<FieldIndex> build_index(const std::string& field, FieldSchema schema, const RowStore& rows) const;
  /// Put a built index in place (replacing one of the same field).
  void install_index(FieldIndex index);
  bool drop_index(const std::string& field) { return indexes_.remove(field); }
  /// Replace the indexes (loading a snapshot).
  void set_indexes(PayloadIndexes indexes) { indexes_ = std::move(indexes); }
  /// Re-index one row from its stored payload (opening: rows written after the snapshot).
  Status reindex(std::span<const std::size_t> rows, const RowStore& store);

  /// Load every payload into RAM (the RAM tier, when opening).
  Status load(const RowStore& rows);
  /// Resident bytes: the RAM copies and the indexes.
  std::size_t memory_bytes() const noexcept { return ram_bytes_ + indexes_.memory_bytes(); }
  /// Bytes of the indexes alone.
  std::size_t index_bytes() const noexcept { return indexes_.memory_bytes(); }

 private:
  std::string key(const PointId& id) const;
  static Result<nlohmann::json> parse(std::string_view value, const PointId& id);
  static std::size_t json_bytes(const nlohmann::json& j) noexcept;

  storage::Store* store_;
  std::uint32_t cid_;
  bool in_ram_;
  std::unordered_map<std::uint64_t, nlohmann::json> ram_;  // by row: rows with a payload (RAM tier)
  std::size_t ram_bytes_ = 0;
  PayloadIndexes indexes_;
};

}  // namespace vecstash::engine
