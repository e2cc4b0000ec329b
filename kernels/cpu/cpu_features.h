// Run-time CPU feature detection and the per-ISA kernel table (resolved once per process).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "vecstash/common/types.h"

namespace vecstash::kernels::cpu {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false, popcnt = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512vpopcntdq = false, avx512fp16 = false;
};
const CpuFeatures& cpu_features() noexcept;

/// sum_j a[j] * b[j] over float32 vectors (PCA projection, rescoring).
using DotF32Fn = float (*)(const float* a, const float* b, std::size_t dim) noexcept;
/// Elementwise f32 -> f16 with saturation (numeric::float_to_f16 semantics for finite input).
using F16EncodeFn = void (*)(const float* x, std::uint16_t* out, std::size_t n) noexcept;

/// Decode the raw values v(c) of `rows` code rows (not b1) into a row-major float tile with leading
/// dimension `ld` (>= dim, multiple of 8); columns dim..ld-1 are set to zero.
using DecodeTileFn = void (*)(CodeKind kind, const std::uint8_t* codes, std::size_t code_size, std::size_t rows,
                              std::size_t dim, std::size_t ld, float* tile) noexcept;
/// out[q * nrows + r] = sum_j queries[q * ld + j] * tile[r * ld + j] (ld a multiple of 8, zero padded).
using DotBlockFn = void (*)(const float* queries, std::size_t nq, const float* tile, std::size_t nrows,
                            std::size_t ld, float* out) noexcept;
/// popcount(a XOR b) over `words` 64-bit words (b may be unaligned).
using HammingFn = std::uint64_t (*)(const std::uint64_t* a, const std::uint8_t* b, std::size_t words) noexcept;

/// int8 encode: out[j] = clamp(rint((x[j] - offset[j]) * inv_scale[j]), -128, 127).
using I8EncodeFn = void (*)(const float* x, const float* offset, const float* inv_scale, std::uint8_t* out,
                            std::size_t dim) noexcept;

/// float -> float8 of n values (numeric::float_to_e4m3 / float_to_e5m2 semantics, bit for bit).
using Fp8ConvertFn = void (*)(bool e4m3, const float* x, std::uint8_t* out, std::size_t n) noexcept;

// ---- int8 candidate scan (i8_scan.cpp; the design is described there) ----
/// Rows per packed tile and queries per scoring call of the int8 candidate scan.
inline constexpr std::size_t kI8TileRows = 64;
inline constexpr std::size_t kI8QueryBlock = 4;
/// Largest magnitude of a quantised query element: |q| <= 64 and u8 codes <= 255 keep every pair sum of
/// vpmaddubsw (2 * 255 * 64 = 32640) inside int16, so nothing saturates.
inline constexpr int kI8QueryMax = 64;

/// Up to kI8QueryBlock quantised queries (arrays indexed by query).
struct I8ScanQueries {
  const std::int8_t* q = nullptr;      ///< count x (4 * steps) values in [-kI8QueryMax, kI8QueryMax], zero padded
  std::size_t count = 0;               ///< 1 .. kI8QueryBlock
  const std::int32_t* corr = nullptr;  ///< 128 * sum_j q[j]: removes the +128 of the packed codes
  const float* a = nullptr;            ///< q . offset (kCos: of the unit query q / ||q||)
  const float* b = nullptr;            ///< the quantisation step (float query = b * quantised query)
  const float* qq = nullptr;           ///< ||q||^2 (kL2)
  const float* threshold = nullptr;    ///< keys below this cannot enter the query's heap
};
/// A packed tile: blocks of 8 rows; per block `steps` groups of 32 bytes (8 rows x 4 consecutive
/// dimensions, row-major within the group), each code byte stored as c + 128 (u8); padding bytes 0.
struct I8ScanTile {
  const std::uint8_t* packed = nullptr;
  std::size_t rows = 0;             ///< rows in the tile, a multiple of 16, <= kI8TileRows
  std::size_t steps = 0;            ///< ceil(dim / 4)
  const float* row_term = nullptr;  ///< per row: ||x_hat||^2 (kL2), 1 / ||x_hat|| or 0 (kCos); unused for kIp
};
/// Packs `rows` (<= kI8TileRows) int8 code rows (dim code bytes each, `code_size` bytes apart) into
/// the I8ScanTile layout with steps = ceil(dim / 4), adding zero rows up to a multiple of 16.
using I8PackFn = void (*)(const std::uint8_t* codes, std::size_t code_size, std::size_t rows, std::size_t dim,
                          std::uint8_t* packed) noexcept;
/// Group `s` (dimensions 4s .. 4s+3) of one row in the packed layout: c + 128, zero past `dim`.
inline void i8_pack_group(const std::uint8_t* row, std::size_t dim, std::size_t s, std::uint8_t* dst) noexcept {
  for (std::size_t u = 0; u < 4; ++u) dst[u] = 4 * s + u < dim ? static_cast<std::uint8_t>(row[4 * s + u] ^ 0x80u) : 0;
}

/// keys[i * kI8TileRows + r] = key of row r for query i (higher is better), with acc the exact int32
/// sum_j packed[j] * q[j]:  ip = a + b * float(acc - corr);  kIp: ip;  kCos: ip * row_term;
/// kL2: -((qq - 2 * ip) + row_term), evaluated in this order without FMA (every ISA bit-identical).
/// hits[i] has bit r set iff that key >= threshold[i]. Only the keys of hit rows need to be written.
using I8ScoreFn = void (*)(Metric metric, const I8ScanQueries& queries, const I8ScanTile& tile, float* keys,
                           std::uint64_t* hits) noexcept;

struct KernelTable {
  const char* isa = "generic";
  DotF32Fn dot_f32 = nullptr;
  F16EncodeFn encode_f16 = nullptr;
  DecodeTileFn decode_tile = nullptr;
  DotBlockFn dot_block = nullptr;
  HammingFn hamming = nullptr;
  I8EncodeFn encode_i8 = nullptr;
  Fp8ConvertFn convert_fp8 = nullptr;
  I8PackFn i8_pack = nullptr;
  I8ScoreFn i8_score = nullptr;
};

/// The table for the best ISA this processor supports. VECSTASH_ISA=generic forces the portable one;
/// VECSTASH_ISA=avx512 opts in to the AVX-512 kernels (not chosen by default until validated on
/// AVX-512 hardware).
const KernelTable& kernels() noexcept;
/// Tables by name, for tests that compare ISAs: "generic", "avx2", "avx512". Null if unsupported here.
const KernelTable* kernels_for(const std::string& isa) noexcept;

// Per-ISA factories (simd_*.cpp).
KernelTable make_generic_table() noexcept;
KernelTable make_avx2_table() noexcept;
KernelTable make_avx512_table() noexcept;  // AVX2 table with AVX-512 overrides

}  // namespace vecstash::kernels::cpu
