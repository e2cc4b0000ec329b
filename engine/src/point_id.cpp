#include "vecstash/engine/point_id.h"

#include <nlohmann/json.hpp>

#include "vecstash/storage/keys.h"

namespace vecstash::engine {
namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Result<PointId> PointId::parse_uuid(std::string_view text) {
  const bool hyphenated = text.size() == 36;
  if (!hyphenated && text.size() != 32) {
    return Status::invalid_argument("point id '" + std::string(text) +
                                    "' is not a UUID (expected 8-4-4-4-12 hex digits)");
  }
  std::array<std::uint8_t, 16> bytes{};
  std::size_t nibble = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (hyphenated && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (text[i] != '-') break;
      continue;
    }
    const int v = hex_value(text[i]);
    if (v < 0) {
      nibble = 99;
      break;
    }
    bytes[nibble / 2] = static_cast<std::uint8_t>(bytes[nibble / 2] | (v << ((nibble % 2) ? 0 : 4)));
    ++nibble;
  }
  if (nibble != 32) {
    return Status::invalid_argument("point id '" + std::string(text) +
                                    "' is not a UUID (expected 8-4-4-4-12 hex digits)");
  }
  PointId id;
  id.kind = Kind::kUuid;
  for (int i = 0; i < 8; ++i) id.hi = (id.hi << 8) | bytes[i];
  for (int i = 8; i < 16; ++i) id.lo = (id.lo << 8) | bytes[i];
  return id;
}

Result<PointId> PointId::from_json(const nlohmann::json& value) {
  if (value.is_number_unsigned()) return number(value.get<std::uint64_t>());
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) return number(value.get<std::uint64_t>());
  if (value.is_number_integer()) {
    return Status::invalid_argument("point id " + value.dump() + " is negative; ids are unsigned integers or UUIDs");
  }
  if (value.is_string()) return parse_uuid(value.get_ref<const std::string&>());
  return Status::invalid_argument("point id " + value.dump(-1, ' ', true).substr(0, 64) +
                                  " must be an unsigned integer or a UUID string");
}

std::string PointId::key() const {
  std::string k;
  k.reserve(kKeySize);
  k.push_back(static_cast<char>(kind));
  storage::append_u64_be(k, hi);
  storage::append_u64_be(k, lo);
  return k;
}

Result<PointId> PointId::from_key(std::string_view key) {
  if (key.size() != kKeySize || static_cast<std::uint8_t>(key[0]) > 1) {
    return Status::corruption("malformed point id key (" + std::to_string(key.size()) + " bytes)");
  }
  PointId id;
  id.kind = static_cast<Kind>(key[0]);
  id.hi = *storage::read_u64_be(key, 1);
  id.lo = *storage::read_u64_be(key, 9);
  if (id.kind == Kind::kNumber && id.hi != 0) return Status::corruption("malformed point id key");
  return id;
}

std::string PointId::to_string() const {
  if (kind == Kind::kNumber) return std::to_string(lo);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    const std::uint64_t word = i < 8 ? hi : lo;
    const auto byte = static_cast<unsigned>((word >> (8 * (7 - (i % 8)))) & 0xFFu);
    s.push_back(kHex[byte >> 4]);
    s.push_back(kHex[byte & 0xFu]);
  }
  return s;
}

nlohmann::json PointId::to_json() const {
  if (kind == Kind::kNumber) return nlohmann::json(lo);
  return nlohmann::json(to_string());
}

}  // namespace vecstash::engine
