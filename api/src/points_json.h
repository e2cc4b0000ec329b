// Internal to the api library: the body of an upsert (PUT /collections/{c}/points), read without a
// JSON DOM for the vectors.
//
// Upserts carry most of the bytes a server receives (a 384-d vector is ~4 KB of JSON), and a
// general DOM (nlohmann::json) spends most of an ingest's CPU building a node per number. This
// reader parses the body with simdjson and writes vector elements straight into one float array;
// ids and payloads become nlohmann::json values as the engine takes them. It accepts what the DOM
// path accepted, with the same error messages, in both of Qdrant's forms:
//   {"points": [{"id", "vector", "payload"}...]}    and    {"batch": {"ids", "vectors", "payloads"}}
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/collection_config.h"
#include "vecstash/engine/point_id.h"

namespace vecstash::api {

struct UpsertBody {
  std::vector<engine::PointId> ids;
  std::vector<float> vectors;  ///< ids.size() x dim, row-major
  std::vector<std::optional<nlohmann::json>> payloads;
};

/// Parse and validate an upsert body for a collection with `config`; at most `max_points` points.
/// Errors are InvalidArgument with Qdrant-style messages ("Json deserialize error: ...",
/// "Wrong input: ...").
Result<UpsertBody> parse_upsert_body(std::string_view body, const engine::CollectionConfig& config,
                                     std::size_t max_points);

/// Nesting deeper than this in a request body is refused (it bounds every recursive walk of it).
inline constexpr std::size_t kMaxJsonDepth = 128;

}  // namespace vecstash::api
