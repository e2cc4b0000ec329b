// Point ids as Qdrant defines them: an unsigned 64-bit integer or a UUID.
//
// A PointId is a small value type (24 bytes). Its key() is a 17-byte string whose bytewise order is
// (kind, value): integers first, in numeric order, then UUIDs in byte order. It is what storage keys
// and the id map use.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

#include "vecstash/common/status.h"

namespace vecstash::engine {

struct PointId {
  enum class Kind : std::uint8_t { kNumber = 0, kUuid = 1 };
  Kind kind = Kind::kNumber;
  std::uint64_t hi = 0;  ///< UUID bytes 0..7 (big-endian); 0 for numbers
  std::uint64_t lo = 0;  ///< the number, or UUID bytes 8..15 (big-endian)

  static constexpr PointId number(std::uint64_t n) noexcept { return {Kind::kNumber, 0, n}; }
  /// Parse "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (hex, either case) or the 32-hex-digit simple form.
  static Result<PointId> parse_uuid(std::string_view text);
  /// A JSON id: a non-negative integer or a UUID string (a decimal string is not an id, as in Qdrant).
  static Result<PointId> from_json(const nlohmann::json& value);
  /// The 17-byte storage key; from_key() inverts it.
  std::string key() const;
  static Result<PointId> from_key(std::string_view key);
  static constexpr std::size_t kKeySize = 17;

  bool is_uuid() const noexcept { return kind == Kind::kUuid; }
  /// Decimal for numbers, canonical lower-case hyphenated form for UUIDs.
  std::string to_string() const;
  nlohmann::json to_json() const;

  friend constexpr auto operator<=>(const PointId&, const PointId&) = default;
};

struct PointIdHash {
  std::size_t operator()(const PointId& id) const noexcept {
    std::uint64_t h =
        id.lo * 0x9E3779B97F4A7C15ull ^ (id.hi + static_cast<std::uint64_t>(id.kind) * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    return static_cast<std::size_t>(h);
  }
};

}  // namespace vecstash::engine
