#include "vecstash/common/types.h"

namespace vecstash {

std::string_view to_string(CodeKind kind) noexcept {
  switch (kind) {
    case CodeKind::kF32: return "f32";
    case CodeKind::kF16: return "f16";
    case CodeKind::kBF16: return "bf16";
    case CodeKind::kE4M3: return "e4m3";
    case CodeKind::kE5M2: return "e5m2";
    case CodeKind::kI8: return "i8";
    case CodeKind::kB1: return "b1";
  }
  return "?";
}

std::string_view to_string(Metric metric) noexcept {
  switch (metric) {
    case Metric::kIp: return "ip";
    case Metric::kCos: return "cos";
    case Metric::kL2: return "l2";
    case Metric::kHamming: return "hamming";
  }
  return "?";
}

std::string_view to_string(ScaleMode mode) noexcept {
  switch (mode) {
    case ScaleMode::kNone: return "none";
    case ScaleMode::kPerVector: return "vector";
    case ScaleMode::kPerDim: return "dim";
  }
  return "?";
}

std::optional<CodeKind> parse_code_kind(std::string_view s) noexcept {
  if (s == "f32" || s == "float32") return CodeKind::kF32;
  if (s == "f16" || s == "float16") return CodeKind::kF16;
  if (s == "bf16" || s == "bfloat16") return CodeKind::kBF16;
  if (s == "e4m3") return CodeKind::kE4M3;
  if (s == "e5m2") return CodeKind::kE5M2;
  if (s == "i8" || s == "int8") return CodeKind::kI8;
  if (s == "b1" || s == "binary") return CodeKind::kB1;
  return std::nullopt;
}

std::optional<Metric> parse_metric(std::string_view s) noexcept {
  if (s == "ip" || s == "dot") return Metric::kIp;
  if (s == "cos" || s == "cosine") return Metric::kCos;
  if (s == "l2" || s == "euclid") return Metric::kL2;
  if (s == "hamming") return Metric::kHamming;
  return std::nullopt;
}

std::optional<ScaleMode> parse_scale_mode(std::string_view s) noexcept {
  if (s == "none") return ScaleMode::kNone;
  if (s == "vector" || s == "per-vector") return ScaleMode::kPerVector;
  if (s == "dim" || s == "per-dim") return ScaleMode::kPerDim;
  return std::nullopt;
}

}  // namespace vecstash
