// Products of a small block of rows with a fixed matrix, on the SIMD dot_block of the kernel table
// (no BLAS). Internal to kernels/cpu; used by the relative transform and the alignment map.
//
// Determinism: every product goes through dot_block's 2 x 4 micro-kernel (the block is padded to an
// even number of rows, the fixed matrix to a multiple of 4 rows, both with zeros, and both to a leading
// dimension that is a multiple of 8), so each output element is the same float whatever the thread
// count, the block a row lands in, or its position there. Different ISAs may differ in the last bits
// (their summation orders differ).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "cpu/cpu_features.h"

namespace vecstash::kernels::cpu {

/// Rows processed together by multiply_block (an even number).
inline constexpr std::size_t kProductBlockRows = 32;

/// Leading dimension used for `cols` columns: a multiple of 8, at least 8.
inline std::size_t product_ld(std::size_t cols) noexcept { return std::max<std::size_t>(8, (cols + 7) / 8 * 8); }

/// `rows` x `cols` floats read at src[i * stride + j], laid out for multiply_block: leading dimension
/// product_ld(cols), zero rows up to a multiple of 4, zero columns up to the leading dimension.
inline std::vector<float> pad_matrix(const float* src, std::size_t rows, std::size_t cols, std::size_t stride) {
  const std::size_t ld = product_ld(cols);
  std::vector<float> out((rows + 3) / 4 * 4 * ld, 0.0f);
  for (std::size_t i = 0; i < rows; ++i) std::copy(src + i * stride, src + i * stride + cols, out.data() + i * ld);
  return out;
}

/// Matrix rows per dot_block call: about 64 KB of the matrix, which stays in L2 while a block of rows
/// streams over it. A multiple of 4.
inline std::size_t product_tile(std::size_t ld) noexcept { return std::max<std::size_t>(4, (16384 / ld) / 4 * 4); }

/// Scratch floats that multiply_block needs.
inline std::size_t product_scratch_size(std::size_t ld) noexcept { return kProductBlockRows * product_tile(ld); }

/// out[q * out_stride + r] = sum_j a[q * ld + j] * b[r * ld + j] for q < nq (<= kProductBlockRows) and
/// r < b_rows. `b` is from pad_matrix (leading dimension ld); `a` holds nq rows rounded up to an even
/// count, ld floats each, zero past the valid columns (and an all-zero last row when nq is odd).
/// `scratch` holds product_scratch_size(ld) floats.
inline void multiply_block(const KernelTable& t, const float* a, std::size_t nq, const float* b, std::size_t b_rows,
                           std::size_t ld, float* out, std::size_t out_stride, float* scratch) noexcept {
  const std::size_t nq_even = (nq + 1) / 2 * 2, tile = product_tile(ld);
  for (std::size_t r0 = 0; r0 < b_rows; r0 += tile) {
    const std::size_t valid = std::min(tile, b_rows - r0);
    const std::size_t padded = (valid + 3) / 4 * 4;
    t.dot_block(a, nq_even, b + r0 * ld, padded, ld, scratch);
    for (std::size_t q = 0; q < nq; ++q)
      std::copy(scratch + q * padded, scratch + q * padded + valid, out + q * out_stride + r0);
  }
}

/// Mean over rows i < m of cos(mapped_i, target_i), in double; mapped is m x dim contiguous, target
/// rows are `target_stride` floats apart. A pair with a zero (or non-finite) norm counts 0. Used for the
/// fit cosine of an alignment and the base cosine of a local correction, so the two agree exactly.
inline double mean_row_cosine(const float* mapped, const float* target, std::size_t target_stride, std::size_t m,
                              std::size_t dim) noexcept {
  double sum = 0.0;
  for (std::size_t i = 0; i < m; ++i) {
    double dot = 0.0, a2 = 0.0, b2 = 0.0;
    for (std::size_t j = 0; j < dim; ++j) {
      const double a = mapped[i * dim + j], b = target[i * target_stride + j];
      dot += a * b;
      a2 += a * a;
      b2 += b * b;
    }
    if (a2 > 0.0 && b2 > 0.0 && std::isfinite(a2)) sum += dot / (std::sqrt(a2) * std::sqrt(b2));
  }
  return m == 0 ? 0.0 : sum / static_cast<double>(m);
}

}  // namespace vecstash::kernels::cpu
