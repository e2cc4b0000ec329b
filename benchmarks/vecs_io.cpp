#include "benchmarks/vecs_io.h"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>
#include <type_traits>

namespace vecstash::bench {
namespace {

static_assert(std::endian::native == std::endian::little, "TEXMEX files are little-endian");

struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzHandle = std::unique_ptr<gzFile_s, GzCloser>;

template <typename T>
constexpr const char* format_name() {
  if constexpr (std::is_same_v<T, float>) return "fvecs";
  if constexpr (std::is_same_v<T, std::int32_t>) return "ivecs";
  return "bvecs";
}

// zlib reads plain files transparently, so one code path serves ".fvecs" and ".fvecs.gz".
Result<GzHandle> open_for_read(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::not_found(fmt::format("file not found: {}", path.string()));
  if (std::filesystem::is_directory(path, ec)) {
    return Status::invalid_argument(fmt::format("{} is a directory, not a vector file", path.string()));
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) return Status::not_found(fmt::format("cannot open {}: {}", path.string(), std::strerror(errno)));
  gzbuffer(f, 1 << 17);
  return GzHandle(f);
}

// Reads up to n bytes; returns the count (short only at the end of the data) or Corruption when
// the gzip stream is damaged or ends early.
Result<std::size_t> read_bytes(gzFile f, const std::filesystem::path& path, void* buf, std::size_t n) {
  auto* out = static_cast<unsigned char*>(buf);
  std::size_t done = 0;
  while (done < n) {
    const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, INT_MAX / 2));
    const int got = gzread(f, out + done, chunk);
    if (got < 0) {
      int err = 0;
      const char* msg = gzerror(f, &err);
      return Status::corruption(fmt::format("{}: read error: {}", path.string(), msg ? msg : "unknown"));
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  if (done < n) {
    int err = Z_OK;
    const char* msg = gzerror(f, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
      return Status::corruption(fmt::format("{}: damaged or truncated gzip data: {}", path.string(), msg ? msg : "?"));
    }
  }
  return done;
}

}  // namespace

bool is_gzip_name(const std::filesystem::path& path) { return path.extension() == ".gz"; }

void normalize_rows(FloatMatrix& m) {
  for (std::size_t i = 0; i < m.rows; ++i) {
    float* r = m.row(i);
    double ss = 0.0;
    for (std::size_t j = 0; j < m.cols; ++j) ss += static_cast<double>(r[j]) * r[j];
    if (ss <= 0.0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(ss));
    for (std::size_t j = 0; j < m.cols; ++j) r[j] *= inv;
  }
}

template <typename T>
Result<Matrix<T>> read_vecs(const std::filesystem::path& path, std::size_t max_rows) {
  auto handle = open_for_read(path);
  if (!handle.is_ok()) return handle.status();
  gzFile f = handle->get();

  Matrix<T> m;
  std::size_t row = 0;
  while (max_rows == 0 || row < max_rows) {
    std::int32_t dim = 0;
    auto got = read_bytes(f, path, &dim, sizeof dim);
    if (!got.is_ok()) return got.status();
    if (*got == 0) break;  // clean end of file
    if (*got != sizeof dim) {
      return Status::corruption(fmt::format("{}: truncated: row {} has a partial dimension header ({} of 4 bytes)",
                                            path.string(), row, *got));
    }
    if (dim <= 0 || dim > kMaxVecsDim) {
      return Status::corruption(fmt::format("{}: row {} has an invalid dimension {} (not a {} file?)", path.string(),
                                            row, dim, format_name<T>()));
    }
    if (row == 0) {
      m.cols = static_cast<std::size_t>(dim);
    } else if (static_cast<std::size_t>(dim) != m.cols) {
      return Status::corruption(
          fmt::format("{}: dimension changes at row {}: {} (row 0 has {})", path.string(), row, dim, m.cols));
    }
    m.data.resize((row + 1) * m.cols);
    const std::size_t want = m.cols * sizeof(T);
    got = read_bytes(f, path, m.data.data() + row * m.cols, want);
    if (!got.is_ok()) return got.status();
    if (*got != want) {
      return Status::corruption(
          fmt::format("{}: truncated: row {} has {} of {} value bytes", path.string(), row, *got, want));
    }
    ++row;
  }
  if (row == 0) return Status::corruption(fmt::format("{}: no vectors in file", path.string()));
  m.rows = row;
  m.data.shrink_to_fit();
  return m;
}

Result<FloatMatrix> read_float_vectors(const std::filesystem::path& path, std::size_t max_rows) {
  std::filesystem::path inner = is_gzip_name(path) ? path.stem() : path.filename();
  const auto ext = inner.extension();
  if (ext == ".fvecs") return read_vecs<float>(path, max_rows);
  if (ext == ".bvecs") {
    auto bytes = read_vecs<std::uint8_t>(path, max_rows);
    if (!bytes.is_ok()) return bytes.status();
    FloatMatrix m(bytes->rows, bytes->cols);
    for (std::size_t i = 0; i < m.data.size(); ++i) m.data[i] = static_cast<float>(bytes->data[i]);
    return m;
  }
  return Status::invalid_argument(
      fmt::format("{}: unknown vector format (expected .fvecs or .bvecs, optionally .gz)", path.string()));
}

template <typename T>
Status write_vecs(const std::filesystem::path& path, MatrixView<const T> rows) {
  if (rows.rows > 0 && (rows.cols == 0 || rows.cols > static_cast<std::size_t>(kMaxVecsDim))) {
    return Status::invalid_argument(fmt::format("{}: cannot write rows of dimension {}", path.string(), rows.cols));
  }
  // "T" = transparent (uncompressed) output through the same API.
  gzFile f = gzopen(path.c_str(), is_gzip_name(path) ? "wb6" : "wbT");
  if (f == nullptr)
    return Status::invalid_argument(fmt::format("cannot create {}: {}", path.string(), std::strerror(errno)));
  GzHandle handle(f);
  const std::int32_t dim = static_cast<std::int32_t>(rows.cols);
  const std::size_t bytes = rows.cols * sizeof(T);
  for (std::size_t i = 0; i < rows.rows; ++i) {
    if (gzwrite(f, &dim, sizeof dim) != static_cast<int>(sizeof dim) ||
        gzwrite(f, rows.row(i), static_cast<unsigned>(bytes)) != static_cast<int>(bytes)) {
      return Status::internal(fmt::format("{}: write failed at row {}", path.string(), i));
    }
  }
  if (gzclose(handle.release()) != Z_OK) return Status::internal(fmt::format("{}: close failed", path.string()));
  return Status::ok();
}

template Result<Matrix<float>> read_vecs<float>(const std::filesystem::path&, std::size_t);
template Result<Matrix<std::int32_t>> read_vecs<std::int32_t>(const std::filesystem::path&, std::size_t);
template Result<Matrix<std::uint8_t>> read_vecs<std::uint8_t>(const std::filesystem::path&, std::size_t);
template Status write_vecs<float>(const std::filesystem::path&, MatrixView<const float>);
template Status write_vecs<std::int32_t>(const std::filesystem::path&, MatrixView<const std::int32_t>);
template Status write_vecs<std::uint8_t>(const std::filesystem::path&, MatrixView<const std::uint8_t>);

}  // namespace vecstash::bench
