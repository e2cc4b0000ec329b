// Portable kernels: the reference semantics for every ISA-specific table.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "cpu/codec_rows.h"
#include "cpu/cpu_features.h"
#include "vecstash/common/numeric.h"

namespace vecstash::kernels::cpu {
namespace {

float dot_f32(const float* a, const float* b, std::size_t dim) noexcept {
  float s = 0;
  for (std::size_t j = 0; j < dim; ++j) s += a[j] * b[j];
  return s;
}

void encode_f16(const float* x, std::uint16_t* out, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = numeric::float_to_f16(x[i]);
}

void decode_tile(CodeKind kind, const std::uint8_t* codes, std::size_t code_size, std::size_t rows, std::size_t dim,
                 std::size_t ld, float* tile) noexcept {
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* c = codes + r * code_size;
    float* t = tile + r * ld;
    for (std::size_t j = 0; j < dim; ++j) t[j] = code_value(kind, c, j);
    for (std::size_t j = dim; j < ld; ++j) t[j] = 0.0f;
  }
}

void dot_block(const float* queries, std::size_t nq, const float* tile, std::size_t nrows, std::size_t ld,
               float* out) noexcept {
  for (std::size_t q = 0; q < nq; ++q)
    for (std::size_t r = 0; r < nrows; ++r) {
      float s = 0;
      for (std::size_t j = 0; j < ld; ++j) s += queries[q * ld + j] * tile[r * ld + j];
      out[q * nrows + r] = s;
    }
}

std::uint64_t hamming(const std::uint64_t* a, const std::uint8_t* b, std::size_t words) noexcept {
  std::uint64_t d = 0;
  for (std::size_t w = 0; w < words; ++w) {
    std::uint64_t x;
    std::memcpy(&x, b + 8 * w, 8);
    d += static_cast<std::uint64_t>(std::popcount(a[w] ^ x));
  }
  return d;
}

void encode_i8(const float* x, const float* offset, const float* inv, std::uint8_t* out, std::size_t dim) noexcept {
  for (std::size_t j = 0; j < dim; ++j) {
    float c = std::rint((x[j] - offset[j]) * inv[j]);
    c = std::min(127.0f, std::max(-128.0f, c));
    out[j] = static_cast<std::uint8_t>(static_cast<std::int8_t>(c));
  }
}

void convert_fp8(bool e4m3, const float* x, std::uint8_t* out, std::size_t n) noexcept {
  if (e4m3)
    for (std::size_t i = 0; i < n; ++i) out[i] = numeric::float_to_e4m3(x[i]);
  else
    for (std::size_t i = 0; i < n; ++i) out[i] = numeric::float_to_e5m2(x[i]);
}

void i8_pack(const std::uint8_t* codes, std::size_t code_size, std::size_t rows, std::size_t dim,
             std::uint8_t* packed) noexcept {
  const std::size_t steps = (dim + 3) / 4, rows16 = (rows + 15) / 16 * 16;
  for (std::size_t r = 0; r < rows16; ++r) {
    std::uint8_t* blk = packed + (r / 8) * steps * 32 + (r % 8) * 4;
    for (std::size_t s = 0; s < steps; ++s) {
      if (r < rows)
        i8_pack_group(codes + r * code_size, dim, s, blk + 32 * s);
      else
        std::memset(blk + 32 * s, 0, 4);
    }
  }
}

// The key of one row from its exact integer dot product (the formula of I8ScoreFn).
inline float i8_key(Metric metric, std::int32_t acc, const I8ScanQueries& q, std::size_t i, float row_term) noexcept {
  const float ip = q.a[i] + q.b[i] * static_cast<float>(acc - q.corr[i]);
  switch (metric) {
    case Metric::kCos:
      return ip * row_term;
    case Metric::kL2:
      return -(q.qq[i] - 2.0f * ip + row_term);
    default:
      return ip;
  }
}

void i8_score(Metric metric, const I8ScanQueries& q, const I8ScanTile& t, float* keys, std::uint64_t* hits) noexcept {
  const std::size_t qlen = 4 * t.steps;
  for (std::size_t i = 0; i < q.count; ++i) {
    const std::int8_t* qi = q.q + i * qlen;
    std::uint64_t h = 0;
    for (std::size_t r = 0; r < t.rows; ++r) {
      const std::uint8_t* c = t.packed + (r / 8) * t.steps * 32 + (r % 8) * 4;
      std::int32_t acc = 0;
      for (std::size_t s = 0; s < t.steps; ++s)
        for (std::size_t u = 0; u < 4; ++u) acc += static_cast<std::int32_t>(c[32 * s + u]) * qi[4 * s + u];
      const float key = i8_key(metric, acc, q, i, t.row_term ? t.row_term[r] : 0.0f);
      keys[i * kI8TileRows + r] = key;
      if (key >= q.threshold[i]) h |= std::uint64_t{1} << r;
    }
    hits[i] = h;
  }
}

}  // namespace

KernelTable make_generic_table() noexcept {
  KernelTable t;
  t.isa = "generic";
  t.dot_f32 = dot_f32;
  t.encode_f16 = encode_f16;
  t.decode_tile = decode_tile;
  t.dot_block = dot_block;
  t.hamming = hamming;
  t.encode_i8 = encode_i8;
  t.convert_fp8 = convert_fp8;
  t.i8_pack = i8_pack;
  t.i8_score = i8_score;
  return t;
}

}  // namespace vecstash::kernels::cpu
