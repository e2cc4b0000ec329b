// The CUDA backend behind a CUDA-free header. Built when VECSTASH_WITH_CUDA; otherwise every call
// returns Unavailable (and gpu_available() is false), so callers fall back to the CPU.
//
// Contract with the CPU reference (checked by the parity tests, label `gpu`):
//   - encode: codes and squared norms bit-identical to Codec::encode (same scalar conversions,
//     numeric.h; squared norms within 1e-5 relative);
//   - decode: bit-identical to Codec::decode;
//   - search: scores within 1e-4 relative (+1e-4 absolute) of search_cpu; same ids where the score
//     gap to the neighbouring rank exceeds that tolerance; ties ordered by row index;
//   - PCA: same subspace as Pca::fit (components equal up to sign), projection within 1e-4.
//   - relative representations (relative.h): relative_transform within 1e-5 absolute of
//     RelativeBasis::transform (rows are normalised in double as on the CPU; the dot products with
//     the unit anchors are cuBLAS sgemm, summed in another order). relative_encode runs the device
//     encode of the codec (the rules of codec.h) on those values, so its codes may differ from
//     RelativeBasis::encode only where a CPU value lies within rounding distance of a code boundary:
//     element codes at most one code step apart (adjacent values of the kind), a float8 per-vector
//     scale and f32 codes within the float tolerance above; squared norms are those of the GPU's own
//     codes (within 1e-5 relative). The parity tests also require >= 99% of the element code bytes
//     of the quantising kinds they cover (f16, e4m3, i8) to be identical.
// Float8, int8 and binary codes are scored from their compact form in device memory; a collection is
// never expanded to float32 on the device.
//
// Thread safety: a GpuContext serialises its own work on one stream; use one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "vecstash/common/status.h"
#include "vecstash/common/types.h"
#include "vecstash/kernels/codec.h"
#include "vecstash/kernels/pca.h"
#include "vecstash/kernels/relative.h"
#include "vecstash/kernels/search.h"

namespace vecstash::kernels {

/// True when this build has the CUDA backend and a usable device is present. The first call that
/// finds none logs the reason once ("no CUDA device: ...; using the CPU").
bool gpu_available();
/// One line naming the device (e.g. "NVIDIA H100 80GB HBM3, sm_90, 79 GiB"), or why there is none.
std::string gpu_description();

class GpuContext {
 public:
  /// Stream, cuBLAS and cuSOLVER handles on `device`. Unavailable without a GPU.
  static Result<std::unique_ptr<GpuContext>> create(int device = 0);
  virtual ~GpuContext() = default;

  /// Host in, host out (the device copies are internal). Same contract as Codec::encode.
  virtual Status encode(const Codec& codec, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                        std::span<float> sq_norms) = 0;
  virtual Status decode(const Codec& codec, std::span<const std::uint8_t> codes, MatrixView<float> out) = 0;

  /// Upload a code matrix to device memory and keep it there (replaces any earlier upload).
  virtual Status upload_codes(const Codec& codec, const CodeView& codes) = 0;
  /// Fused scoring + top-k over the uploaded codes for a batch of host queries.
  Status search(MatrixView<const float> queries, const SearchParams& params, TopK* out) {
    return search(queries, params, nullptr, nullptr, out);
  }
  Status search(MatrixView<const float> queries, const SearchParams& params, const std::uint64_t* allow, TopK* out) {
    return search(queries, params, allow, nullptr, out);
  }
  /// The same search restricted to the rows whose bit is set in `allow` (host memory, the eligibility
  /// bitset of search.h over the uploaded rows: ceil(rows / 64) words; null = every row). Returns
  /// min(k, allowed rows) real results per query, like search_cpu with CodeView::allow. The bitset is
  /// copied to the device on each call (rows / 8 bytes, into the search workspace), so it may change
  /// between calls without a new upload_codes. `row_bias` (host memory, one float per uploaded row, or
  /// null) is added to each row's natural-form score before the top-k, as CodeView::row_bias in
  /// search_cpu; it is copied on each call too (rows x 4 bytes).
  virtual Status search(MatrixView<const float> queries, const SearchParams& params, const std::uint64_t* allow,
                        const float* row_bias, TopK* out) = 0;
  /// Test hook: rows per scoring tile (0 = automatic).
  virtual void set_tile_rows(std::size_t rows) = 0;

  /// PCA fit with cuBLAS (covariance in double) and cuSOLVER (syevd); same options as Pca::fit.
  virtual Result<Pca> pca_fit(MatrixView<const float> sample, const PcaOptions& options) = 0;
  /// Projection with cuBLAS; same semantics as Pca::transform.
  virtual Status pca_transform(const Pca& pca, MatrixView<const float> rows, MatrixView<float> out,
                               bool center) = 0;

  /// Relative representations with cuBLAS (rows normalised on the device, sgemm with the unit anchors,
  /// tile by tile); same semantics and validation as RelativeBasis::transform. Host in, host out.
  virtual Status relative_transform(const RelativeBasis& basis, MatrixView<const float> rows,
                                    MatrixView<float> out) = 0;
  /// The relative vectors of `rows` encoded with `codec` on the device (the relative values never
  /// leave it); same semantics and validation as RelativeBasis::encode, codes as stated above.
  virtual Status relative_encode(const RelativeBasis& basis, const Codec& codec, MatrixView<const float> rows,
                                 std::span<std::uint8_t> codes, std::span<float> sq_norms) = 0;
};

}  // namespace vecstash::kernels
