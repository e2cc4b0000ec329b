#include "cpu/topk.h"

#include <limits>

#include "cpu/parallel.h"
#include "vecstash/kernels/search.h"

namespace vecstash::kernels {

void TopK::resize(std::size_t nq_, std::size_t k_, Metric metric) {
  nq = nq_;
  k = k_;
  ids.assign(nq * k, -1);
  const float worst = higher_is_better(metric) ? -std::numeric_limits<float>::infinity()
                                               : std::numeric_limits<float>::infinity();
  scores.assign(nq * k, worst);
}

namespace cpu {

void merge_and_write(std::vector<TopKHeap>& heaps, std::size_t parts, bool hib, int threads, TopK* out) {
  const std::size_t nq = out->nq, k = out->k;
  parallel_chunks(nq, threads, [&](std::size_t b, std::size_t e) {
    for (std::size_t q = b; q < e; ++q) {
      TopKHeap& h = heaps[q];
      for (std::size_t p = 1; p < parts; ++p)
        for (const auto& c : heaps[p * nq + q].items()) h.push(c.key, c.id);
      const auto sorted = h.take_sorted();
      for (std::size_t i = 0; i < sorted.size(); ++i) {
        out->ids[q * k + i] = sorted[i].id;
        out->scores[q * k + i] = hib ? sorted[i].key : -sorted[i].key;
      }
    }
  });
}

}  // namespace cpu
}  // namespace vecstash::kernels
