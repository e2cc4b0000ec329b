#include "vecstash/kernels/codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "cpu/codec_rows.h"
#include "cpu/cpu_features.h"
#include "cpu/parallel.h"
#include "vecstash/common/blob.h"
#include "vecstash/common/numeric.h"

namespace vecstash::kernels {

namespace {
constexpr char kMagic[] = "VSCD";
constexpr std::uint16_t kFormatVersion = 1;
constexpr std::size_t kMaxDim = 1u << 16;

bool is_fp8(CodeKind k) { return k == CodeKind::kE4M3 || k == CodeKind::kE5M2; }

std::string dim_str(std::size_t d) { return std::to_string(d); }

std::vector<float> column_means(MatrixView<const float> sample) {
  std::vector<double> mean(sample.cols, 0.0);
  for (std::size_t i = 0; i < sample.rows; ++i)
    for (std::size_t j = 0; j < sample.cols; ++j) mean[j] += sample.row(i)[j];
  std::vector<float> out(sample.cols);
  for (std::size_t j = 0; j < sample.cols; ++j) out[j] = static_cast<float>(mean[j] / static_cast<double>(sample.rows));
  return out;
}
}  // namespace

std::size_t code_size(CodeKind kind, ScaleMode mode, std::size_t dim) noexcept {
  switch (kind) {
    case CodeKind::kF32: return 4 * dim;
    case CodeKind::kF16:
    case CodeKind::kBF16: return 2 * dim;
    case CodeKind::kE4M3:
    case CodeKind::kE5M2: return dim + (mode == ScaleMode::kPerVector ? 4 : 0);
    case CodeKind::kI8: return dim;
    case CodeKind::kB1: return 8 * ((dim + 63) / 64);
  }
  return 0;
}

float fp8_max(CodeKind kind) noexcept {
  if (kind == CodeKind::kE4M3) return numeric::kE4M3Max;
  if (kind == CodeKind::kE5M2) return numeric::kE5M2Max;
  return 0.0f;
}

Status validate_rows(MatrixView<const float> rows, std::size_t dim, const char* what) {
  if (rows.rows == 0) return Status::ok();
  if (rows.cols != dim) {
    return Status::invalid_argument(std::string(what) + ": expected dimension " + dim_str(dim) + ", got " +
                                    dim_str(rows.cols));
  }
  if (rows.data == nullptr || rows.stride < rows.cols)
    return Status::invalid_argument(std::string(what) + ": bad matrix view");
  for (std::size_t i = 0; i < rows.rows; ++i) {
    const float* r = rows.row(i);
    for (std::size_t j = 0; j < dim; ++j) {
      if (!std::isfinite(r[j])) {
        return Status::invalid_argument(std::string(what) + ": row " + std::to_string(i) + ", element " +
                                        std::to_string(j) + " is " + (std::isnan(r[j]) ? "NaN" : "infinite"));
      }
    }
  }
  return Status::ok();
}

Result<Codec> Codec::train(const CodecOptions& options, MatrixView<const float> sample) {
  const std::size_t d = sample.cols;
  if (d == 0 || d > kMaxDim)
    return Status::invalid_argument("codec training: dimension must be in [1, " + dim_str(kMaxDim) + "], got " + dim_str(d));
  if (static_cast<int>(options.kind) >= kCodeKindCount) return Status::invalid_argument("codec training: unknown code kind");
  VECSTASH_RETURN_IF_ERROR(validate_rows(sample, d, "codec training sample"));
  CodecParams p;
  p.kind = options.kind;
  p.dim = static_cast<std::uint32_t>(d);
  p.scale_mode = is_fp8(options.kind) ? options.scale : ScaleMode::kNone;
  const std::size_t n = sample.rows;
  const bool fp8_centred = is_fp8(options.kind) && p.scale_mode != ScaleMode::kNone && options.fp8_center;
  const bool needs_stats = options.kind == CodeKind::kI8 || options.kind == CodeKind::kB1 || fp8_centred ||
                           (is_fp8(options.kind) && p.scale_mode == ScaleMode::kPerDim);
  if (needs_stats && n == 0)
    return Status::invalid_argument(std::string("codec training: kind ") + std::string(to_string(options.kind)) +
                                    " needs a non-empty sample");
  if (options.kind == CodeKind::kI8 && !(options.int8_clip_percent >= 0.0 && options.int8_clip_percent < 10.0))
    return Status::invalid_argument("codec training: int8 clip percentile must be in [0, 10)");

  if (fp8_centred) p.offset = column_means(sample);
  if (is_fp8(options.kind) && p.scale_mode == ScaleMode::kPerDim) {
    p.scale.assign(d, 0.0f);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) {
        const float y = p.offset.empty() ? sample.row(i)[j] : sample.row(i)[j] - p.offset[j];
        p.scale[j] = std::max(p.scale[j], std::fabs(y));
      }
    const float m = fp8_max(options.kind);
    for (auto& s : p.scale) s = s > 0.0f ? s / m : 1.0f;
  } else if (options.kind == CodeKind::kI8) {
    p.scale.resize(d);
    p.offset.resize(d);
    std::vector<float> col(n);
    const double pct = options.int8_clip_percent;
    for (std::size_t j = 0; j < d; ++j) {
      for (std::size_t i = 0; i < n; ++i) col[i] = sample.row(i)[j];
      float lo, hi;
      if (pct > 0.0 && n > 1) {
        const auto lo_i = static_cast<std::size_t>(std::floor(pct / 100.0 * static_cast<double>(n - 1)));
        const auto hi_i = static_cast<std::size_t>(std::ceil((1.0 - pct / 100.0) * static_cast<double>(n - 1)));
        std::nth_element(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(lo_i), col.end());
        lo = col[lo_i];
        std::nth_element(col.begin(), col.begin() + static_cast<std::ptrdiff_t>(hi_i), col.end());
        hi = col[hi_i];
      } else {
        const auto [mn, mx] = std::minmax_element(col.begin(), col.end());
        lo = *mn;
        hi = *mx;
      }
      const float step = hi > lo ? (hi - lo) / 255.0f : 1.0f;
      p.scale[j] = step;
      p.offset[j] = hi > lo ? lo + 128.0f * step : lo;
    }
  } else if (options.kind == CodeKind::kB1) {
    p.offset = column_means(sample);
    std::vector<double> dev(d, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < d; ++j) dev[j] += std::fabs(sample.row(i)[j] - p.offset[j]);
    p.scale.resize(d);
    for (std::size_t j = 0; j < d; ++j) p.scale[j] = static_cast<float>(dev[j] / static_cast<double>(n));
  }
  return from_params(std::move(p));
}

Result<Codec> Codec::from_params(CodecParams p) {
  const auto bad = [](const std::string& why) { return Status::invalid_argument("codec parameters: " + why); };
  if (static_cast<int>(p.kind) >= kCodeKindCount) return bad("unknown code kind");
  if (static_cast<int>(p.scale_mode) > 2) return bad("unknown scale mode");
  if (p.dim == 0 || p.dim > kMaxDim) return bad("dimension must be in [1, " + dim_str(kMaxDim) + "]");
  if (!is_fp8(p.kind) && p.scale_mode != ScaleMode::kNone) return bad("scale modes apply to float8 kinds only");
  std::size_t want_scale = 0, want_offset = 0;
  if (is_fp8(p.kind) && p.scale_mode == ScaleMode::kPerDim) want_scale = p.dim;
  if (p.kind == CodeKind::kI8 || p.kind == CodeKind::kB1) want_scale = want_offset = p.dim;
  // Scaled float8 may be centred (offset = mean) or not.
  const bool optional_offset = is_fp8(p.kind) && p.scale_mode != ScaleMode::kNone && p.offset.size() == p.dim;
  if (optional_offset) want_offset = p.dim;
  if (p.scale.size() != want_scale || p.offset.size() != want_offset)
    return bad("expected " + dim_str(want_scale) + " scales and " + dim_str(want_offset) + " offsets for kind " +
               std::string(to_string(p.kind)));
  for (float s : p.scale) {
    const bool ok = std::isfinite(s) && (p.kind == CodeKind::kB1 ? s >= 0.0f : s > 0.0f);
    if (!ok) return bad("scales must be finite and positive");
  }
  for (float o : p.offset)
    if (!std::isfinite(o)) return bad("offsets must be finite");
  Codec c;
  c.inv_scale_.resize(p.scale.size());
  for (std::size_t j = 0; j < p.scale.size(); ++j) c.inv_scale_[j] = p.scale[j] > 0.0f ? 1.0f / p.scale[j] : 0.0f;
  c.params_ = std::move(p);
  c.trained_ = true;
  return c;
}

std::vector<std::uint8_t> Codec::serialize() const {
  BlobWriter w(kMagic, kFormatVersion);
  w.u8(static_cast<std::uint8_t>(params_.kind));
  w.u8(static_cast<std::uint8_t>(params_.scale_mode));
  w.u32(params_.dim);
  w.f32s(params_.scale);
  w.f32s(params_.offset);
  return w.finish();
}

Result<Codec> Codec::deserialize(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "codec parameters");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open(kMagic, kFormatVersion, &version));
  std::uint8_t kind = 0, mode = 0;
  CodecParams p;
  VECSTASH_RETURN_IF_ERROR(r.u8(&kind));
  VECSTASH_RETURN_IF_ERROR(r.u8(&mode));
  VECSTASH_RETURN_IF_ERROR(r.u32(&p.dim));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.scale, kMaxDim));
  VECSTASH_RETURN_IF_ERROR(r.f32s(&p.offset, kMaxDim));
  VECSTASH_RETURN_IF_ERROR(r.finish());
  if (kind >= kCodeKindCount || mode > 2) return Status::corruption("codec parameters: unknown kind or scale mode");
  p.kind = static_cast<CodeKind>(kind);
  p.scale_mode = static_cast<ScaleMode>(mode);
  auto c = from_params(std::move(p));
  if (!c) return Status::corruption(c.status().message());
  return c;
}

std::size_t Codec::code_size() const noexcept {
  return kernels::code_size(params_.kind, params_.scale_mode, params_.dim);
}

namespace {
Status check_trained(bool trained) {
  if (!trained) return Status::failed_precondition("codec is not trained");
  return Status::ok();
}
Status check_codes(std::size_t bytes, std::size_t code_size, std::size_t* n) {
  if (bytes % code_size != 0)
    return Status::invalid_argument("codes: " + std::to_string(bytes) + " bytes is not a multiple of the code size " +
                                    std::to_string(code_size));
  *n = bytes / code_size;
  return Status::ok();
}
}  // namespace

Status Codec::encode(MatrixView<const float> rows, std::span<std::uint8_t> codes, std::span<float> sq_norms,
                     int threads) const {
  VECSTASH_RETURN_IF_ERROR(check_trained(trained_));
  VECSTASH_RETURN_IF_ERROR(validate_rows(rows, params_.dim, "encode"));
  const std::size_t n = rows.rows, cs = code_size();
  if (codes.size() != n * cs)
    return Status::invalid_argument("encode: codes buffer has " + std::to_string(codes.size()) + " bytes, need " +
                                    std::to_string(n * cs));
  if (!sq_norms.empty() && sq_norms.size() != n)
    return Status::invalid_argument("encode: sq_norms must be empty or hold one float per row");
  const cpu::RowCodec rc(params_, inv_scale_, cpu::kernels());
  const int t = cpu::resolve_threads(threads, n * params_.dim / 4096);
  cpu::parallel_chunks(n, t, [&](std::size_t b, std::size_t e) {
    std::vector<float> tmp(params_.dim);
    for (std::size_t i = b; i < e; ++i) {
      std::uint8_t* out = codes.data() + i * cs;
      rc.encode(rows.row(i), out);
      if (!sq_norms.empty()) {
        rc.decode(out, tmp.data());
        sq_norms[i] = cpu::squared_norm(tmp.data(), params_.dim);
      }
    }
  });
  return Status::ok();
}

Status Codec::decode(std::span<const std::uint8_t> codes, MatrixView<float> out, int threads) const {
  VECSTASH_RETURN_IF_ERROR(check_trained(trained_));
  std::size_t n = 0;
  const std::size_t cs = code_size();
  VECSTASH_RETURN_IF_ERROR(check_codes(codes.size(), cs, &n));
  if (n > 0 && (out.rows != n || out.cols != params_.dim || out.stride < out.cols || out.data == nullptr))
    return Status::invalid_argument("decode: output must be " + std::to_string(n) + " x " + dim_str(params_.dim));
  const cpu::RowCodec rc(params_, inv_scale_, cpu::kernels());
  const int t = cpu::resolve_threads(threads, n * params_.dim / 4096);
  cpu::parallel_chunks(n, t, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) rc.decode(codes.data() + i * cs, out.row(i));
  });
  return Status::ok();
}

Status Codec::squared_norms(std::span<const std::uint8_t> codes, std::span<float> out, int threads) const {
  VECSTASH_RETURN_IF_ERROR(check_trained(trained_));
  std::size_t n = 0;
  const std::size_t cs = code_size();
  VECSTASH_RETURN_IF_ERROR(check_codes(codes.size(), cs, &n));
  if (out.size() != n) return Status::invalid_argument("squared_norms: output must hold one float per row");
  const cpu::RowCodec rc(params_, inv_scale_, cpu::kernels());
  const int t = cpu::resolve_threads(threads, n * params_.dim / 4096);
  cpu::parallel_chunks(n, t, [&](std::size_t b, std::size_t e) {
    std::vector<float> tmp(params_.dim);
    for (std::size_t i = b; i < e; ++i) {
      rc.decode(codes.data() + i * cs, tmp.data());
      out[i] = cpu::squared_norm(tmp.data(), params_.dim);
    }
  });
  return Status::ok();
}

}  // namespace vecstash::kernels
