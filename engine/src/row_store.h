// Private to engine/: the RAM tier of a collection's rows and its bulk file.
//
// Every point occupies a row. RAM holds what every query touches: the codes (rows x code_size), the
// per-row squared norms when the scan metric needs them, the row -> id array, the live bitset and
// the id -> row map. Rows only grow; a deleted or replaced point leaves a dead row that searches
// skip, until compaction renumbers the rows (a new RowStore).
//
// On disk, the same rows are records of a RowFile ("rows file"): the id's 17-byte key, the code and
// the norm. A write stores the new records (persist, then sync) before the commit that raises the
// collection's row watermark; opening reads the file once, up to the watermark (load), and
// rebuilds the id map. Dead rows are not in the file: the collection keeps them as row marks in
// the store and passes them to kill().
//
// Thread safety: none; the collection serialises writers and guards readers with its lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mapped_array.h"
#include "vecstash/common/status.h"
#include "vecstash/engine/point_id.h"
#include "vecstash/engine/row_index.h"
#include "vecstash/kernels/search.h"
#include "vecstash/storage/row_file.h"

namespace vecstash::engine {

inline bool test_bit(const std::uint64_t* bits, std::size_t i) noexcept { return (bits[i >> 6] >> (i & 63)) & 1u; }
inline void set_bit(std::uint64_t* bits, std::size_t i) noexcept { bits[i >> 6] |= std::uint64_t{1} << (i & 63); }
inline void clear_bit(std::uint64_t* bits, std::size_t i) noexcept { bits[i >> 6] &= ~(std::uint64_t{1} << (i & 63)); }

class RowStore {
 public:
  /// Rows with `code_size` code bytes (0 before calibration) and, when `norms`, a squared norm each.
  RowStore(std::size_t code_size, bool norms) : code_size_(code_size), has_norms_(norms) {}

  std::size_t rows() const noexcept { return ids_.size(); }
  std::size_t live_count() const noexcept { return live_count_; }
  std::size_t code_size() const noexcept { return code_size_; }
  bool has_norms() const noexcept { return has_norms_; }

  const std::uint8_t* codes() const noexcept { return codes_.data(); }
  std::span<const std::uint8_t> code(std::size_t row) const noexcept {
    return {codes_.data() + row * code_size_, code_size_};
  }
  /// Squared norms per row, or nullptr when the collection keeps none.
  const float* norms() const noexcept { return has_norms_ ? norms_.data() : nullptr; }
  /// The live bitset: ceil(rows / 64) words (kernels/search.h's eligibility format).
  const std::uint64_t* live_bits() const noexcept { return live_.data(); }
  std::size_t live_words() const noexcept { return live_.size(); }
  bool is_live(std::size_t row) const noexcept { return row < rows() && test_bit(live_.data(), row); }
  const PointId& id(std::size_t row) const noexcept { return ids_[row]; }
  std::span<const PointId> ids() const noexcept { return ids_.span(); }
  /// The live row of `id`, if any.
  std::optional<std::uint32_t> find(const PointId& id) const noexcept { return id_to_row_.find(id, ids_.span()); }
  /// Live rows in ascending order.
  std::vector<std::size_t> live_rows() const;
  /// The codes as the kernels take them (allow and row_bias left to the caller).
  kernels::CodeView view() const noexcept { return {codes_.data(), rows(), norms(), nullptr, nullptr}; }

  // ---- writes (the caller serialises them and holds readers off) ----

  /// Append rows for `ids` (their codes: n x code_size; norms: n, or null without norms). A row whose
  /// id was live before is killed; its row number is appended to `replaced` (when given).
  void append(std::span<const PointId> ids, const std::uint8_t* codes, const float* norms,
              std::vector<std::size_t>* replaced = nullptr);
  /// Mark a row dead and forget its id (no-op when already dead).
  void kill(std::size_t row);
  /// Mark rows dead while loading (the id map is built afterwards by finish_load).
  void kill_loaded(std::size_t row);

  // ---- the rows file ----

  /// The file's record layout, as its tag says it: "rows c<code_size> n<0|1>".
  std::string file_tag() const;
  std::size_t record_size() const noexcept { return PointId::kKeySize + code_size_ + (has_norms_ ? 4 : 0); }
  /// Records of n new rows, ready for RowFile::write.
  std::vector<std::uint8_t> records(std::span<const PointId> ids, const std::uint8_t* codes, const float* norms) const;
  /// Read rows [0, rows) from `file` (all live), in large blocks; then kill_loaded() the dead rows
  /// and call finish_load().
  Status load(const storage::RowFile& file, std::size_t rows);
  /// Build the id map from the live rows (after load and kill_loaded).
  void finish_load();
  /// Write every row's record to `file` (a new file for a new generation or epoch), in blocks.
  Status write_all(storage::RowFile& file) const;

  /// Resident bytes of the codes, norms and live bits.
  std::size_t code_bytes() const noexcept {
    return codes_.memory_bytes() + norms_.memory_bytes() + live_.memory_bytes();
  }
  /// Resident bytes of the row -> id array and the id map.
  std::size_t id_bytes() const noexcept { return ids_.memory_bytes() + id_to_row_.memory_bytes(); }

  /// Replace codes and norms (a new calibration of the same rows): `codes` rows() x code_size.
  void replace_codes(std::size_t code_size, bool norms, MappedArray<std::uint8_t> codes,
                     MappedArray<float> norm_values);

 private:
  void grow_to(std::size_t rows);

  std::size_t code_size_ = 0;
  bool has_norms_ = false;
  MappedArray<std::uint8_t> codes_;
  MappedArray<float> norms_;
  MappedArray<PointId> ids_;
  MappedArray<std::uint64_t> live_;
  RowIndex id_to_row_;
  std::size_t live_count_ = 0;
};

}  // namespace vecstash::engine
