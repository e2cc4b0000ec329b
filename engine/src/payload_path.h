// Private to engine/: payload key paths ("a.b", "a[]", "a[2]", "a.\"x.y\"") as filters and payload
// indexes read them, and the walk that yields the values a path reaches in a payload.
// Thread safety: immutable values; the walk allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash::engine {

enum class StepKind : std::uint8_t { kKey, kIndex, kEach };

struct Step {
  StepKind kind = StepKind::kKey;
  std::size_t index = 0;  ///< kIndex
  std::string key;        ///< kKey
};
using Path = std::vector<Step>;

/// Parse a key path; InvalidArgument naming `where` and the offending character.
Status parse_path(std::string_view text, const std::string& where, Path* out);

/// Calls visit(value) for each value `path` reaches from `value`, stopping (and returning true) as
/// soon as visit returns true.
template <typename Visit>
inline bool walk(const Path& path, std::size_t step, const nlohmann::json& value, Visit& visit) noexcept {
  if (step == path.size()) return visit(value);
  const Step& s = path[step];
  switch (s.kind) {
    case StepKind::kKey:
      if (value.is_object()) {
        const auto& object = value.get_ref<const nlohmann::json::object_t&>();
        const auto it = object.find(s.key);
        return it != object.end() && walk(path, step + 1, it->second, visit);
      }
      if (value.is_array()) {  // an array where a key is expected: look into each element
        for (const nlohmann::json& element : value.get_ref<const nlohmann::json::array_t&>()) {
          if (walk(path, step, element, visit)) return true;
        }
      }
      return false;
    case StepKind::kIndex:
      if (value.is_array()) {
        const auto& array = value.get_ref<const nlohmann::json::array_t&>();
        return s.index < array.size() && walk(path, step + 1, array[s.index], visit);
      }
      return false;
    case StepKind::kEach:
      if (value.is_array()) {
        for (const nlohmann::json& element : value.get_ref<const nlohmann::json::array_t&>()) {
          if (walk(path, step + 1, element, visit)) return true;
        }
      }
      return false;
  }
  return false;
}

/// A JSON integer as int64 (false for floats and for unsigned values above INT64_MAX).
inline bool as_int64(const nlohmann::json& v, std::int64_t* out) noexcept {
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return false;
    *out = static_cast<std::int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<std::int64_t>();
    return true;
  }
  return false;
}

/// Call visit(v) for each scalar or object a value condition tests: every value the path reaches,
/// and the elements of a reached array (one level). Stops when visit returns true.
template <typename Visit>
bool for_each_leaf(const Path& path, const nlohmann::json& root, Visit& visit) noexcept {
  auto each = [&](const nlohmann::json& v) noexcept {
    if (!v.is_array()) return visit(v);
    for (const nlohmann::json& e : v.get_ref<const nlohmann::json::array_t&>()) {
      if (visit(e)) return true;
    }
    return false;
  };
  return walk(path, 0, root, each);
}

}  // namespace vecstash::engine
