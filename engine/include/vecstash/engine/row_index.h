// Internal to the engine (used by Collection): the id -> row map of a collection, kept small. An open-addressing table
// of 32-bit row numbers (linear probing, backward-shift deletion); the ids themselves live once, in the collection's
// row -> id array, and are read from there when probing. About 4 / 0.7 bytes per point instead of the ~60 of a
// node-based std::unordered_map.
//
// Thread safety: none; the collection guards it with its locks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "vecstash/engine/point_id.h"

namespace vecstash::engine {

class RowIndex {
 public:
  static constexpr std::uint32_t kEmpty = 0xFFFFFFFFu;
  /// Largest row number the table can hold.
  static constexpr std::uint64_t kMaxRow = kEmpty - 1;

  /// The row of `id`, given the row -> id array the rows index into.
  std::optional<std::uint32_t> find(const PointId& id, std::span<const PointId> row_ids) const noexcept {
    if (size_ == 0) return std::nullopt;
    for (std::size_t i = slot_of(id);; i = (i + 1) & mask()) {
      const std::uint32_t r = slots_[i];
      if (r == kEmpty) return std::nullopt;
      if (row_ids[r] == id) return r;
    }
  }
  /// Map `id` to `row` (row_ids[row] must already be id), replacing an existing mapping.
  /// Returns the previous row, if any.
  std::optional<std::uint32_t> assign(const PointId& id, std::uint32_t row, std::span<const PointId> row_ids) {
    if ((size_ + 1) * 10 > slots_.size() * 7) rehash(std::max<std::size_t>(64, slots_.size() * 2), row_ids);
    for (std::size_t i = slot_of(id);; i = (i + 1) & mask()) {
      const std::uint32_t r = slots_[i];
      if (r == kEmpty) {
        slots_[i] = row;
        ++size_;
        return std::nullopt;
      }
      if (row_ids[r] == id) {
        slots_[i] = row;
        return r;
      }
    }
  }
  /// Remove `id`; returns its row if it was present.
  std::optional<std::uint32_t> erase(const PointId& id, std::span<const PointId> row_ids) noexcept {
    if (size_ == 0) return std::nullopt;
    std::size_t i = slot_of(id);
    for (;; i = (i + 1) & mask()) {
      if (slots_[i] == kEmpty) return std::nullopt;
      if (row_ids[slots_[i]] == id) break;
    }
    const std::uint32_t removed = slots_[i];
    // Backward-shift: move later entries of the probe run into the hole when their home slot allows.
    std::size_t hole = i;
    for (std::size_t j = (i + 1) & mask(); slots_[j] != kEmpty; j = (j + 1) & mask()) {
      const std::size_t home = slot_of(row_ids[slots_[j]]);
      // Entry j may move to `hole` if its home is not in the cyclic range (hole, j].
      const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!stays) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole] = kEmpty;
    --size_;
    return removed;
  }
  void clear() noexcept {
    slots_.clear();
    size_ = 0;
  }
  void reserve(std::size_t n, std::span<const PointId> row_ids) {
    std::size_t cap = 64;
    while (n * 10 > cap * 7) cap *= 2;
    if (cap > slots_.size()) rehash(cap, row_ids);
  }
  std::size_t size() const noexcept { return size_; }
  std::size_t memory_bytes() const noexcept { return slots_.capacity() * sizeof(std::uint32_t); }

 private:
  std::size_t mask() const noexcept { return slots_.size() - 1; }
  std::size_t slot_of(const PointId& id) const noexcept { return PointIdHash{}(id)&mask(); }
  void rehash(std::size_t capacity, std::span<const PointId> row_ids) {
    std::vector<std::uint32_t> old = std::move(slots_);
    slots_.assign(capacity, kEmpty);
    for (std::uint32_t r : old) {
      if (r == kEmpty) continue;
      std::size_t i = slot_of(row_ids[r]);
      while (slots_[i] != kEmpty) i = (i + 1) & mask();
      slots_[i] = r;
    }
  }
  std::vector<std::uint32_t> slots_;
  std::size_t size_ = 0;
};

}  // namespace vecstash::engine
