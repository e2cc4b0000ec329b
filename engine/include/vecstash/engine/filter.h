// Qdrant-compatible payload filters: parse and validate a Filter object once, evaluate it per point.
//
// Supported conditions (Qdrant REST shapes): field conditions on a key ("match" with value / any /
// except / text / text_any / phrase / prefix, "range", "values_count", "is_empty": bool,
// "is_null": bool), {"is_empty": {"key"}}, {"is_null": {"key"}}, {"has_id": [ids]},
// {"nested": {"key", "filter"}}, and a Filter used as a condition. A range whose bounds are RFC 3339
// strings is a datetime range. Geo conditions, has_vector and slice are rejected as unsupported. The per-condition
// rules (arrays, nulls, missing keys) are listed at the top of engine/src/filter.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/point_id.h"

namespace vecstash::engine {

class PayloadIndexes;  // engine-internal (engine/src/payload_index.h)

/// A compiled payload filter.
///
/// Thread safety: immutable after parse(); matches() may be called concurrently from any number of
/// threads. Copies are cheap (they share the compiled program).
class Filter {
 public:
  /// A filter without conditions: matches every point.
  Filter() noexcept;

  /// Parse and validate a Qdrant Filter object:
  ///   {"must": [Condition], "should": [Condition], "must_not": [Condition],
  ///    "min_should": {"conditions": [Condition], "min_count": n >= 1}}
  /// must/should/must_not may also be a single Condition object, or null. null and {} match all.
  ///
  /// Semantics: must = all match, must_not = none matches, should = at least one matches (an empty
  /// should array is no constraint), min_should = at least min_count of its conditions match.
  /// Keys are paths: "a.b" walks into objects, "a[]" expands an array, "a[2]" picks an element and
  /// "a.\"x.y\"" quotes a key; an array met where a key is expected is expanded too, so "a.b" and
  /// "a[].b" both reach 1 in {"a": [{"b": 1}]}. A value condition matches when any value reached
  /// (or, for an array value, any of its elements) satisfies it. Types are strict: 1 never matches
  /// "1", true never matches 1, and match on 1 never matches 1.0; range compares any number
  /// numerically. A field condition with several clauses (e.g. match and range) requires all of them.
  ///
  /// Errors: InvalidArgument whose message starts with the JSON path of the offending element, e.g.
  /// "filter.must[1].range.gt: expected a number".
  static Result<Filter> parse(const nlohmann::json& filter);

  /// Does the point match? `payload` is its payload object; nullptr (or a non-object) is an empty
  /// payload. Does not allocate.
  bool matches(const PointId& id, const nlohmann::json* payload) const noexcept;

  /// True when the filter has no conditions (every point matches), e.g. null, {} or {"must": [{}]}.
  bool matches_all() const noexcept;

  /// Fast path for id-restricted filters: when every matching point must have one of a known set of
  /// ids (has_id conditions in must, or in should / min_should when all their conditions restrict
  /// ids), returns that set, sorted and unique; matches() must still be checked on those points.
  /// nullptr when the filter does not restrict ids this way.
  const std::vector<PointId>* required_ids() const noexcept;

  /// Engine-internal: the rows that can match, found in payload indexes (rows may include dead ones).
  struct Candidates {
    std::vector<std::uint32_t> rows;  ///< sorted, unique
    bool exact = false;               ///< every live row listed matches, and no other live row does
  };
  /// Engine-internal: the live row of a point id, if any.
  using RowOf = std::function<std::optional<std::uint32_t>(const PointId&)>;
  /// Engine-internal: the candidates of this filter from the indexed fields; nullopt when the indexes
  /// cannot narrow it down (every row is a candidate).
  std::optional<Candidates> candidates(const PayloadIndexes& indexes, const RowOf& row_of) const;
  /// Engine-internal: this filter as a collection with these indexes evaluates it: match text and
  /// text_any on a key with a full-text index compare tokens (every / some token of the query present
  /// among the value's tokens), as Qdrant does; without one they compare substrings.
  Filter bind(const PayloadIndexes& indexes) const;
  /// False when matches() never looks at the payload (has_id alone, constants).
  bool reads_payload() const noexcept;

  struct Program;  ///< the compiled condition tree (defined in filter.cpp)

 private:
  explicit Filter(std::shared_ptr<const Program> program) noexcept;

  std::shared_ptr<const Program> program_;  ///< nullptr: match everything
};

}  // namespace vecstash::engine
