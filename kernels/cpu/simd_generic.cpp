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
  return t;
}

}  // namespace vecstash::kernels::cpu
