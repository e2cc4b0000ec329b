// Thread helpers over OpenMP (serial when OpenMP is absent).
#pragma once

#include <algorithm>
#include <cstddef>

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace vecstash::kernels::cpu {

/// 0 -> all available threads; never more than `work_items`, never less than 1.
inline int resolve_threads(int requested, std::size_t work_items) noexcept {
#if defined(_OPENMP)
  int t = requested > 0 ? requested : omp_get_max_threads();
#else
  int t = 1;
  (void)requested;
#endif
  if (work_items < static_cast<std::size_t>(t)) t = static_cast<int>(std::max<std::size_t>(work_items, 1));
  return std::max(t, 1);
}

/// Run fn(begin, end) over [0, n) split into contiguous chunks on `threads` threads.
template <typename Fn>
void parallel_chunks(std::size_t n, int threads, Fn&& fn) {
  if (n == 0) return;
  if (threads <= 1) {
    fn(std::size_t{0}, n);
    return;
  }
#if defined(_OPENMP)
#pragma omp parallel num_threads(threads)
  {
    const std::size_t t = static_cast<std::size_t>(omp_get_thread_num());
    const std::size_t nt = static_cast<std::size_t>(omp_get_num_threads());
    const std::size_t begin = n * t / nt, end = n * (t + 1) / nt;
    if (begin < end) fn(begin, end);
  }
#else
  fn(std::size_t{0}, n);
#endif
}

/// Run fn(i) for i in [0, n) with dynamic scheduling (uneven work items).
template <typename Fn>
void parallel_for_dynamic(std::size_t n, int threads, Fn&& fn) {
#if defined(_OPENMP)
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (std::ptrdiff_t i = 0; i < static_cast<std::ptrdiff_t>(n); ++i) fn(static_cast<std::size_t>(i));
    return;
  }
#endif
  for (std::size_t i = 0; i < n; ++i) fn(i);
}

}  // namespace vecstash::kernels::cpu
