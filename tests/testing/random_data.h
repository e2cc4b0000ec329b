// Deterministic test data (fixed seeds): Gaussian rows, planted low-rank data, and simple helpers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "vecstash/common/types.h"

namespace vecstash::testing {

/// Row-major float matrix owned by the test.
struct Matrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> data;
  Matrix() = default;
  Matrix(std::size_t r, std::size_t c) : rows(r), cols(c), data(r * c) {}
  MatrixView<const float> view() const { return {data.data(), rows, cols}; }
  MatrixView<float> mut() { return {data.data(), rows, cols}; }
  float* row(std::size_t i) { return data.data() + i * cols; }
  const float* row(std::size_t i) const { return data.data() + i * cols; }
};

/// i.i.d. N(mean, stddev^2) entries.
Matrix gaussian(std::size_t rows, std::size_t cols, std::uint64_t seed, float mean = 0.0f, float stddev = 1.0f);
/// Anisotropic data: column j has its own mean and spread (like real embeddings).
Matrix anisotropic(std::size_t rows, std::size_t cols, std::uint64_t seed);
/// Clustered rows, like embeddings: offset + a random one of `centres` N(0, 1) centres + noise, the
/// offset N(0, offset_sd^2) per column (shared by all rows) and the noise N(0, noise_sd^2) per entry.
Matrix clustered_rows(std::size_t rows, std::size_t cols, std::uint64_t seed, std::size_t centres, float offset_sd,
                      float noise_sd);
/// Rows = mean + U * diag(sigmas) * z + noise * e, U a random orthonormal cols x rank basis.
/// `basis` (rank x cols) receives U^T when non-null.
Matrix planted_low_rank(std::size_t rows, std::size_t cols, const std::vector<float>& sigmas, float noise,
                        std::uint64_t seed, Matrix* basis = nullptr);
/// rows x cols matrix with orthonormal rows (rows <= cols; rows == cols gives an orthogonal matrix),
/// row-major, in double: Gram-Schmidt (twice) on Gaussian vectors.
std::vector<double> orthonormal_rows(std::size_t rows, std::size_t cols, std::uint64_t seed);
/// A rows x cols row-major double array as a float Matrix; `transpose` reads it as cols x rows.
Matrix to_float(const std::vector<double>& v, std::size_t rows, std::size_t cols, bool transpose = false);
/// Scale each row to unit L2 norm (zero rows are left as they are).
void normalize_rows(Matrix& m);

}  // namespace vecstash::testing
