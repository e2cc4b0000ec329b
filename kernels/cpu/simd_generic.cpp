// Portable kernels: the reference semantics for every ISA-specific table.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include <bit>

#include "cpu/codec_rows.h"
#include "cpu/cpu_features.h"
#include "vecstash/common/numeric.h"

namespace vecstash::kernels::cpu {
namespace {

using numeric::bf16_to_float;
using numeric::f16_to_float;

const std::array<float, 256>& fp8_table(bool e4m3) {
  static const auto tables = [] {
    std::array<std::array<float, 256>, 2> t{};
    for (int c = 0; c < 256; ++c) {
      t[0][c] = numeric::e5m2_to_float(static_cast<std::uint8_t>(c));
      t[1][c] = numeric::e4m3_to_float(static_cast<std::uint8_t>(c));
    }
    return t;
  }();
  return tables[e4m3 ? 1 : 0];
}

float dot_f32(const float* q, const std::uint8_t* code, std::size_t dim) noexcept {
  float s = 0;
  for (std::size_t j = 0; j < dim; ++j) {
    float x;
    std::memcpy(&x, code + 4 * j, 4);
    s += q[j] * x;
  }
  return s;
}

template <float (*Convert)(std::uint16_t)>
float dot_u16(const float* q, const std::uint8_t* code, std::size_t dim) noexcept {
  float s = 0;
  for (std::size_t j = 0; j < dim; ++j) {
    std::uint16_t h;
    std::memcpy(&h, code + 2 * j, 2);
    s += q[j] * Convert(h);
  }
  return s;
}

template <bool kE4M3>
float dot_fp8(const float* q, const std::uint8_t* code, std::size_t dim) noexcept {
  const auto& t = fp8_table(kE4M3);
  float s = 0;
  for (std::size_t j = 0; j < dim; ++j) s += q[j] * t[code[j]];
  return s;
}

float dot_i8(const float* q, const std::uint8_t* code, std::size_t dim) noexcept {
  float s = 0;
  for (std::size_t j = 0; j < dim; ++j) s += q[j] * static_cast<float>(static_cast<std::int8_t>(code[j]));
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
  t.dot[static_cast<int>(CodeKind::kF32)] = dot_f32;
  t.dot[static_cast<int>(CodeKind::kF16)] = dot_u16<f16_to_float>;
  t.dot[static_cast<int>(CodeKind::kBF16)] = dot_u16<bf16_to_float>;
  t.dot[static_cast<int>(CodeKind::kE4M3)] = dot_fp8<true>;
  t.dot[static_cast<int>(CodeKind::kE5M2)] = dot_fp8<false>;
  t.dot[static_cast<int>(CodeKind::kI8)] = dot_i8;
  t.encode_f16 = encode_f16;
  t.decode_tile = decode_tile;
  t.dot_block = dot_block;
  t.hamming = hamming;
  t.encode_i8 = encode_i8;
  t.convert_fp8 = convert_fp8;
  return t;
}

}  // namespace vecstash::kernels::cpu
