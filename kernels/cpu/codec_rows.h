// Per-row encode/decode following the rules in codec.h. Internal to kernels/cpu.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu/cpu_features.h"
#include "vecstash/common/numeric.h"
#include "vecstash/kernels/codec.h"

namespace vecstash::kernels::cpu {

inline float squared_norm(const float* x, std::size_t n) noexcept {
  double s = 0;
  for (std::size_t j = 0; j < n; ++j) s += static_cast<double>(x[j]) * x[j];
  return static_cast<float>(s);
}

/// Value v(c) of element j of a code row (the per-element part of decode, before scales/offsets).
inline float code_value(CodeKind kind, const std::uint8_t* code, std::size_t j) noexcept {
  switch (kind) {
    case CodeKind::kF32: {
      float x;
      std::memcpy(&x, code + 4 * j, 4);
      return x;
    }
    case CodeKind::kF16:
    case CodeKind::kBF16: {
      std::uint16_t h;
      std::memcpy(&h, code + 2 * j, 2);
      return kind == CodeKind::kF16 ? numeric::f16_to_float(h) : numeric::bf16_to_float(h);
    }
    case CodeKind::kE4M3: return numeric::e4m3_to_float(code[j]);
    case CodeKind::kE5M2: return numeric::e5m2_to_float(code[j]);
    case CodeKind::kI8: return static_cast<float>(static_cast<std::int8_t>(code[j]));
    case CodeKind::kB1: return ((code[j / 8] >> (j % 8)) & 1u) ? 1.0f : -1.0f;
  }
  return 0.0f;
}

/// Per-vector scale stored after the dim code bytes (float8 with ScaleMode::kPerVector).
inline float row_scale(const std::uint8_t* code, std::size_t dim) noexcept {
  float s;
  std::memcpy(&s, code + dim, 4);
  return s;
}

class RowCodec {
 public:
  RowCodec(const CodecParams& p, const std::vector<float>& inv_scale, const KernelTable& t)
      : p_(p), inv_(inv_scale), t_(t), dim_(p.dim) {}

  void encode(const float* x, std::uint8_t* out) const {
    switch (p_.kind) {
      case CodeKind::kF32: std::memcpy(out, x, 4 * dim_); break;
      case CodeKind::kF16: {
        std::vector<std::uint16_t>& tmp = scratch16();
        tmp.resize(dim_);
        t_.encode_f16(x, tmp.data(), dim_);
        std::memcpy(out, tmp.data(), 2 * dim_);
        break;
      }
      case CodeKind::kBF16:
        for (std::size_t j = 0; j < dim_; ++j) {
          const std::uint16_t h = numeric::float_to_bf16(x[j]);
          std::memcpy(out + 2 * j, &h, 2);
        }
        break;
      case CodeKind::kE4M3:
      case CodeKind::kE5M2: encode_fp8(x, out); break;
      case CodeKind::kI8: t_.encode_i8(x, p_.offset.data(), inv_.data(), out, dim_); break;
      case CodeKind::kB1: {
        const std::size_t bytes = code_size(CodeKind::kB1, ScaleMode::kNone, dim_);
        std::memset(out, 0, bytes);
        for (std::size_t j = 0; j < dim_; ++j)
          if (x[j] > p_.offset[j]) out[j / 8] |= static_cast<std::uint8_t>(1u << (j % 8));
        break;
      }
    }
  }

  void decode(const std::uint8_t* code, float* out) const {
    const bool per_vector = p_.scale_mode == ScaleMode::kPerVector;
    const float s_row = per_vector ? row_scale(code, dim_) : 1.0f;
    if (p_.kind == CodeKind::kB1) {
      for (std::size_t j = 0; j < dim_; ++j) out[j] = code_value(p_.kind, code, j);
    } else {
      t_.decode_tile(p_.kind, code, 0, 1, dim_, dim_, out);
    }
    // Separate loops (each vectorisable) in the order of the rule: s_row * v, then scale *, then offset +.
    if (per_vector)
      for (std::size_t j = 0; j < dim_; ++j) out[j] = s_row * out[j];
    if (!p_.scale.empty())
      for (std::size_t j = 0; j < dim_; ++j) out[j] = p_.scale[j] * out[j];
    if (!p_.offset.empty())
      for (std::size_t j = 0; j < dim_; ++j) out[j] = p_.offset[j] + out[j];
  }

 private:
  // The scaled values are formed with the same float operations on every ISA, then converted by the
  // table's (possibly SIMD) float8 conversion, which is bit-exact with numeric.h.
  void encode_fp8(const float* x, std::uint8_t* out) const {
    const bool e4m3 = p_.kind == CodeKind::kE4M3;
    const bool centred = !p_.offset.empty();
    if (p_.scale_mode == ScaleMode::kNone) {
      t_.convert_fp8(e4m3, x, out, dim_);
      return;
    }
    std::vector<float>& y = scratch32();
    y.resize(dim_);
    for (std::size_t j = 0; j < dim_; ++j) y[j] = centred ? x[j] - p_.offset[j] : x[j];
    if (p_.scale_mode == ScaleMode::kPerDim) {
      for (std::size_t j = 0; j < dim_; ++j) y[j] = y[j] * inv_[j];
    } else {
      float m = 0.0f;
      for (std::size_t j = 0; j < dim_; ++j) m = std::max(m, std::fabs(y[j]));
      const float s = m > 0.0f ? m / fp8_max(p_.kind) : 1.0f;
      const float inv = 1.0f / s;
      for (std::size_t j = 0; j < dim_; ++j) y[j] = y[j] * inv;
      std::memcpy(out + dim_, &s, 4);
    }
    t_.convert_fp8(e4m3, y.data(), out, dim_);
  }

  static std::vector<float>& scratch32() {
    thread_local std::vector<float> v;
    return v;
  }
  static std::vector<std::uint16_t>& scratch16() {
    thread_local std::vector<std::uint16_t> v;
    return v;
  }

  const CodecParams& p_;
  const std::vector<float>& inv_;
  const KernelTable& t_;
  std::size_t dim_;
};

}  // namespace vecstash::kernels::cpu
