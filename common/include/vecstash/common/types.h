// The small vocabulary of vecstash: code kinds, metrics, scaling modes, row-major matrix views.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace vecstash {

/// How one vector is stored. Names follow USearch's vocabulary.
enum class CodeKind : std::uint8_t {
  kF32 = 0,   ///< float32, identity
  kF16 = 1,   ///< IEEE binary16, round to nearest even
  kBF16 = 2,  ///< bfloat16, round to nearest even
  kE4M3 = 3,  ///< OCP float8 E4M3 ("fn": max 448, no infinities)
  kE5M2 = 4,  ///< OCP float8 E5M2 (with infinities)
  kI8 = 5,    ///< int8 with per-dimension affine calibration
  kB1 = 6,    ///< one bit per dimension after centring, packed in 64-bit words
};
inline constexpr int kCodeKindCount = 7;

/// Similarity or distance. For kIp and kCos larger is better; for kL2 (squared) and kHamming smaller is better.
enum class Metric : std::uint8_t { kIp = 0, kCos = 1, kL2 = 2, kHamming = 3 };

/// Scaling applied before a float8 cast.
enum class ScaleMode : std::uint8_t {
  kNone = 0,       ///< the plain cast (the paper's baseline); out-of-range values saturate
  kPerVector = 1,  ///< one float32 scale per vector, stored with its code
  kPerDim = 2,     ///< one scale per dimension, learned at train time
};

std::string_view to_string(CodeKind kind) noexcept;
std::string_view to_string(Metric metric) noexcept;
std::string_view to_string(ScaleMode mode) noexcept;
/// Parse "f32", "f16", "bf16", "e4m3", "e5m2", "i8"/"int8", "b1"/"binary". Case-sensitive.
std::optional<CodeKind> parse_code_kind(std::string_view s) noexcept;
/// Parse "ip"/"dot", "cos"/"cosine", "l2", "hamming".
std::optional<Metric> parse_metric(std::string_view s) noexcept;
/// Parse "none", "vector"/"per-vector", "dim"/"per-dim".
std::optional<ScaleMode> parse_scale_mode(std::string_view s) noexcept;

/// True when larger scores are better for `metric`.
constexpr bool higher_is_better(Metric metric) noexcept {
  return metric == Metric::kIp || metric == Metric::kCos;
}

/// A non-owning row-major view: `rows` rows of `cols` elements, row i starting at data + i * stride.
template <typename T>
struct MatrixView {
  T* data = nullptr;
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::size_t stride = 0;  ///< elements between row starts (>= cols)

  MatrixView() = default;
  MatrixView(T* d, std::size_t r, std::size_t c) : data(d), rows(r), cols(c), stride(c) {}
  MatrixView(T* d, std::size_t r, std::size_t c, std::size_t s) : data(d), rows(r), cols(c), stride(s) {}
  template <typename U>
  MatrixView(const MatrixView<U>& o)  // NOLINT(implicit): T* <- U* conversions only (adds const)
      : data(o.data), rows(o.rows), cols(o.cols), stride(o.stride) {}

  T* row(std::size_t i) const noexcept { return data + i * stride; }
  bool empty() const noexcept { return rows == 0; }
};

}  // namespace vecstash
