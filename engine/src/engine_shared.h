// Private to engine/: resources shared by the engine and its collections, and the storage layout.
#pragma once

#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/engine/engine.h"
#include "vecstash/engine/point_id.h"
#include "vecstash/engine/thread_pool.h"
#include "vecstash/kernels/gpu.h"
#include "vecstash/storage/keys.h"
#include "vecstash/storage/store.h"

namespace vecstash::engine {

struct EngineShared {
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<ThreadPool> pool;
  EngineOptions options;
  // The GPU (null when unused or absent). One stream, so one user at a time; `gpu_owner` and
  // `gpu_version` say whose codes, as of which write, are on the device.
  std::unique_ptr<kernels::GpuContext> gpu;
  std::mutex gpu_mu;
  std::uint64_t gpu_owner = 0;
  std::uint64_t gpu_version = 0;
  std::atomic<std::uint64_t> next_instance{1};
};

// Storage layout. Every key of a collection's data starts with its 4-byte big-endian id (cid), so a
// dropped collection is one range delete per column family.
//   meta      "collection/" name             -> blob VSCO: cid, config JSON
//   meta      "state/" cid                   -> blob VSST: calibration generation, row epoch, row watermark
//   meta      "calibration/" cid generation  -> blob VSCA: PCA blob (optional), codec blob
//   meta      "next_cid"                     -> u32 big-endian
//   payloads  cid id                         -> 0x01, JSON text
//   rowmarks  cid 'D' epoch row              -> (empty): the row's point was deleted or replaced
//   rowmarks  cid 'P' epoch row              -> (empty): its payload changed after the payload-index snapshot
//   meta      "payload_schema/" cid          -> JSON [{"field", "type"}]: the payload indexes
// Files, under collections/<cid in hex>/ (docs/ARCHITECTURE.md, "Storage"):
//   rows-g<generation>-e<epoch>.vsr   RowFile: per row the id key, the code and the squared norm
//   originals-e<epoch>.vsr            RowFile: per row the float32 original
//   payload-index.vspi                blob VSPS: epoch, rows covered, the payload indexes
//   ann-index.vsis                    blob VSIS: generation, epoch, rows covered, AnnIndex blob
// Earlier releases kept ids, codes, originals and index snapshots as records of the ids, codes,
// originals and index columns (cid id -> row; cid generation id -> code; cid id -> original;
// cid -> snapshot); opening migrates them.
// The directory of collection `cid`'s files under the data directory: collections/<cid in hex>.
inline std::filesystem::path collection_dir(const std::filesystem::path& data_dir, std::uint32_t cid) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string name(8, '0');
  for (int i = 7; i >= 0; --i, cid >>= 4) name[static_cast<std::size_t>(i)] = kHex[cid & 15];
  return data_dir / "collections" / name;
}

// `s` with "collection '<name>': " in front of its message (ok stays ok).
inline Status with_collection(const Status& s, const std::string& name) {
  if (s.is_ok()) return s;
  return Status(s.code(), "collection '" + name + "': " + s.message());
}

// Scale `v` (dim floats) to unit L2 norm in place; a zero vector stays zero.
inline void normalize(float* v, std::size_t dim) {
  double norm = 0.0;
  for (std::size_t j = 0; j < dim; ++j) norm += static_cast<double>(v[j]) * v[j];
  if (norm <= 0.0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(norm));
  for (std::size_t j = 0; j < dim; ++j) v[j] *= inv;
}

inline std::vector<std::uint8_t> to_bytes(std::string_view s) { return {s.begin(), s.end()}; }

namespace keys {

inline std::string cid(std::uint32_t c) {
  std::string k;
  storage::append_u32_be(k, c);
  return k;
}
inline std::string point(std::uint32_t c, const PointId& id) { return cid(c) + id.key(); }
inline std::string code_prefix(std::uint32_t c, std::uint32_t generation) {
  std::string k = cid(c);
  storage::append_u32_be(k, generation);
  return k;
}
inline std::string code(std::uint32_t c, std::uint32_t generation, const PointId& id) {
  return code_prefix(c, generation) + id.key();
}
inline std::string collection(std::string_view name) { return "collection/" + std::string(name); }
inline std::string state(std::uint32_t c) { return "state/" + cid(c); }
inline std::string calibration(std::uint32_t c, std::uint32_t generation) {
  std::string k = "calibration/" + cid(c);
  storage::append_u32_be(k, generation);
  return k;
}
inline constexpr std::string_view kNextCid = "next_cid";
inline constexpr std::uint8_t kPayloadFormat = 1;

}  // namespace keys
}  // namespace vecstash::engine
