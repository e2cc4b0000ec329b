// Private to engine/: payload indexes, one per indexed field, as Qdrant's payload_schema names them:
// keyword, integer, float, bool, uuid, datetime and text (full-text tokens).
//
// An index maps the values a field's key reaches in each row's payload to rows, with the same path
// rules as filters (filter.h: "a.b", "a[]", arrays expanded one level), and keeps each row's values
// (the forward side) so that a payload change removes exactly the old entries. Rows are numbers of
// the collection's row store; dead rows are dropped lazily (searches intersect with the live rows;
// compaction renumbers and drops them).
//
// What each type indexes (other values of the field make the row "uncovered": it is kept aside and
// always offered as a candidate, so an index never hides a match):
//   keyword   strings                    match value / any (string)
//   uuid      strings in UUID form       match value / any (string)
//   integer   integers (int64)           match value / any (integer), range
//   float     numbers (as double)        range
//   bool      booleans                   match value (bool)
//   datetime  RFC 3339 strings (as microseconds since the epoch, UTC)   range with datetime bounds
//   text      string tokens (lower-cased, split at non-alphanumeric ASCII)  match text / text_any
//
// Thread safety: none; the collection mutates indexes under its exclusive lock and reads them under
// its shared lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "vecstash/common/status.h"

namespace vecstash::engine {

enum class FieldSchema : std::uint8_t { kKeyword, kInteger, kFloat, kBool, kUuid, kDatetime, kText };

/// "keyword", "integer", ... (Qdrant's PayloadSchemaType names).
std::string_view field_schema_name(FieldSchema s) noexcept;
std::optional<FieldSchema> field_schema_from_name(std::string_view name) noexcept;

/// Sorted, unique row numbers.
using RowList = std::vector<std::uint32_t>;

/// RFC 3339 date-times as Qdrant accepts them: "2023-02-08T10:49:00Z", "2023-02-08 10:49:00.123+01:00",
/// "2023-02-08T10:49:00" (UTC) or a date alone "2023-02-08" (midnight UTC). Microseconds since
/// 1970-01-01T00:00:00Z, or nullopt when the text is not such a date-time.
std::optional<std::int64_t> parse_datetime(std::string_view text) noexcept;

/// The full-text tokens of a string: maximal runs of ASCII letters and digits and of non-ASCII
/// bytes (UTF-8 words stay whole), ASCII letters lower-cased. Sorted and unique when `unique`.
std::vector<std::string> text_tokens(std::string_view text, bool unique);

class FieldIndex {
 public:
  FieldIndex(std::string field, FieldSchema schema);
  ~FieldIndex();
  FieldIndex(FieldIndex&&) noexcept;
  FieldIndex& operator=(FieldIndex&&) noexcept;

  const std::string& field() const noexcept { return field_; }
  FieldSchema schema() const noexcept { return schema_; }

  /// Index the values of `payload` (an object) at `row`; replaces what the row had.
  void set(std::uint32_t row, const nlohmann::json& payload);
  /// Forget the row's values.
  void remove(std::uint32_t row);
  /// Whether the row has an indexed value.
  bool has_values(std::uint32_t row) const noexcept;
  /// Rows (live or not) with at least one indexed value, or uncovered.
  std::size_t rows_with_values() const noexcept;
  /// Rows holding values this index cannot represent (candidates of the lookups they could satisfy).
  const RowList& uncovered() const noexcept;
  /// Whether match_integers / match_strings / range / ... answers are exactly the matching rows: true
  /// unless uncovered rows were added to them (integer ranges, uuid matches).
  bool exact_ranges() const noexcept { return uncovered().empty(); }
  /// Bytes held (estimated from container sizes).
  std::size_t memory_bytes() const noexcept;
  /// Call fn(row) for every row with an indexed value.
  void for_each_row(const std::function<void(std::uint32_t)>& fn) const;

  // Lookups: rows whose values satisfy the condition (nullopt: this index type cannot answer it),
  // plus the uncovered rows where those could satisfy it too (ranges on an integer index, strings on
  // a uuid index); exact_for() says which lookups are exact.
  std::optional<RowList> match_strings(std::span<const std::string> values) const;
  std::optional<RowList> match_integers(std::span<const std::int64_t> values) const;
  std::optional<RowList> match_bool(bool value) const;
  /// Numbers (integer and float indexes) with gt < x, gte <= x, x < lt, x <= lte.
  std::optional<RowList> range(double gt, double gte, double lt, double lte) const;
  /// Date-times (microseconds) in [from, to] (a datetime index).
  std::optional<RowList> datetime_range(std::int64_t from, std::int64_t to) const;
  /// Text index: rows holding every token (all) or at least one (any) of `tokens`.
  std::optional<RowList> text(std::span<const std::string> tokens, bool all) const;

  /// Renumber rows after a compaction: old_to_new[r] is the new row or UINT32_MAX for a dropped row.
  void renumber(std::span<const std::uint32_t> old_to_new);

  void serialize(std::vector<std::uint8_t>* out) const;
  static Result<FieldIndex> deserialize(std::span<const std::uint8_t> bytes);

  struct Impl;

 private:
  std::string field_;
  FieldSchema schema_;
  std::unique_ptr<Impl> impl_;
};

/// The indexes of one collection, by field name (the key text exactly as given when created).
class PayloadIndexes {
 public:
  bool empty() const noexcept { return fields_.empty(); }
  const FieldIndex* find(std::string_view field) const noexcept;
  /// A new, empty index (replacing one of the same field).
  FieldIndex& add(std::string field, FieldSchema schema);
  bool remove(std::string_view field);
  const std::map<std::string, FieldIndex, std::less<>>& fields() const noexcept { return fields_; }

  /// Index (or re-index) one row in every field.
  void set(std::uint32_t row, const nlohmann::json& payload);
  void remove_row(std::uint32_t row);
  void renumber(std::span<const std::uint32_t> old_to_new);
  std::size_t memory_bytes() const noexcept;

  /// Versioned blob "VSPI": every field's definition and content.
  std::vector<std::uint8_t> serialize() const;
  static Result<PayloadIndexes> deserialize(std::span<const std::uint8_t> blob);

 private:
  std::map<std::string, FieldIndex, std::less<>> fields_;
};

}  // namespace vecstash::engine
