// An endless, deterministic source of embedding-like rows for scale benchmarks: any block of rows
// can be generated on its own (row i depends only on the seed and i), so a benchmark can stream ten
// million rows into a server and later stream them again for the exact ground truth, without ever
// holding them.
//
// Shape, after the real sentence embeddings in ../shared/data: a shared mean direction (embeddings
// are anisotropic), 1,024 clusters, and a decaying spectrum (coordinate j has spread
// 1 / sqrt(1 + j / 16)); a row is mean + its cluster's centre + noise, the noise a random
// combination of four of 8,192 pooled Gaussian vectors (cheap, and no two rows share it).
//
// Thread safety: const methods may be called concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vecstash::bench {

class EmbeddingStream {
 public:
  EmbeddingStream(std::size_t dim, std::uint64_t seed);
  std::size_t dim() const noexcept { return dim_; }
  /// Rows [first, first + n) into out (n x dim, row-major), not normalised.
  void rows(std::size_t first, std::size_t n, float* out) const;
  /// The cluster of row i (0..clusters-1).
  std::size_t cluster_of(std::size_t i) const noexcept;

  static constexpr std::size_t kClusters = 1024;
  static constexpr std::size_t kPool = 8192;

 private:
  std::uint64_t row_hash(std::size_t i, std::uint64_t salt) const noexcept;
  std::size_t dim_;
  std::uint64_t seed_;
  std::vector<float> mean_;     // dim
  std::vector<float> centres_;  // kClusters x dim
  std::vector<float> pool_;     // kPool x dim
};

}  // namespace vecstash::bench
