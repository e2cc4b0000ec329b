#include "testing/random_data.h"

#include <cmath>
#include <random>

namespace vecstash::testing {

Matrix gaussian(std::size_t rows, std::size_t cols, std::uint64_t seed, float mean, float stddev) {
  Matrix m(rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  for (auto& v : m.data) v = dist(rng);
  return m;
}

Matrix clustered_rows(std::size_t rows, std::size_t cols, std::uint64_t seed, std::size_t centres, float offset_sd,
                      float noise_sd) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  Matrix c(centres, cols), out(rows, cols);
  std::vector<float> offset(cols);
  for (auto& v : offset) v = offset_sd * g(rng);
  for (auto& v : c.data) v = g(rng);
  for (std::size_t i = 0; i < rows; ++i) {
    const float* centre = c.row(rng() % centres);
    for (std::size_t j = 0; j < cols; ++j) out.row(i)[j] = offset[j] + centre[j] + noise_sd * g(rng);
  }
  return out;
}

Matrix anisotropic(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  Matrix m(rows, cols);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> unit(0.0f, 1.0f);
  std::uniform_real_distribution<float> spread(0.05f, 2.0f);
  std::vector<float> mu(cols), sd(cols);
  for (std::size_t j = 0; j < cols; ++j) {
    mu[j] = 0.5f * unit(rng);
    sd[j] = spread(rng);
  }
  for (std::size_t i = 0; i < rows; ++i)
    for (std::size_t j = 0; j < cols; ++j) m.row(i)[j] = mu[j] + sd[j] * unit(rng);
  return m;
}

Matrix planted_low_rank(std::size_t rows, std::size_t cols, const std::vector<float>& sigmas, float noise,
                        std::uint64_t seed, Matrix* basis) {
  const std::size_t rank = sigmas.size();
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> unit(0.0, 1.0);
  // Gram-Schmidt on random vectors gives an orthonormal basis (rank x cols).
  std::vector<std::vector<double>> u(rank, std::vector<double>(cols));
  for (std::size_t r = 0; r < rank; ++r) {
    for (auto& v : u[r]) v = unit(rng);
    for (std::size_t p = 0; p < r; ++p) {
      double dot = 0;
      for (std::size_t j = 0; j < cols; ++j) dot += u[r][j] * u[p][j];
      for (std::size_t j = 0; j < cols; ++j) u[r][j] -= dot * u[p][j];
    }
    double n = 0;
    for (double v : u[r]) n += v * v;
    n = std::sqrt(n);
    for (auto& v : u[r]) v /= n;
  }
  std::vector<double> mean(cols);
  for (auto& v : mean) v = unit(rng);
  Matrix m(rows, cols);
  std::vector<double> z(rank);
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t r = 0; r < rank; ++r) z[r] = sigmas[r] * unit(rng);
    for (std::size_t j = 0; j < cols; ++j) {
      double v = mean[j] + noise * unit(rng);
      for (std::size_t r = 0; r < rank; ++r) v += u[r][j] * z[r];
      m.row(i)[j] = static_cast<float>(v);
    }
  }
  if (basis) {
    *basis = Matrix(rank, cols);
    for (std::size_t r = 0; r < rank; ++r)
      for (std::size_t j = 0; j < cols; ++j) basis->row(r)[j] = static_cast<float>(u[r][j]);
  }
  return m;
}

void normalize_rows(Matrix& m) {
  for (std::size_t i = 0; i < m.rows; ++i) {
    double n = 0;
    for (std::size_t j = 0; j < m.cols; ++j) n += double(m.row(i)[j]) * m.row(i)[j];
    if (n == 0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(n));
    for (std::size_t j = 0; j < m.cols; ++j) m.row(i)[j] *= inv;
  }
}

std::vector<double> orthonormal_rows(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<double> q(rows * cols);
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t j = 0; j < cols; ++j) q[r * cols + j] = g(rng);
    for (int pass = 0; pass < 2; ++pass)
      for (std::size_t p = 0; p < r; ++p) {
        double dot = 0;
        for (std::size_t j = 0; j < cols; ++j) dot += q[r * cols + j] * q[p * cols + j];
        for (std::size_t j = 0; j < cols; ++j) q[r * cols + j] -= dot * q[p * cols + j];
      }
    double n = 0;
    for (std::size_t j = 0; j < cols; ++j) n += q[r * cols + j] * q[r * cols + j];
    for (std::size_t j = 0; j < cols; ++j) q[r * cols + j] /= std::sqrt(n);
  }
  return q;
}

Matrix to_float(const std::vector<double>& v, std::size_t rows, std::size_t cols, bool transpose) {
  Matrix m(rows, cols);
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c)
      m.row(r)[c] = static_cast<float>(transpose ? v[c * rows + r] : v[r * cols + c]);
  return m;
}

}  // namespace vecstash::testing
