#include "benchmarks/embedding_stream.h"

#include <cmath>

namespace vecstash::bench {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Standard normal values from a counter (Box-Muller on two hashed uniforms).
double normal(std::uint64_t seed, std::uint64_t counter) noexcept {
  const double u1 = (static_cast<double>(mix(seed ^ mix(2 * counter)) >> 11) + 0.5) * 0x1.0p-53;
  const double u2 = (static_cast<double>(mix(seed ^ mix(2 * counter + 1)) >> 11) + 0.5) * 0x1.0p-53;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

}  // namespace

EmbeddingStream::EmbeddingStream(std::size_t dim, std::uint64_t seed)
    : dim_(dim), seed_(seed), mean_(dim), centres_(kClusters * dim), pool_(kPool * dim) {
  std::uint64_t counter = 0;
  std::vector<double> spread(dim);
  for (std::size_t j = 0; j < dim; ++j) spread[j] = 1.0 / std::sqrt(1.0 + static_cast<double>(j) / 16.0);
  for (std::size_t j = 0; j < dim; ++j) mean_[j] = static_cast<float>(0.6 * spread[j] * normal(seed, counter++));
  for (std::size_t c = 0; c < kClusters; ++c) {
    for (std::size_t j = 0; j < dim; ++j) {
      centres_[c * dim + j] = static_cast<float>(0.7 * spread[j] * normal(seed, counter++));
    }
  }
  for (std::size_t p = 0; p < kPool; ++p) {
    for (std::size_t j = 0; j < dim; ++j) {
      pool_[p * dim + j] = static_cast<float>(0.55 * spread[j] * normal(seed, counter++));
    }
  }
}

std::uint64_t EmbeddingStream::row_hash(std::size_t i, std::uint64_t salt) const noexcept {
  return mix(seed_ ^ mix(static_cast<std::uint64_t>(i) * 8 + salt + 0x51ED27ull));
}

std::size_t EmbeddingStream::cluster_of(std::size_t i) const noexcept { return row_hash(i, 0) % kClusters; }

void EmbeddingStream::rows(std::size_t first, std::size_t n, float* out) const {
  for (std::size_t r = 0; r < n; ++r) {
    const std::size_t i = first + r;
    const float* centre = centres_.data() + cluster_of(i) * dim_;
    const float* p[4];
    float w[4];
    double norm = 0.0;
    for (int k = 0; k < 4; ++k) {
      const std::uint64_t h = row_hash(i, 1 + static_cast<std::uint64_t>(k));
      p[k] = pool_.data() + (h % kPool) * dim_;
      w[k] = static_cast<float>(static_cast<double>(h >> 40) / static_cast<double>(1ull << 24) * 2.0 - 1.0);
      norm += static_cast<double>(w[k]) * w[k];
    }
    const float scale = static_cast<float>(1.0 / std::sqrt(norm > 1e-12 ? norm : 1.0));
    float* row = out + r * dim_;
    for (std::size_t j = 0; j < dim_; ++j) {
      row[j] = mean_[j] + centre[j] + scale * (w[0] * p[0][j] + w[1] * p[1][j] + w[2] * p[2][j] + w[3] * p[3][j]);
    }
  }
}

}  // namespace vecstash::bench
