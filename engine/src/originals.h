// Private to engine/: a collection's float32 originals, the vectors as stored (normalised in cosine
// collections), kept for rescoring, for re-calibration and for returning vectors.
//
// Tiers: the originals always live in a RowFile ("f32 x<dim>" records, little-endian); with
// `in_ram` a copy is held in RAM too (the fastest rescoring, at dim x 4 bytes per point). Reads
// come from RAM when it holds them, otherwise from the file (pread: the OS page cache is the cache,
// and nothing of it counts as the process's memory).
//
// Writes: persist() stores rows in the file (then sync() before the commit that makes them
// visible); apply() adds them to the RAM copy once they are visible.
//
// Thread safety: reads may run concurrently with each other and with persist() of other rows;
// apply(), set_in_ram() and destruction need the collection's exclusive lock.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>

#include "mapped_array.h"
#include "vecstash/common/status.h"
#include "vecstash/storage/row_file.h"

namespace vecstash::engine {

class Originals {
 public:
  /// A new, empty file at `path`.
  static Result<std::unique_ptr<Originals>> create(const std::filesystem::path& path, std::size_t dim, bool in_ram);
  /// The existing file at `path`, holding at least `rows` rows; with in_ram they are read into RAM.
  static Result<std::unique_ptr<Originals>> open(const std::filesystem::path& path, std::size_t dim, std::size_t rows,
                                                 bool in_ram);

  std::size_t dim() const noexcept { return dim_; }
  bool in_ram() const noexcept { return in_ram_; }
  /// The RAM copy (rows x dim), or nullptr when the originals are on disk only.
  const float* ram() const noexcept { return in_ram_ ? ram_.data() : nullptr; }
  const std::filesystem::path& path() const noexcept { return file_->path(); }

  /// Store n rows at first_row in the file (not yet durable; see sync()).
  Status persist(std::size_t first_row, const float* rows, std::size_t n);
  Status sync() { return file_->sync(); }
  /// Add rows [first_row, first_row + n) to the RAM copy (a no-op on disk only).
  void apply(std::size_t first_row, const float* rows, std::size_t n);

  /// The rows `rows` (any order), row i at out + i * dim.
  Status read_rows(std::span<const std::size_t> rows, float* out) const;
  /// Rows [first, first + n) into out.
  Status read_range(std::size_t first, std::size_t n, float* out) const;

  /// Hold a RAM copy of rows [0, rows) (reading the file), or drop it.
  Status set_in_ram(bool in_ram, std::size_t rows);
  /// Resident bytes of the RAM copy.
  std::size_t memory_bytes() const noexcept { return ram_.memory_bytes(); }

  static std::string tag(std::size_t dim) { return "f32 x" + std::to_string(dim); }

 private:
  Originals(std::unique_ptr<storage::RowFile> file, std::size_t dim) : file_(std::move(file)), dim_(dim) {}
  std::unique_ptr<storage::RowFile> file_;
  std::size_t dim_ = 0;
  bool in_ram_ = false;
  MappedArray<float> ram_;
};

}  // namespace vecstash::engine
