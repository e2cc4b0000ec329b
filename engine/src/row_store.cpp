#include "row_store.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vecstash::engine {

namespace {

// Rows per block when a whole file is read or written.
constexpr std::size_t kFileBlockRows = 16384;

}  // namespace

std::vector<std::size_t> RowStore::live_rows() const {
  std::vector<std::size_t> out;
  out.reserve(live_count_);
  for (std::size_t w = 0; w < live_.size(); ++w) {
    for (std::uint64_t bits = live_[w]; bits != 0; bits &= bits - 1) {
      out.push_back(w * 64 + static_cast<std::size_t>(std::countr_zero(bits)));
    }
  }
  return out;
}

void RowStore::grow_to(std::size_t rows) {
  ids_.resize(rows);
  codes_.resize(rows * code_size_);
  if (has_norms_) norms_.resize(rows);
  live_.resize((rows + 63) / 64);
}

void RowStore::append(std::span<const PointId> ids, const std::uint8_t* codes, const float* norms,
                      std::vector<std::size_t>* replaced) {
  const std::size_t first = rows(), n = ids.size();
  grow_to(first + n);
  if (n * code_size_ > 0) std::memcpy(codes_.data() + first * code_size_, codes, n * code_size_);
  if (has_norms_ && norms != nullptr) std::memcpy(norms_.data() + first, norms, n * sizeof(float));
  std::copy(ids.begin(), ids.end(), ids_.data() + first);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t row = first + i;
    if (const auto old = id_to_row_.assign(ids[i], static_cast<std::uint32_t>(row), ids_.span())) {
      if (test_bit(live_.data(), *old)) {
        clear_bit(live_.data(), *old);
        --live_count_;
        if (replaced) replaced->push_back(*old);
      }
    }
    set_bit(live_.data(), row);
    ++live_count_;
  }
}

void RowStore::kill(std::size_t row) {
  if (!is_live(row)) return;
  id_to_row_.erase(ids_[row], ids_.span());
  clear_bit(live_.data(), row);
  --live_count_;
}

void RowStore::kill_loaded(std::size_t row) {
  if (!is_live(row)) return;
  clear_bit(live_.data(), row);
  --live_count_;
}

std::string RowStore::file_tag() const {
  return "rows c" + std::to_string(code_size_) + " n" + (has_norms_ ? "1" : "0");
}

std::vector<std::uint8_t> RowStore::records(std::span<const PointId> ids, const std::uint8_t* codes,
                                            const float* norms) const {
  const std::size_t rs = record_size(), n = ids.size();
  std::vector<std::uint8_t> out(n * rs);
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t* rec = out.data() + i * rs;
    const std::string key = ids[i].key();
    std::memcpy(rec, key.data(), PointId::kKeySize);
    if (code_size_ > 0) std::memcpy(rec + PointId::kKeySize, codes + i * code_size_, code_size_);
    if (has_norms_) std::memcpy(rec + PointId::kKeySize + code_size_, norms + i, sizeof(float));
  }
  return out;
}

Status RowStore::load(const storage::RowFile& file, std::size_t rows) {
  ids_.clear();
  codes_.clear();
  norms_.clear();
  live_.clear();
  id_to_row_.clear();
  grow_to(rows);
  const std::size_t rs = record_size();
  std::vector<std::uint8_t> block;
  for (std::size_t begin = 0; begin < rows; begin += kFileBlockRows) {
    const std::size_t n = std::min(kFileBlockRows, rows - begin);
    block.resize(n * rs);
    VECSTASH_RETURN_IF_ERROR(file.read(begin, block));
    for (std::size_t i = 0; i < n; ++i) {
      const std::uint8_t* rec = block.data() + i * rs;
      auto id = PointId::from_key({reinterpret_cast<const char*>(rec), PointId::kKeySize});
      if (!id.is_ok()) {
        return Status::corruption(file.path().string() + ": row " + std::to_string(begin + i) + ": " +
                                  id.status().message());
      }
      const std::size_t row = begin + i;
      ids_[row] = *id;
      if (code_size_ > 0) std::memcpy(codes_.data() + row * code_size_, rec + PointId::kKeySize, code_size_);
      if (has_norms_) std::memcpy(norms_.data() + row, rec + PointId::kKeySize + code_size_, sizeof(float));
    }
  }
  std::fill(live_.begin(), live_.end(), ~std::uint64_t{0});
  if (rows % 64 != 0) live_[rows / 64] = (std::uint64_t{1} << (rows % 64)) - 1;
  live_count_ = rows;
  return Status::ok();
}

void RowStore::finish_load() {
  id_to_row_.clear();
  id_to_row_.reserve(live_count_, ids_.span());
  for (std::size_t w = 0; w < live_.size(); ++w) {
    for (std::uint64_t bits = live_[w]; bits != 0; bits &= bits - 1) {
      const std::size_t row = w * 64 + static_cast<std::size_t>(std::countr_zero(bits));
      // A later row of the same id (an interrupted replace) wins, as it did when written.
      if (const auto old = id_to_row_.assign(ids_[row], static_cast<std::uint32_t>(row), ids_.span())) {
        clear_bit(live_.data(), *old);
        --live_count_;
      }
    }
  }
}

Status RowStore::write_all(storage::RowFile& file) const {
  for (std::size_t begin = 0; begin < rows(); begin += kFileBlockRows) {
    const std::size_t n = std::min(kFileBlockRows, rows() - begin);
    const auto recs = records(ids_.span().subspan(begin, n), codes_.data() + begin * code_size_,
                              has_norms_ ? norms_.data() + begin : nullptr);
    VECSTASH_RETURN_IF_ERROR(file.write(begin, recs));
  }
  return Status::ok();
}

void RowStore::replace_codes(std::size_t code_size, bool norms, MappedArray<std::uint8_t> codes,
                             MappedArray<float> norm_values) {
  code_size_ = code_size;
  has_norms_ = norms;
  codes_ = std::move(codes);
  norms_ = std::move(norm_values);
}

}  // namespace vecstash::engine
