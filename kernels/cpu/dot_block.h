// The blocking of dot_block shared by the SIMD tables: 2 queries x 4 rows per micro-kernel call,
// then the remainders. `Micro` is a type local to each per-ISA translation unit with a member
// template run<QB, RB>(q, t, ld, nrows, out), so every ISA gets its own instantiation.
#pragma once

#include <cstddef>

namespace vecstash::kernels::cpu {

template <typename Micro>
inline void blocked_dot(const float* queries, std::size_t nq, const float* tile, std::size_t nrows, std::size_t ld,
                        float* out) noexcept {
  std::size_t q = 0;
  for (; q + 2 <= nq; q += 2) {
    std::size_t r = 0;
    for (; r + 4 <= nrows; r += 4) Micro::template run<2, 4>(queries + q * ld, tile + r * ld, ld, nrows, out + q * nrows + r);
    for (; r < nrows; ++r) Micro::template run<2, 1>(queries + q * ld, tile + r * ld, ld, nrows, out + q * nrows + r);
  }
  for (; q < nq; ++q) {
    std::size_t r = 0;
    for (; r + 4 <= nrows; r += 4) Micro::template run<1, 4>(queries + q * ld, tile + r * ld, ld, nrows, out + q * nrows + r);
    for (; r < nrows; ++r) Micro::template run<1, 1>(queries + q * ld, tile + r * ld, ld, nrows, out + q * nrows + r);
  }
}

}  // namespace vecstash::kernels::cpu
