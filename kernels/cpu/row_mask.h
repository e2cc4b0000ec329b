// Row eligibility bitsets (CodeView::allow): extraction of the bits of a run of rows.
// Internal to kernels/cpu.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vecstash::kernels::cpu {

/// Bits of rows [r0, r0 + rows) of `allow` (rows <= 64), row r0 in bit 0; all ones for a null bitset.
/// Reads only the words that hold those rows.
inline std::uint64_t allow_bits(const std::uint64_t* allow, std::size_t r0, std::size_t rows) noexcept {
  const std::uint64_t all = rows >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << rows) - 1;
  if (allow == nullptr || rows == 0) return rows == 0 ? 0 : all;
  const std::size_t w = r0 / 64, s = r0 % 64;
  std::uint64_t bits = allow[w] >> s;
  if (s != 0 && s + rows > 64) bits |= allow[w + 1] << (64 - s);
  return bits & all;
}

}  // namespace vecstash::kernels::cpu
