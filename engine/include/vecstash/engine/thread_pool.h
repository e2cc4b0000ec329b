// A fixed set of worker threads with a bounded queue: submit() refuses work (ResourceExhausted)
// instead of queueing without limit. The engine owns one; the REST layer runs searches and ingest
// on it, the engine runs background jobs (recalibration, index builds) on it.
//
// Thread safety: submit() may be called from any thread. The destructor finishes queued jobs.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash::engine {

class ThreadPool {
 public:
  /// threads >= 1; queue_capacity >= 1 jobs waiting (running jobs not counted).
  ThreadPool(std::size_t threads, std::size_t queue_capacity);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  /// Queue a job; ResourceExhausted when the queue is full, Unavailable after shutdown began.
  Status submit(std::function<void()> job);
  std::size_t threads() const noexcept { return workers_.size(); }
  std::size_t queued() const;

 private:
  void work();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::size_t capacity_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace vecstash::engine
