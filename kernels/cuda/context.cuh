// Internal to kernels/cuda: the concrete GpuContext. Its methods live in context.cu (lifetime),
// codec.cu (encode/decode), search.cu (upload + fused scoring/top-k), pca.cu (PCA) and relative.cu
// (relative representations).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cuda/codec_math.cuh"
#include "cuda/cuda_support.cuh"
#include "vecstash/kernels/gpu.h"

namespace vecstash::kernels::cuda {

/// Host float staging for encode/decode/PCA is done in chunks of about this many bytes of device memory.
inline constexpr std::size_t kChunkBytes = std::size_t{128} << 20;
/// The search path sizes its query batches to keep its workspace near this (it may exceed it for one
/// query when k and the collection are both very large).
inline constexpr std::size_t kSearchWorkspaceBytes = std::size_t{512} << 20;

/// Encode `n` dense device rows (n x a.dim floats) into device codes (n x a.code_size bytes) and, when
/// `sq_norms` is not null, their squared norms (n floats): the kernels behind GpuContext::encode,
/// enqueued on `stream` (codec.cu). `a` describes device memory (upload_codec_params).
Status launch_encode(cudaStream_t stream, const float* rows, std::size_t n, const CodecArgs& a, std::uint8_t* codes,
                     float* sq_norms);

class CudaContext final : public GpuContext {
 public:
  /// Creates the stream and the library handles on `device` (the device must exist).
  static Result<std::unique_ptr<GpuContext>> make(int device);
  ~CudaContext() override;

  Status encode(const Codec& codec, MatrixView<const float> rows, std::span<std::uint8_t> codes,
                std::span<float> sq_norms) override;
  Status decode(const Codec& codec, std::span<const std::uint8_t> codes, MatrixView<float> out) override;
  Status upload_codes(const Codec& codec, const CodeView& codes) override;
  using GpuContext::search;  // the overloads without an eligibility bitset or a row bias
  Status search(MatrixView<const float> queries, const SearchParams& params, const std::uint64_t* allow,
                const float* row_bias, TopK* out) override;
  void set_tile_rows(std::size_t rows) override { tile_rows_ = rows; }
  Result<Pca> pca_fit(MatrixView<const float> sample, const PcaOptions& options) override;
  Status pca_transform(const Pca& pca, MatrixView<const float> rows, MatrixView<float> out, bool center) override;
  Status relative_transform(const RelativeBasis& basis, MatrixView<const float> rows, MatrixView<float> out) override;
  Status relative_encode(const RelativeBasis& basis, const Codec& codec, MatrixView<const float> rows,
                         std::span<std::uint8_t> codes, std::span<float> sq_norms) override;

 private:
  explicit CudaContext(int device) : device_(device) {}
  /// Make this context's device current for the calling thread.
  Status activate();
  /// Wait for the stream and translate any asynchronous error.
  Status sync();
  /// Copy the codec's scale, offset and 1/scale vectors into `buffer` and describe them in `out`
  /// (empty vectors become null pointers). Asynchronous on stream_.
  Status upload_codec_params(const Codec& codec, DeviceBuffer* buffer, CodecArgs* out);
  /// relative_transform (codec null) and relative_encode (codec set), after validation.
  Status relative_run(const RelativeBasis& basis, const Codec* codec, MatrixView<const float> rows,
                      MatrixView<float> out, std::span<std::uint8_t> codes, std::span<float> sq_norms);

  int device_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  cusolverDnHandle_t cusolver_ = nullptr;

  // encode/decode/upload/PCA scratch (grow-only)
  DeviceBuffer scratch_;
  DeviceBuffer codec_params_;
  DeviceBuffer solver_ws_;  // cuSOLVER workspace of the PCA fit

  // The uploaded collection (upload_codes).
  bool uploaded_ = false;
  Codec codec_;                 // a copy of the codec the codes were uploaded with
  std::size_t rows_ = 0;        // rows uploaded
  std::size_t row_stride_ = 0;  // bytes between device rows (the payload padded to 16 bytes)
  bool has_sq_norms_ = false;
  DeviceBuffer codes_;          // rows_ x row_stride_ bytes, padding zero
  DeviceBuffer row_scales_;     // rows_ floats (float8 per-vector only)
  DeviceBuffer sq_norms_;       // rows_ floats (when given)
  DeviceBuffer search_params_;  // scale, offset, 1/scale of codec_
  CodecArgs search_args_;       // codec_ on the device (pointers into search_params_)

  // search workspace (grow-only; no other allocation on the search path)
  DeviceBuffer search_ws_;
  std::size_t tile_rows_ = 0;
};

}  // namespace vecstash::kernels::cuda
