// Bounded top-k selection with a deterministic order: higher key first, then smaller id.
// Internal to kernels/cpu. Keys are "higher is better" (distances are negated by the caller).
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace vecstash::kernels::cpu {

struct Candidate {
  float key;
  std::int64_t id;
};

inline bool better(const Candidate& a, const Candidate& b) noexcept {
  return a.key > b.key || (a.key == b.key && a.id < b.id);
}

class TopKHeap {
 public:
  explicit TopKHeap(std::size_t k = 0) { reset(k); }
  void reset(std::size_t k) {
    k_ = k;
    heap_.clear();
    heap_.reserve(k);
  }
  std::size_t size() const noexcept { return heap_.size(); }

  // The heap keeps the worst candidate at the front (comparator `better` as "less").
  void push(float key, std::int64_t id) {
    if (k_ == 0) return;
    const Candidate c{key, id};
    if (heap_.size() < k_) {
      heap_.push_back(c);
      std::push_heap(heap_.begin(), heap_.end(), better);
    } else if (better(c, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), better);
      heap_.back() = c;
      std::push_heap(heap_.begin(), heap_.end(), better);
    }
  }
  /// Keys below this cannot enter (-inf while the heap is not full).
  float threshold() const noexcept {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().key;
  }

  const std::vector<Candidate>& items() const noexcept { return heap_; }
  /// Sorted best first; the heap is emptied.
  std::vector<Candidate> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), better);
    return std::move(heap_);
  }

 private:
  std::size_t k_ = 0;
  std::vector<Candidate> heap_;
};

}  // namespace vecstash::kernels::cpu
