// A file of fixed-size records addressed by row number: the on-disk tier of per-row data (float32
// originals, and the id + code + norm records a collection reloads in bulk when it opens).
//
// Layout: a 4096-byte header (magic "VSRF", u16 format version, u32 record size, a 32-byte tag
// naming what the records are, e.g. "originals f32 x384", and a CRC-32 of the header), then record r
// at byte 4096 + r * record_size. The header keeps the records page-aligned. Records past the end of
// the file read as a Corruption error; the file's length says nothing about which rows are valid:
// that is the caller's watermark (a row is valid once a committed write says so).
//
// Durability: write() goes to the OS page cache (it survives a crash of the process, not of the
// machine); sync() is fdatasync, after which the written records survive a power loss. Callers sync
// before they commit the watermark that makes the rows visible.
//
// Errors: a full disk is ResourceExhausted ("No space left on device"), other I/O errors Unavailable,
// both naming the file; a wrong header is Corruption. New files are created with mode 0600.
//
// Thread safety: reads and writes use positional I/O (pread / pwrite), so any number of threads may
// read, and read while another writes, as long as no two threads write the same rows at once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "vecstash/common/status.h"

namespace vecstash::storage {

class RowFile {
 public:
  static constexpr std::size_t kHeaderSize = 4096;
  static constexpr std::uint16_t kFormatVersion = 1;
  static constexpr std::size_t kMaxTag = 32;

  /// Create (or truncate) the file at `path` for records of `record_size` bytes (>= 1), tagged
  /// `tag` (at most kMaxTag bytes). The header is synced before this returns.
  static Result<std::unique_ptr<RowFile>> create(const std::filesystem::path& path, std::size_t record_size,
                                                 std::string_view tag);
  /// Open an existing file; Corruption unless its header names `record_size` and `tag`.
  static Result<std::unique_ptr<RowFile>> open(const std::filesystem::path& path, std::size_t record_size,
                                               std::string_view tag);
  ~RowFile();
  RowFile(const RowFile&) = delete;
  RowFile& operator=(const RowFile&) = delete;

  /// Write bytes.size() / record_size records starting at `first_row` (bytes.size() must be a
  /// multiple of the record size).
  Status write(std::size_t first_row, std::span<const std::uint8_t> bytes);
  /// Read rows [first_row, first_row + out.size() / record_size) into `out`.
  Status read(std::size_t first_row, std::span<std::uint8_t> out) const;
  /// Read the records of `rows` (any order, repeats allowed) into out: record i at
  /// out + i * record_size. Neighbouring rows are read with one call.
  Status read_rows(std::span<const std::size_t> rows, std::uint8_t* out) const;
  /// fdatasync: written records survive a power loss once this returns.
  Status sync();
  /// Shrink (or extend with zeros) to `rows` records.
  Status truncate(std::size_t rows);
  /// Ask the kernel to drop this file's cached pages (after a bulk copy that will not be read again).
  void drop_cache() const noexcept;

  /// Whole records the file holds now.
  std::size_t rows_on_disk() const;
  std::size_t record_size() const noexcept { return record_size_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  RowFile(std::filesystem::path path, int fd, std::size_t record_size);
  std::filesystem::path path_;
  int fd_ = -1;
  std::size_t record_size_ = 0;
};

/// fsync a directory, so that files created, renamed or removed in it stay so after a power loss.
Status sync_directory(const std::filesystem::path& dir);

/// Write `bytes` to `path` atomically: a temporary file beside it, fsynced, renamed over `path`,
/// then the directory fsynced. Readers see the old content or the new one, never a mix.
Status write_file_atomically(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
/// The whole content of a file; NotFound when it does not exist.
Result<std::string> read_whole_file(const std::filesystem::path& path);

}  // namespace vecstash::storage
