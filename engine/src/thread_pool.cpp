#include "vecstash/engine/thread_pool.h"

#include <algorithm>

namespace vecstash::engine {

ThreadPool::ThreadPool(std::size_t threads, std::size_t queue_capacity)
    : capacity_(std::max<std::size_t>(1, queue_capacity)) {
  threads = std::max<std::size_t>(1, threads);
  workers_.reserve(threads);
  for (std::size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

Status ThreadPool::submit(std::function<void()> job) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return Status::unavailable("the engine is shutting down");
    if (queue_.size() >= capacity_) {
      return Status::resource_exhausted("the engine's work queue is full (" + std::to_string(capacity_) + " jobs)");
    }
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
  return Status::ok();
}

std::size_t ThreadPool::queued() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void ThreadPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and drained
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    job();
  }
}

}  // namespace vecstash::engine
