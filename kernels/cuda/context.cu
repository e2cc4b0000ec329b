// GPU discovery, the context's lifetime, and the translation of CUDA library errors into Status.
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/context.cuh"
#include "vecstash/common/log.h"

namespace vecstash::kernels {

namespace cuda {

namespace {

std::string with_call(const char* what, const std::string& detail) { return std::string(what) + ": " + detail; }

const char* cusolver_status_name(cusolverStatus_t st) {
  switch (st) {
    case CUSOLVER_STATUS_SUCCESS:
      return "CUSOLVER_STATUS_SUCCESS";
    case CUSOLVER_STATUS_NOT_INITIALIZED:
      return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED:
      return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE:
      return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH:
      return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_MAPPING_ERROR:
      return "CUSOLVER_STATUS_MAPPING_ERROR";
    case CUSOLVER_STATUS_EXECUTION_FAILED:
      return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR:
      return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_MATRIX_TYPE_NOT_SUPPORTED";
    case CUSOLVER_STATUS_NOT_SUPPORTED:
      return "CUSOLVER_STATUS_NOT_SUPPORTED";
    case CUSOLVER_STATUS_INVALID_WORKSPACE:
      return "CUSOLVER_STATUS_INVALID_WORKSPACE";
    default:
      return "cuSOLVER error";
  }
}

}  // namespace

Status cuda_error(cudaError_t err, const char* what) {
  std::string detail = std::string(cudaGetErrorName(err)) + " (" + cudaGetErrorString(err) + ")";
  if (err == cudaErrorMemoryAllocation)
    return Status::resource_exhausted(with_call(what, "GPU out of memory: " + detail));
  return Status::internal(with_call(what, "CUDA error " + detail));
}

Status cublas_error(cublasStatus_t st, const char* what) {
  std::string detail = std::string(cublasGetStatusName(st)) + " (" + cublasGetStatusString(st) + ")";
  if (st == CUBLAS_STATUS_ALLOC_FAILED) return Status::resource_exhausted(with_call(what, "cuBLAS: " + detail));
  return Status::internal(with_call(what, "cuBLAS error " + detail));
}

Status cusolver_error(cusolverStatus_t st, const char* what) {
  std::string detail = std::string(cusolver_status_name(st)) + " (" + std::to_string(static_cast<int>(st)) + ")";
  if (st == CUSOLVER_STATUS_ALLOC_FAILED) return Status::resource_exhausted(with_call(what, "cuSOLVER: " + detail));
  return Status::internal(with_call(what, "cuSOLVER error " + detail));
}

// ---- context lifetime -------------------------------------------------------------------------

Result<std::unique_ptr<GpuContext>> CudaContext::make(int device) {
  std::unique_ptr<CudaContext> ctx(new CudaContext(device));
  VECSTASH_RETURN_IF_ERROR(ctx->activate());
  VECSTASH_CUDA_TRY(cudaStreamCreateWithFlags(&ctx->stream_, cudaStreamNonBlocking));
  VECSTASH_CUBLAS_TRY(cublasCreate(&ctx->cublas_));
  VECSTASH_CUBLAS_TRY(cublasSetStream(ctx->cublas_, ctx->stream_));
  // Plain FP32 arithmetic (no TF32) so that projections match the CPU within the stated tolerance.
  VECSTASH_CUBLAS_TRY(cublasSetMathMode(ctx->cublas_, CUBLAS_PEDANTIC_MATH));
  VECSTASH_CUSOLVER_TRY(cusolverDnCreate(&ctx->cusolver_));
  VECSTASH_CUSOLVER_TRY(cusolverDnSetStream(ctx->cusolver_, ctx->stream_));
  return std::unique_ptr<GpuContext>(std::move(ctx));
}

CudaContext::~CudaContext() {
  // Errors cannot be reported from a destructor; a failed device is past caring at this point.
  (void)cudaSetDevice(device_);
  if (stream_ != nullptr) (void)cudaStreamSynchronize(stream_);
  scratch_.release();
  codec_params_.release();
  solver_ws_.release();
  codes_.release();
  row_scales_.release();
  sq_norms_.release();
  search_params_.release();
  search_ws_.release();
  if (cusolver_ != nullptr) (void)cusolverDnDestroy(cusolver_);
  if (cublas_ != nullptr) (void)cublasDestroy(cublas_);
  if (stream_ != nullptr) (void)cudaStreamDestroy(stream_);
}

Status CudaContext::activate() {
  VECSTASH_CUDA_TRY(cudaSetDevice(device_));
  return Status::ok();
}

Status CudaContext::sync() {
  VECSTASH_CUDA_TRY(cudaGetLastError());
  VECSTASH_CUDA_TRY(cudaStreamSynchronize(stream_));
  return Status::ok();
}

Status CudaContext::upload_codec_params(const Codec& codec, DeviceBuffer* buffer, CodecArgs* out) {
  const CodecParams& p = codec.params();
  const std::size_t d = p.dim;
  std::vector<float> inv;
  if (!p.scale.empty()) {
    inv.resize(d);
    // Same rule as the CPU codec: 1.0f / scale in float, 0 where the scale is 0 (b1 only).
    for (std::size_t j = 0; j < d; ++j) inv[j] = p.scale[j] > 0.0f ? 1.0f / p.scale[j] : 0.0f;
  }
  Layout layout;
  const std::size_t off_scale = layout.add(p.scale.size() * sizeof(float));
  const std::size_t off_offset = layout.add(p.offset.size() * sizeof(float));
  const std::size_t off_inv = layout.add(inv.size() * sizeof(float));
  VECSTASH_RETURN_IF_ERROR(buffer->reserve(layout.total()));

  CodecArgs a;
  a.kind = p.kind;
  a.dim = p.dim;
  a.code_size = codec.code_size();
  a.per_vector = is_fp8(p.kind) && p.scale_mode == ScaleMode::kPerVector;
  a.per_dim = is_fp8(p.kind) && p.scale_mode == ScaleMode::kPerDim;
  a.payload = a.per_vector ? a.code_size - 4 : a.code_size;
  a.fp8_max = fp8_max(p.kind);
  // Host sources are pageable: cudaMemcpyAsync returns once they are staged, so the local vector
  // may go out of scope afterwards.
  if (!p.scale.empty()) {
    a.scale = buffer->as<float>(off_scale);
    a.inv_scale = buffer->as<float>(off_inv);
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(buffer->as<float>(off_scale), p.scale.data(), d * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
    VECSTASH_CUDA_TRY(
        cudaMemcpyAsync(buffer->as<float>(off_inv), inv.data(), d * sizeof(float), cudaMemcpyHostToDevice, stream_));
  }
  if (!p.offset.empty()) {
    a.offset = buffer->as<float>(off_offset);
    VECSTASH_CUDA_TRY(cudaMemcpyAsync(buffer->as<float>(off_offset), p.offset.data(), d * sizeof(float),
                                      cudaMemcpyHostToDevice, stream_));
  }
  *out = a;
  return Status::ok();
}

}  // namespace cuda

// ---- discovery --------------------------------------------------------------------------------

namespace {

struct Probe {
  bool available = false;
  int devices = 0;
  std::string reason;  // why there is no device (when !available)
};

const Probe& probe() {
  static const Probe p = [] {
    Probe r;
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();
      r.reason = std::string("cudaGetDeviceCount: ") + cudaGetErrorString(err) + " (" + cudaGetErrorName(err) + " = " +
                 std::to_string(static_cast<int>(err)) + ")";
    } else if (n <= 0) {
      r.reason = "cudaGetDeviceCount found 0 devices";
    } else {
      r.available = true;
      r.devices = n;
    }
    if (!r.available)
      log_once(LogLevel::kInfo, "vecstash.gpu.none", "no CUDA device (" + r.reason + "): using the CPU");
    return r;
  }();
  return p;
}

}  // namespace

bool gpu_available() { return probe().available; }

std::string gpu_description() {
  const Probe& p = probe();
  if (!p.available) return p.reason;
  cudaDeviceProp prop{};
  const cudaError_t err = cudaGetDeviceProperties(&prop, 0);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();
    return std::string("CUDA device 0 (properties unavailable: ") + cudaGetErrorString(err) + ")";
  }
  char line[512];
  std::snprintf(line, sizeof line, "%s, sm_%d%d, %.0f GiB", prop.name, prop.major, prop.minor,
                static_cast<double>(prop.totalGlobalMem) / (1024.0 * 1024.0 * 1024.0));
  std::string s = line;
  if (p.devices > 1) s += " (+" + std::to_string(p.devices - 1) + " more)";
  return s;
}

Result<std::unique_ptr<GpuContext>> GpuContext::create(int device) {
  const Probe& p = probe();
  if (!p.available) return Status::unavailable("no CUDA device (" + p.reason + ")");
  if (device < 0 || device >= p.devices)
    return Status::invalid_argument("CUDA device " + std::to_string(device) + " does not exist (" +
                                    std::to_string(p.devices) + " present)");
  return cuda::CudaContext::make(device);
}

}  // namespace vecstash::kernels
