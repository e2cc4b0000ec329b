// Reading and writing TEXMEX vector files, optionally gzip-compressed:
//   .fvecs  per row: int32 dimension d, then d float32
//   .ivecs  per row: int32 dimension d, then d int32
//   .bvecs  per row: int32 dimension d, then d uint8
// All little-endian. A name ending in ".gz" is read and written through zlib.
//
// Readers check every row: a dimension that is not positive or implausibly large, a dimension that
// differs from the first row's, and a file that ends inside a row (or a damaged gzip stream) all give
// Corruption with the file name and the row; a missing file gives NotFound.
// Thread safety: free functions without shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"

namespace vecstash::bench {

/// A row-major matrix owned by the benchmark (rows x cols).
template <typename T>
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<T> data;

  Matrix() = default;
  Matrix(std::size_t r, std::size_t c) : rows(r), cols(c), data(r * c) {}
  MatrixView<const T> view() const { return {data.data(), rows, cols}; }
  MatrixView<T> mut() { return {data.data(), rows, cols}; }
  T* row(std::size_t i) { return data.data() + i * cols; }
  const T* row(std::size_t i) const { return data.data() + i * cols; }
  bool empty() const { return rows == 0; }
};

using FloatMatrix = Matrix<float>;

/// Largest dimension a reader accepts; a larger header means the file is not what it claims to be.
inline constexpr std::int32_t kMaxVecsDim = 1 << 20;

/// Read a whole .fvecs / .ivecs / .bvecs file (element type float, int32_t or uint8_t respectively).
/// `max_rows` > 0 stops after that many rows. A file with no rows is Corruption ("no vectors").
template <typename T>
Result<Matrix<T>> read_vecs(const std::filesystem::path& path, std::size_t max_rows = 0);

/// Read float vectors from .fvecs or .bvecs (uint8 converted to float), each optionally ".gz",
/// choosing the format by the file name.
Result<FloatMatrix> read_float_vectors(const std::filesystem::path& path, std::size_t max_rows = 0);

/// Write rows in the TEXMEX format for T (gzip when the name ends in ".gz"). cols must be >= 1.
template <typename T>
Status write_vecs(const std::filesystem::path& path, MatrixView<const T> rows);

/// Scale each row to unit L2 norm in place (zero rows are left as they are).
void normalize_rows(FloatMatrix& m);

/// True when the file name ends with ".gz".
bool is_gzip_name(const std::filesystem::path& path);

}  // namespace vecstash::bench
