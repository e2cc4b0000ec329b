// The GPU backend of a build without CUDA (VECSTASH_CUDA=OFF or no nvcc found): no device is ever
// available and every entry point reports Unavailable, so callers fall back to the CPU.
#include "vecstash/kernels/gpu.h"

namespace vecstash::kernels {

bool gpu_available() { return false; }

std::string gpu_description() { return "built without CUDA"; }

Result<std::unique_ptr<GpuContext>> GpuContext::create(int /*device*/) {
  return Status::unavailable("GPU backend unavailable: vecstash was built without CUDA");
}

}  // namespace vecstash::kernels
