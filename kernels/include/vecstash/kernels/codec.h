// One codec interface for every code kind: train -> parameters, encode, decode, code size,
// and (in search.h) scoring of float32 queries against codes.
//
// Every kind decodes to an affine function of a per-element "code value" v(c):
//   x_hat[j] = offset[j] + scale[j] * s_row * v(c[j])
// where scale/offset are learned per dimension (empty = 1 / 0) and s_row is the per-vector scale
// (1 unless ScaleMode::kPerVector). v(c) is the f16/bf16/fp8 value, the int8 integer, or +-1 for a bit.
// Scorers exploit this: q . x_hat = q . offset + s_row * sum_j (q[j] * scale[j]) * v(c[j]).
//
// Exact encode rules (every backend must produce bit-identical codes; inv_* are float32 values
// computed once as 1.0f / scale, and no operation is fused into an FMA):
//   f32: the float itself.   f16 / bf16: numeric::float_to_f16 / float_to_bf16 of x.
//   e4m3 / e5m2, scale none:       c = fp8(x)                       (the plain cast; no parameters)
//                with scale per-dim or per-vector, y = x - offset[j] when an offset is present
//                (fp8_center: offset = sample mean), else y = x;
//                scale per-dim:    c = fp8(y * inv_scale[j]),  scale[j] = max|y_j| / fp8_max over the
//                                  sample (1 if 0);
//                scale per-vector: s_row = max_j |y_j| / fp8_max (1 if 0), c = fp8(y * (1.0f / s_row)),
//                                  s_row stored as little-endian float32 right after the dim code bytes.
//   i8:   c = clamp(rint((x - offset[j]) * inv_scale[j]), -128, 127) as int8,
//         scale[j] = (hi_j - lo_j) / 255 (1 if 0), offset[j] = lo_j + 128 * scale[j],
//         lo/hi = sample min/max (or the clip percentiles).
//   b1:   bit j (word j / 64, bit j % 64 of little-endian uint64 words; padding bits 0) is set iff
//         x[j] > offset[j]; offset = sample mean, scale = mean |x_j - mean_j|; v = +1 (set) or -1.
// Decode: x_hat[j] = offset[j] + scale[j] * (s_row * v) evaluated as written (mul, then add); a factor
// or term that is absent (empty scale/offset, no per-vector scale) is skipped, not applied as 1 or 0
// (so -0.0 stays -0.0).
// Hamming (b1 only): the query is binarised with the same rule, distance = popcount(q XOR c).
// Squared norms are sums of x_hat[j]^2 in float (order may differ between backends).
//
// Thread safety: a Codec is immutable after train()/deserialize(); all const methods are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"

namespace vecstash::kernels {

/// Options for Codec::train. Defaults are the recommended settings (see docs/BENCHMARKS.md).
struct CodecOptions {
  CodeKind kind = CodeKind::kF32;
  /// float8 kinds only. Default kPerVector (centred): in docs/BENCHMARKS.md it is at least as good as
  /// the plain cast on all four data sets without PCA and at PCA 100% (one within-noise exception at
  /// PCA 25%), for +4 bytes per vector; kPerDim keeps exactly dim bytes.
  ScaleMode scale = ScaleMode::kPerVector;
  /// float8 with kPerVector or kPerDim: subtract the per-dimension mean of the sample before scaling
  /// (stored as the offset). Embeddings often share a large common component; centring spends the
  /// few float8 mantissa bits on what tells rows apart. Scores are unaffected (q . offset is added back).
  bool fp8_center = true;
  /// int8 only: clip each dimension at this lower/upper percentile of the sample (0 = min/max).
  /// E.g. 0.1 clips at the 0.1th and 99.9th percentiles. Range [0, 10).
  double int8_clip_percent = 0.0;
};

/// Learned, persisted codec state.
struct CodecParams {
  CodeKind kind = CodeKind::kF32;
  ScaleMode scale_mode = ScaleMode::kNone;
  std::uint32_t dim = 0;
  std::vector<float> scale;   ///< dim entries, or empty (= all ones)
  std::vector<float> offset;  ///< dim entries, or empty (= all zeros)
  bool operator==(const CodecParams&) const = default;
};

/// Bytes of one encoded row of `dim` elements (the payload, plus 4 bytes when `mode` is per-vector
/// for a float8 kind).
std::size_t code_size(CodeKind kind, ScaleMode mode, std::size_t dim) noexcept;

/// Largest finite magnitude of a float8 kind (448 or 57344); 0 for other kinds.
float fp8_max(CodeKind kind) noexcept;

class Codec {
 public:
  /// An untrained codec: every operation returns FailedPrecondition.
  Codec() = default;

  /// Learn parameters from `sample` (rows x dim, finite values). f32/f16/bf16 and float8 without
  /// per-dimension scaling learn only the dimension; an empty sample is allowed for those kinds.
  static Result<Codec> train(const CodecOptions& options, MatrixView<const float> sample);
  /// Build from explicit parameters (validated).
  static Result<Codec> from_params(CodecParams params);
  /// Parse a blob written by serialize(). Damaged or future-version blobs give Corruption.
  static Result<Codec> deserialize(std::span<const std::uint8_t> blob);

  /// Versioned blob: magic "VSCD", format version, kind, scale mode, dim, then the vectors.
  std::vector<std::uint8_t> serialize() const;

  bool trained() const noexcept { return trained_; }
  const CodecParams& params() const noexcept { return params_; }
  CodeKind kind() const noexcept { return params_.kind; }
  std::size_t dim() const noexcept { return params_.dim; }
  /// Bytes per encoded row.
  std::size_t code_size() const noexcept;

  /// Encode rows (n x dim) into `codes` (n * code_size() bytes). If `sq_norms` is non-empty it
  /// must hold n floats and receives ||decode(code)||^2 (needed to score L2 and cosine).
  /// Rejects NaN/inf and a wrong dimension with InvalidArgument; n = 0 is valid.
  /// threads: 0 = all available.
  Status encode(MatrixView<const float> rows, std::span<std::uint8_t> codes,
                std::span<float> sq_norms = {}, int threads = 0) const;
  /// Decode n = codes.size() / code_size() rows into `out` (n x dim).
  Status decode(std::span<const std::uint8_t> codes, MatrixView<float> out, int threads = 0) const;
  /// ||decode(code)||^2 for each row, without materialising the rows.
  Status squared_norms(std::span<const std::uint8_t> codes, std::span<float> out, int threads = 0) const;

 private:
  CodecParams params_;
  std::vector<float> inv_scale_;  // 1.0f / scale[j], computed once
  bool trained_ = false;
};

/// Check that a matrix has `dim` columns and only finite values. Empty is OK.
Status validate_rows(MatrixView<const float> rows, std::size_t dim, const char* what);

}  // namespace vecstash::kernels
