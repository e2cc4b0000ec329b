// Internal to kernels/cuda: CUDA/cuBLAS/cuSOLVER error translation into vecstash::Status, a
// grow-only device buffer, and small device helpers shared by the kernels. Nothing here is visible
// outside kernels/cuda (the public header gpu.h is CUDA-free).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "vecstash/common/status.h"

namespace vecstash::kernels::cuda {

/// Status for a failed CUDA runtime call. Out-of-memory becomes ResourceExhausted, everything
/// else Internal; `what` names the call (the macro passes its source text).
Status cuda_error(cudaError_t err, const char* what);
Status cublas_error(cublasStatus_t st, const char* what);
Status cusolver_error(cusolverStatus_t st, const char* what);

}  // namespace vecstash::kernels::cuda

/// Return a Status from the enclosing function when a CUDA runtime call fails.
#define VECSTASH_CUDA_TRY(expr)                                                                                     \
  do {                                                                                                              \
    const cudaError_t vecstash_cuda_err_ = (expr);                                                                  \
    if (vecstash_cuda_err_ != cudaSuccess) return ::vecstash::kernels::cuda::cuda_error(vecstash_cuda_err_, #expr); \
  } while (0)

/// After a kernel launch: configuration errors are reported by cudaGetLastError().
#define VECSTASH_CUDA_CHECK_LAUNCH() VECSTASH_CUDA_TRY(cudaGetLastError())

#define VECSTASH_CUBLAS_TRY(expr)                                                 \
  do {                                                                            \
    const cublasStatus_t vecstash_cublas_st_ = (expr);                            \
    if (vecstash_cublas_st_ != CUBLAS_STATUS_SUCCESS)                             \
      return ::vecstash::kernels::cuda::cublas_error(vecstash_cublas_st_, #expr); \
  } while (0)

#define VECSTASH_CUSOLVER_TRY(expr)                                                   \
  do {                                                                                \
    const cusolverStatus_t vecstash_cusolver_st_ = (expr);                            \
    if (vecstash_cusolver_st_ != CUSOLVER_STATUS_SUCCESS)                             \
      return ::vecstash::kernels::cuda::cusolver_error(vecstash_cusolver_st_, #expr); \
  } while (0)

namespace vecstash::kernels::cuda {

/// Device memory that only grows: reserve() reallocates when asked for more than it holds and keeps
/// the allocation otherwise, so that repeated calls (the search path) do not allocate.
/// The contents are not preserved across a growth. Not thread-safe (owned by one context).
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(std::exchange(o.bytes_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      release();
      ptr_ = std::exchange(o.ptr_, nullptr);
      bytes_ = std::exchange(o.bytes_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  /// Make at least `bytes` available (0 is allowed and allocates nothing).
  Status reserve(std::size_t bytes) {
    if (bytes <= bytes_) return Status::ok();
    release();
    void* p = nullptr;
    const cudaError_t err = cudaMalloc(&p, bytes);
    if (err != cudaSuccess) {
      (void)cudaGetLastError();  // out-of-memory is not sticky; clear it so later calls work
      return cuda_error(err, "cudaMalloc");
    }
    ptr_ = p;
    bytes_ = bytes;
    return Status::ok();
  }
  void release() noexcept {
    if (ptr_ != nullptr) (void)cudaFree(ptr_);
    ptr_ = nullptr;
    bytes_ = 0;
  }

  std::size_t bytes() const noexcept { return bytes_; }
  void* data() const noexcept { return ptr_; }
  template <typename T>
  T* as(std::size_t byte_offset = 0) const noexcept {
    return reinterpret_cast<T*>(static_cast<std::uint8_t*>(ptr_) + byte_offset);
  }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

/// Carves one allocation into aligned sub-buffers: call add() for each part, reserve the total,
/// then read the offsets back.
class Layout {
 public:
  /// Returns the byte offset of a part of `bytes` bytes, aligned to 256 bytes.
  std::size_t add(std::size_t bytes) noexcept {
    const std::size_t off = total_;
    total_ += (bytes + 255) / 256 * 256;
    return off;
  }
  std::size_t total() const noexcept { return total_; }

 private:
  std::size_t total_ = 0;
};

constexpr std::size_t round_up(std::size_t x, std::size_t m) noexcept { return (x + m - 1) / m * m; }
constexpr std::size_t ceil_div(std::size_t x, std::size_t m) noexcept { return (x + m - 1) / m; }

/// Grid size for a grid-stride loop over `work` items with `threads` per block.
inline unsigned grid_for(std::size_t work, unsigned threads, std::size_t max_blocks = 1u << 20) noexcept {
  std::size_t blocks = ceil_div(work, threads);
  if (blocks == 0) blocks = 1;
  if (blocks > max_blocks) blocks = max_blocks;
  return static_cast<unsigned>(blocks);
}

// ---- device helpers --------------------------------------------------------------------------
#if defined(__CUDACC__)
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}
__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

/// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). Every thread of the block
/// must call it; the result is valid in every thread. `scratch` holds 32 doubles.
__device__ __forceinline__ double block_sum(double v, double* scratch) {
  const unsigned lane = threadIdx.x & 31u, warp = threadIdx.x >> 5;
  const unsigned nwarps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // scratch may still be read by an earlier call
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double t = lane < nwarps ? scratch[lane] : 0.0;
  return warp_sum(t);
}
#endif

}  // namespace vecstash::kernels::cuda
