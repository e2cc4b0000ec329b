# CUDA backend sources of vecstash_kernels (included from kernels/CMakeLists.txt when VECSTASH_WITH_CUDA).
set(VECSTASH_CUDA_SOURCES
  ${CMAKE_CURRENT_LIST_DIR}/context.cu
  ${CMAKE_CURRENT_LIST_DIR}/codec.cu
  ${CMAKE_CURRENT_LIST_DIR}/search.cu
  ${CMAKE_CURRENT_LIST_DIR}/pca.cu
  ${CMAKE_CURRENT_LIST_DIR}/relative.cu)

# Bit-exact codes: no multiply-add contraction in the codec (the kernels also use _rn intrinsics).
set_source_files_properties(${CMAKE_CURRENT_LIST_DIR}/codec.cu PROPERTIES COMPILE_OPTIONS "--fmad=false")
# Line info for profilers and compute-sanitizer; no effect on the generated code.
target_compile_options(vecstash_kernels PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-lineinfo>)

# Timing tool (host code only, through the public API); scripts/gpu-check.sh runs it.
add_executable(vecstash_gpu_timing ${CMAKE_CURRENT_LIST_DIR}/gpu_timing.cu)
target_link_libraries(vecstash_gpu_timing PRIVATE vecstash_kernels)
# Link with the C++ driver: vecstash_kernels carries host-compiler flags (OpenMP) that nvcc rejects.
set_target_properties(vecstash_gpu_timing PROPERTIES LINKER_LANGUAGE CXX)
