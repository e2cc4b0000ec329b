// Private to engine/: a growable array of trivially copyable values in anonymous memory mappings.
//
// std::vector grows by allocating a larger block and copying, so for an instant it holds the old
// and the new array: appending to a collection of codes costs up to 2-3x its size at the moment of
// a regrowth. MappedArray reserves address space generously (the reservation costs no RAM: pages
// become resident when first written) and grows with mremap(2), which moves page-table entries
// instead of bytes. Resident memory therefore follows size(), whatever the growth pattern, and a
// growth never copies the data.
//
// Thread safety: none; owners guard it (resize may move the data, as std::vector's does).
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <type_traits>
#include <utility>

namespace vecstash::engine {

template <typename T>
class MappedArray {
  static_assert(std::is_trivially_copyable_v<T>, "MappedArray holds plain values");

 public:
  MappedArray() = default;
  explicit MappedArray(std::size_t n) { resize(n); }
  ~MappedArray() { release(); }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
  MappedArray(MappedArray&& o) noexcept { take(o); }
  MappedArray& operator=(MappedArray&& o) noexcept {
    if (this != &o) {
      release();
      take(o);
    }
    return *this;
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  std::span<T> span() noexcept { return {data_, size_}; }
  std::span<const T> span() const noexcept { return {data_, size_}; }

  /// Resize to n elements; new elements are zero. Throws std::bad_alloc when the address space or
  /// memory is exhausted (as std::vector would).
  void resize(std::size_t n) {
    if (n > size_) {
      reserve(n);
      // Fresh pages are zero already; elements dropped by an earlier shrink may not be.
      const std::size_t dirty_end = std::min(n, touched_);
      if (dirty_end > size_) std::memset(static_cast<void*>(data_ + size_), 0, (dirty_end - size_) * sizeof(T));
      touched_ = std::max(touched_, n);
    } else if (n < size_) {
      // Give the whole pages past the new end back; they read as zero afterwards.
      const std::size_t keep = round_up(n * sizeof(T));
      if (keep < mapped_) ::madvise(reinterpret_cast<char*>(data_) + keep, mapped_ - keep, MADV_DONTNEED);
      touched_ = std::min(touched_, (keep + sizeof(T) - 1) / sizeof(T));
    }
    size_ = n;
  }
  /// Make room for n elements without changing size(): address space only, no resident memory.
  void reserve(std::size_t n) {
    const std::size_t need = round_up(n * sizeof(T));
    if (need <= mapped_) return;
    // Double the reservation: it is address space, not memory.
    const std::size_t want = std::max(need, mapped_ * 2);
    void* p = data_ == nullptr ? ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                               : ::mremap(data_, mapped_, want, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<T*>(p);
    mapped_ = want;
  }
  /// Free everything (size 0).
  void clear() noexcept {
    release();
    size_ = 0;
  }
  /// Resident bytes: the pages that hold size() elements.
  std::size_t memory_bytes() const noexcept { return round_up(size_ * sizeof(T)); }

 private:
  static std::size_t page() noexcept {
    static const std::size_t p = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return p;
  }
  static std::size_t round_up(std::size_t bytes) noexcept { return (bytes + page() - 1) / page() * page(); }
  void take(MappedArray& o) noexcept {
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
    touched_ = std::exchange(o.touched_, 0);
  }
  void release() noexcept {
    if (data_ != nullptr) ::munmap(data_, mapped_);
    data_ = nullptr;
    mapped_ = 0;
    touched_ = 0;
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t mapped_ = 0;   // bytes of address space mapped
  std::size_t touched_ = 0;  // elements ever made part of size() since the mapping was made
};

}  // namespace vecstash::engine
