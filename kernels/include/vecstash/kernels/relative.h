// Relative representations (Moschella et al., "Relative representations enable zero-shot latent space
// communication", ICLR 2023): a row x is described by its cosine similarities to m fixed anchors,
//   rel(x)[a] = cos(x - mu, A_a - mu),   a = 0 .. m-1,
// with mu the anchors' mean when RelativeOptions::center is set (else 0). Two embedding models that
// embed the same anchors give comparable m-dimensional vectors, so rows of either can be searched
// together; the relative vectors can then be stored with any Codec of dimension m.
//
// Computation (CPU reference, kernels/cpu/relative.cpp): the anchors are centred and normalised once
// (in double, stored as float). Each row is centred and normalised in double and rounded to float:
//   u[j] = float((double(x[j]) - double(mu[j])) / ||x - mu||)      (all zeros when ||x - mu|| = 0)
// and rel[a] = u . unit_anchor[a] is a float dot product (the SIMD kernel of the search path). The
// result for a row does not depend on the thread count or on the other rows of the batch; it may
// differ in the last bits between processor kinds (ISA) and from the GPU (see gpu.h for the tolerance).
//
// Thread safety: a RelativeBasis is immutable after make(); const methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::kernels {

struct RelativeOptions {
  /// Subtract the anchors' mean from rows and anchors before the cosine (default off: plain cosine to
  /// the anchors, as in the paper). With centring, a single anchor (or identical anchors) is rejected:
  /// it is zero after centring.
  bool center = false;
  bool operator==(const RelativeOptions&) const = default;
};

/// Largest number of anchors (and largest row dimension) accepted by RelativeBasis::make.
inline constexpr std::size_t kMaxRelativeAnchors = std::size_t{1} << 16;

class RelativeBasis {
 public:
  /// An empty basis: ready() is false and every operation returns FailedPrecondition.
  RelativeBasis() = default;

  /// anchors: m x d (1 <= m <= 65536, 1 <= d <= 65536, finite values). InvalidArgument for a bad
  /// shape, a non-finite value, or an anchor that is zero (after centring).
  static Result<RelativeBasis> make(MatrixView<const float> anchors, const RelativeOptions& options);

  bool ready() const noexcept { return ready_; }
  /// d, the dimension of the rows (and anchors).
  std::size_t dim() const noexcept { return dim_; }
  /// m, the number of anchors = the dimension of the relative vectors.
  std::size_t anchors() const noexcept { return anchors_; }
  const RelativeOptions& options() const noexcept { return options_; }
  /// m x d row-major: (A_a - mu) / ||A_a - mu||, host memory.
  std::span<const float> unit_anchors() const noexcept { return unit_; }
  /// d floats: the anchors' mean (computed in double) with center, all zeros without.
  std::span<const float> mean() const noexcept { return mean_; }

  /// out (n x m): out[i][a] = cos(x_i - mu, A_a - mu); a row that is zero (after centring) gives zeros.
  /// rows: n x d, finite (validate_rows); n = 0 is valid. out may be strided. threads: 0 = all.
  Status transform(MatrixView<const float> rows, MatrixView<float> out, int threads = 0) const;

  /// Fused transform + encode: the relative vectors of `rows` encoded with `codec` (codec.dim() must
  /// equal anchors()) into `codes` (n * codec.code_size() bytes) and, when non-empty, `sq_norms` (n
  /// floats, as Codec::encode), block by block (no n x m float buffer for the whole input). The codes
  /// are byte-identical to codec.encode(transform(rows)). threads: 0 = all.
  Status encode(const Codec& codec, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                std::span<float> sq_norms = {}, int threads = 0) const;

 private:
  RelativeOptions options_;
  std::size_t dim_ = 0;
  std::size_t anchors_ = 0;
  std::vector<float> unit_;  // m x d
  std::vector<float> mean_;  // d
  // The unit anchors laid out for the CPU's SIMD product (kernels/cpu/row_products.h): rows rounded up
  // to a multiple of 4, columns to a multiple of 8, zero padded.
  std::vector<float> padded_;
  bool ready_ = false;
};

}  // namespace vecstash::kernels
