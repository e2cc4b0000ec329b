// The engine: every collection of one database directory, the RocksDB store they share, and one
// thread pool. The REST server and the command line are thin layers over this class.
//
// Opening restores every collection exactly as it was acknowledged: same points, same calibration,
// same row order (so the same search results), the approximate index loaded from its snapshot plus
// the rows added after it.
//
// Thread safety: all methods are safe to call concurrently. A Collection handle stays valid after
// drop_collection() (its operations then fail with NotFound-free semantics: they act on a detached
// collection whose data is gone from disk); callers normally look collections up per request.
#pragma once

#include <cstddef>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/collection.h"
#include "vecstash/engine/collection_config.h"
#include "vecstash/engine/thread_pool.h"

namespace vecstash::engine {

struct EngineOptions {
  /// Kernel threads per search / encode call (0 = all cores). Default 0.
  int threads = 0;
  /// Worker threads of the engine's pool (0 = cores). Default 0.
  std::size_t pool_threads = 0;
  /// Jobs that may wait in the pool's queue. Default 256.
  std::size_t pool_queue = 256;
  /// true (default): fsync the write-ahead log before acknowledging a write.
  bool sync_writes = true;
  /// The store's block cache, which memtables are charged to as well: what RocksDB may hold in RAM.
  /// Default 32 MiB.
  std::size_t block_cache_mb = 32;
  /// Exact scans over codes on the GPU when one is usable (default true). Without a GPU (or a CUDA
  /// build) the CPU is used, logged once. The device holds one collection's codes at a time; a scan of
  /// another collection, or after a write, uploads them again.
  bool use_gpu = true;
};

class Engine {
 public:
  static Result<std::unique_ptr<Engine>> open(const std::filesystem::path& dir, const EngineOptions& options = {});
  ~Engine();  ///< waits for background jobs, snapshots indexes, closes the database
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// AlreadyExists if the name is taken; InvalidArgument for a bad name or config.
  Result<std::shared_ptr<Collection>> create_collection(const std::string& name, const CollectionConfig& config);
  /// NotFound if absent. Removes the collection's data from disk.
  Status drop_collection(const std::string& name);
  Result<std::shared_ptr<Collection>> collection(const std::string& name) const;
  std::vector<std::string> list_collections() const;

  ThreadPool& pool();
  const std::filesystem::path& path() const noexcept;

 private:
  explicit Engine(std::unique_ptr<EngineShared> shared);
  Status load_collections();
  // Every store record and file of collection `cid` (a drop, or left-overs of an interrupted one).
  Status erase_collection_data(std::uint32_t cid);
  std::filesystem::path collection_dir(std::uint32_t cid) const;
  std::unique_ptr<EngineShared> shared_;
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Collection>> collections_;
};

}  // namespace vecstash::engine
