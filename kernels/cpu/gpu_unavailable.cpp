// The GPU backend of a build without CUDA: every entry point reports Unavailable.
#include "vecstash/kernels/gpu.h"

namespace vecstash::kernels {

bool gpu_available() { return false; }

std::string gpu_description() { return "this build has no CUDA backend (built without CUDA)"; }

Result<std::unique_ptr<GpuContext>> GpuContext::create(int /*device*/) {
  return Status::unavailable("GPU backend unavailable: vecstash was built without CUDA");
}

}  // namespace vecstash::kernels
