#include "originals.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace vecstash::engine {

static_assert(std::endian::native == std::endian::little, "originals are stored little-endian");

namespace {
constexpr std::size_t kReadBlockRows = 8192;
}  // namespace

Result<std::unique_ptr<Originals>> Originals::create(const std::filesystem::path& path, std::size_t dim, bool in_ram) {
  auto file = storage::RowFile::create(path, dim * sizeof(float), tag(dim));
  if (!file.is_ok()) return file.status();
  std::unique_ptr<Originals> o(new Originals(std::move(*file), dim));
  o->in_ram_ = in_ram;
  return o;
}

Result<std::unique_ptr<Originals>> Originals::open(const std::filesystem::path& path, std::size_t dim, std::size_t rows,
                                                   bool in_ram) {
  auto file = storage::RowFile::open(path, dim * sizeof(float), tag(dim));
  if (!file.is_ok()) return file.status();
  if ((*file)->rows_on_disk() < rows) {
    return Status::corruption(path.string() + " holds " + std::to_string((*file)->rows_on_disk()) + " rows, expected " +
                              std::to_string(rows));
  }
  std::unique_ptr<Originals> o(new Originals(std::move(*file), dim));
  VECSTASH_RETURN_IF_ERROR(o->set_in_ram(in_ram, rows));
  return o;
}

Status Originals::persist(std::size_t first_row, const float* rows, std::size_t n) {
  return file_->write(first_row, {reinterpret_cast<const std::uint8_t*>(rows), n * dim_ * sizeof(float)});
}

void Originals::apply(std::size_t first_row, const float* rows, std::size_t n) {
  if (!in_ram_) return;
  ram_.resize((first_row + n) * dim_);
  std::memcpy(ram_.data() + first_row * dim_, rows, n * dim_ * sizeof(float));
}

Status Originals::read_rows(std::span<const std::size_t> rows, float* out) const {
  if (in_ram_) {
    for (std::size_t i = 0; i < rows.size(); ++i) std::memcpy(out + i * dim_, ram_.data() + rows[i] * dim_, dim_ * 4);
    return Status::ok();
  }
  return file_->read_rows(rows, reinterpret_cast<std::uint8_t*>(out));
}

Status Originals::read_range(std::size_t first, std::size_t n, float* out) const {
  if (in_ram_) {
    std::memcpy(out, ram_.data() + first * dim_, n * dim_ * sizeof(float));
    return Status::ok();
  }
  return file_->read(first, {reinterpret_cast<std::uint8_t*>(out), n * dim_ * sizeof(float)});
}

Status Originals::set_in_ram(bool in_ram, std::size_t rows) {
  if (!in_ram) {
    ram_.clear();
    in_ram_ = false;
    return Status::ok();
  }
  if (in_ram_ && ram_.size() == rows * dim_) return Status::ok();
  MappedArray<float> copy(rows * dim_);
  for (std::size_t begin = 0; begin < rows; begin += kReadBlockRows) {
    const std::size_t n = std::min(kReadBlockRows, rows - begin);
    VECSTASH_RETURN_IF_ERROR(
        file_->read(begin, {reinterpret_cast<std::uint8_t*>(copy.data() + begin * dim_), n * dim_ * sizeof(float)}));
  }
  ram_ = std::move(copy);
  in_ram_ = true;
  return Status::ok();
}

}  // namespace vecstash::engine
