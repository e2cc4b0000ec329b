// Bounded top-k selection with a deterministic order: higher key first, then smaller id.
// Internal to kernels/cpu. Keys are "higher is better" (distances are negated by the caller).
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace vecstash::kernels {
struct TopK;
}

namespace vecstash::kernels::cpu {

struct Candidate {
  float key;
  std::int64_t id;
};

inline bool better(const Candidate& a, const Candidate& b) noexcept {
  return a.key > b.key || (a.key == b.key && a.id < b.id);
}
/// `better` as a function object: the heap algorithms inline it (a function pointer is not always).
struct Better {
  bool operator()(const Candidate& a, const Candidate& b) const noexcept { return better(a, b); }
};

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
      std::push_heap(heap_.begin(), heap_.end(), Better{});
    } else if (better(c, heap_.front())) {
      // Replace the worst and sift down: one pass instead of pop_heap + push_heap.
      const std::size_t n = heap_.size();
      std::size_t i = 0;
      for (;;) {
        const std::size_t l = 2 * i + 1;
        if (l >= n) break;
        const std::size_t w = (l + 1 < n && better(heap_[l], heap_[l + 1])) ? l + 1 : l;  // the worse child
        if (!better(c, heap_[w])) break;
        heap_[i] = heap_[w];
        i = w;
      }
      heap_[i] = c;
    }
  }
  /// Keys below this cannot enter (-inf while the heap is not full).
  float threshold() const noexcept {
    return heap_.size() < k_ ? -std::numeric_limits<float>::infinity() : heap_.front().key;
  }

  const std::vector<Candidate>& items() const noexcept { return heap_; }
  /// Sorted best first; the heap is emptied.
  std::vector<Candidate> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), Better{});
    return std::move(heap_);
  }

 private:
  std::size_t k_ = 0;
  std::vector<Candidate> heap_;
};

/// Offer the scores of rows [b0, b0 + rows) to a heap; keys are scores (kHib) or negated distances.
template <bool kHib>
void offer(TopKHeap& h, const float* s, std::size_t rows, std::size_t b0) {
  float worst = h.threshold();
  for (std::size_t r = 0; r < rows; ++r) {
    const float key = kHib ? s[r] : -s[r];
    if (key >= worst) {
      h.push(key, static_cast<std::int64_t>(b0 + r));
      worst = h.threshold();
    }
  }
}

/// offer() restricted to the rows whose bit is set in `mask` (bit r for row b0 + r).
template <bool kHib>
void offer_masked(TopKHeap& h, const float* s, std::uint64_t mask, std::size_t b0) {
  float worst = h.threshold();
  for (; mask != 0; mask &= mask - 1) {
    const std::size_t r = static_cast<std::size_t>(std::countr_zero(mask));
    const float key = kHib ? s[r] : -s[r];
    if (key >= worst) {
      h.push(key, static_cast<std::int64_t>(b0 + r));
      worst = h.threshold();
    }
  }
}

/// `heaps` holds `parts` lists of out->nq heaps (part p, query q at p * nq + q) over disjoint row
/// ranges: merges the parts of each query and writes the sorted results (natural form: keys negated
/// back when !hib) into `out`, already sized by TopK::resize. Uses `threads` threads.
void merge_and_write(std::vector<TopKHeap>& heaps, std::size_t parts, bool hib, int threads, TopK* out);

}  // namespace vecstash::kernels::cpu
