#include "cpu/topk.h"

#include <limits>

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

}  // namespace vecstash::kernels
