#include "vecstash/common/blob.h"

#include <array>
#include <cstring>

namespace vecstash {

std::uint32_t crc32(std::span<const std::uint8_t> bytes) noexcept {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  for (std::uint8_t b : bytes) c = table[(c ^ b) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

namespace {
template <typename T>
void put_le(std::vector<std::uint8_t>& out, T v) {
  for (std::size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
template <typename T>
T get_le(const std::uint8_t* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(static_cast<T>(p[i]) << (8 * i));
  return v;
}
}  // namespace

BlobWriter::BlobWriter(std::string_view magic, std::uint16_t version) {
  for (std::size_t i = 0; i < 4; ++i) out_.push_back(i < magic.size() ? static_cast<std::uint8_t>(magic[i]) : 0);
  u16(version);
}
void BlobWriter::u8(std::uint8_t v) { out_.push_back(v); }
void BlobWriter::u16(std::uint16_t v) { put_le(out_, v); }
void BlobWriter::u32(std::uint32_t v) { put_le(out_, v); }
void BlobWriter::u64(std::uint64_t v) { put_le(out_, v); }
void BlobWriter::f32s(std::span<const float> v) {
  u64(v.size());
  for (float f : v) {
    std::uint32_t b;
    std::memcpy(&b, &f, 4);
    u32(b);
  }
}
void BlobWriter::f64s(std::span<const double> v) {
  u64(v.size());
  for (double f : v) {
    std::uint64_t b;
    std::memcpy(&b, &f, 8);
    u64(b);
  }
}
void BlobWriter::bytes(std::span<const std::uint8_t> v) {
  u64(v.size());
  out_.insert(out_.end(), v.begin(), v.end());
}
std::vector<std::uint8_t> BlobWriter::finish() {
  const std::uint32_t c = crc32(out_);
  put_le(out_, c);
  return std::move(out_);
}

BlobReader::BlobReader(std::span<const std::uint8_t> blob, std::string what) : blob_(blob), what_(std::move(what)) {}

Status BlobReader::corrupt(std::string_view why) const {
  return Status::corruption(what_ + ": " + std::string(why));
}

Status BlobReader::open(std::string_view magic, std::uint16_t max_version, std::uint16_t* version) {
  if (blob_.size() < 4 + 2 + 4) return corrupt("blob too short (" + std::to_string(blob_.size()) + " bytes)");
  if (std::memcmp(blob_.data(), magic.data(), 4) != 0) return corrupt("bad magic");
  end_ = blob_.size() - 4;
  // The version is checked before the checksum so that a future format reports itself clearly.
  const std::uint16_t v = get_le<std::uint16_t>(blob_.data() + 4);
  if (v == 0 || v > max_version) {
    return corrupt("unsupported format version " + std::to_string(v) + " (this build reads up to " +
                   std::to_string(max_version) + ")");
  }
  const std::uint32_t stored = get_le<std::uint32_t>(blob_.data() + end_);
  if (crc32(blob_.first(end_)) != stored) return corrupt("checksum mismatch");
  pos_ = 6;
  *version = v;
  return Status::ok();
}

Status BlobReader::take(void* dst, std::size_t n) {
  if (end_ - pos_ < n || pos_ > end_) return corrupt("truncated");
  std::memcpy(dst, blob_.data() + pos_, n);
  pos_ += n;
  return Status::ok();
}

Status BlobReader::u8(std::uint8_t* v) { return take(v, 1); }
Status BlobReader::bytes(std::vector<std::uint8_t>* v, std::uint64_t max_count) {
  std::uint64_t n = 0;
  VECSTASH_RETURN_IF_ERROR(u64(&n));
  if (n > max_count || pos_ > end_ || n > end_ - pos_) return corrupt("bad byte string length");
  v->assign(blob_.begin() + static_cast<std::ptrdiff_t>(pos_), blob_.begin() + static_cast<std::ptrdiff_t>(pos_ + n));
  pos_ += n;
  return Status::ok();
}
Status BlobReader::string(std::string* v, std::uint64_t max_count) {
  std::vector<std::uint8_t> b;
  VECSTASH_RETURN_IF_ERROR(bytes(&b, max_count));
  v->assign(b.begin(), b.end());
  return Status::ok();
}
Status BlobReader::u16(std::uint16_t* v) {
  std::uint8_t b[2];
  VECSTASH_RETURN_IF_ERROR(take(b, 2));
  *v = get_le<std::uint16_t>(b);
  return Status::ok();
}
Status BlobReader::u32(std::uint32_t* v) {
  std::uint8_t b[4];
  VECSTASH_RETURN_IF_ERROR(take(b, 4));
  *v = get_le<std::uint32_t>(b);
  return Status::ok();
}
Status BlobReader::u64(std::uint64_t* v) {
  std::uint8_t b[8];
  VECSTASH_RETURN_IF_ERROR(take(b, 8));
  *v = get_le<std::uint64_t>(b);
  return Status::ok();
}
Status BlobReader::f32s(std::vector<float>* v, std::uint64_t max_count) {
  std::uint64_t n = 0;
  VECSTASH_RETURN_IF_ERROR(u64(&n));
  if (n > max_count || n * 4 > end_ - pos_) return corrupt("bad array length");
  v->resize(n);
  for (auto& f : *v) {
    std::uint32_t b = 0;
    VECSTASH_RETURN_IF_ERROR(u32(&b));
    std::memcpy(&f, &b, 4);
  }
  return Status::ok();
}
Status BlobReader::f64s(std::vector<double>* v, std::uint64_t max_count) {
  std::uint64_t n = 0;
  VECSTASH_RETURN_IF_ERROR(u64(&n));
  if (n > max_count || n * 8 > end_ - pos_) return corrupt("bad array length");
  v->resize(n);
  for (auto& f : *v) {
    std::uint64_t b = 0;
    VECSTASH_RETURN_IF_ERROR(u64(&b));
    std::memcpy(&f, &b, 8);
  }
  return Status::ok();
}
Status BlobReader::finish() const {
  if (pos_ != end_) return corrupt("trailing bytes");
  return Status::ok();
}

}  // namespace vecstash
