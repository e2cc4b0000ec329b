// Little-endian writer/reader for persisted blobs. Every blob starts with a 4-byte magic and a
// 16-bit format version; readers check both and report Corruption (never crash) on damage.
// Thread safety: none (single owner).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash {

class BlobWriter {
 public:
  BlobWriter(std::string_view magic, std::uint16_t version);
  void u8(std::uint8_t v);
  void u16(std::uint16_t v);
  void u32(std::uint32_t v);
  void u64(std::uint64_t v);
  void f32s(std::span<const float> v);   ///< u64 count, then the values
  void f64s(std::span<const double> v);  ///< u64 count, then the values
  void bytes(std::span<const std::uint8_t> v);  ///< u64 count, then the bytes (strings, nested blobs)
  /// Appends a CRC-32 of everything written so far and returns the blob.
  std::vector<std::uint8_t> finish();

 private:
  std::vector<std::uint8_t> out_;
};

class BlobReader {
 public:
  /// `what` names the blob in error messages ("codec parameters").
  BlobReader(std::span<const std::uint8_t> blob, std::string what);
  /// Check the checksum, magic and that the version is <= max_version; sets *version.
  Status open(std::string_view magic, std::uint16_t max_version, std::uint16_t* version);
  Status u8(std::uint8_t* v);
  Status u16(std::uint16_t* v);
  Status u32(std::uint32_t* v);
  Status u64(std::uint64_t* v);
  Status f32s(std::vector<float>* v, std::uint64_t max_count);
  Status f64s(std::vector<double>* v, std::uint64_t max_count);
  Status bytes(std::vector<std::uint8_t>* v, std::uint64_t max_count);
  Status string(std::string* v, std::uint64_t max_count);
  /// Corruption unless every byte before the checksum was consumed.
  Status finish() const;

 private:
  Status take(void* dst, std::size_t n);
  Status corrupt(std::string_view why) const;
  std::span<const std::uint8_t> blob_;
  std::size_t pos_ = 0;
  std::size_t end_ = 0;  // position of the checksum
  std::string what_;
};

std::uint32_t crc32(std::span<const std::uint8_t> bytes) noexcept;

}  // namespace vecstash
