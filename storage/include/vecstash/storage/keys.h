// Key encoding: fixed-width big-endian integers so that bytewise key order is numeric order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace vecstash::storage {

inline void append_u32_be(std::string& out, std::uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFFu));
}
inline void append_u64_be(std::string& out, std::uint64_t v) {
  for (int s = 56; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xFFu));
}
/// The big-endian uint64 at `pos`, or nullopt when fewer than 8 bytes remain.
inline std::optional<std::uint64_t> read_u64_be(std::string_view s, std::size_t pos = 0) {
  if (pos > s.size() || s.size() - pos < 8) return std::nullopt;
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(s[pos + i]);
  return v;
}
/// The smallest key greater than every key starting with `prefix` (empty: no upper bound).
inline std::string prefix_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) != 0xFFu) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace vecstash::storage
