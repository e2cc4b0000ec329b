#include "payload_index.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "mapped_array.h"
#include "payload_path.h"
#include "vecstash/common/blob.h"

namespace vecstash::engine {

namespace {

using nlohmann::json;

constexpr std::array<std::string_view, 7> kSchemaNames = {"keyword", "integer",  "float", "bool",
                                                          "uuid",    "datetime", "text"};
constexpr std::uint16_t kIndexesVersion = 1;
constexpr std::uint32_t kNoRow = std::numeric_limits<std::uint32_t>::max();
// Appended (value, row) pairs are merged into the sorted array once this many wait.
constexpr std::size_t kTailLimit = 4096;

bool is_uuid_text(const std::string& s) noexcept {
  auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); };
  if (s.size() == 32) return std::all_of(s.begin(), s.end(), hex);
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < 36; ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !hex(s[i])) return false;
  }
  return true;
}

void sort_unique(RowList& rows) {
  std::sort(rows.begin(), rows.end());
  rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
}

RowList merge_union(const RowList& a, const RowList& b) {
  RowList out;
  out.reserve(a.size() + b.size());
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

void insert_sorted(RowList& list, std::uint32_t row) {
  if (list.empty() || list.back() < row) {
    list.push_back(row);
    return;
  }
  const auto it = std::lower_bound(list.begin(), list.end(), row);
  if (it == list.end() || *it != row) list.insert(it, row);
}

void erase_sorted(RowList& list, std::uint32_t row) {
  const auto it = std::lower_bound(list.begin(), list.end(), row);
  if (it != list.end() && *it == row) list.erase(it);
}

// (value, row) pairs kept sorted, with recent additions in an unsorted tail.
template <typename T>
struct SortedPairs {
  std::vector<std::pair<T, std::uint32_t>> sorted, tail;

  void add(T v, std::uint32_t row) {
    tail.emplace_back(v, row);
    if (tail.size() >= kTailLimit) merge();
  }
  void merge() {
    if (tail.empty()) return;
    std::sort(tail.begin(), tail.end());
    const std::size_t mid = sorted.size();
    sorted.insert(sorted.end(), tail.begin(), tail.end());
    std::inplace_merge(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(mid), sorted.end());
    tail.clear();
    tail.shrink_to_fit();
  }
  void remove(T v, std::uint32_t row) {
    const std::pair<T, std::uint32_t> key{v, row};
    const auto it = std::lower_bound(sorted.begin(), sorted.end(), key);
    if (it != sorted.end() && *it == key) {
      sorted.erase(it);
      return;
    }
    const auto t = std::find(tail.begin(), tail.end(), key);
    if (t != tail.end()) tail.erase(t);
  }
  // Rows with lo <= v <= hi (inclusive bounds; callers shape them), sorted and unique.
  RowList collect(T lo, T hi) const {
    RowList out;
    if (!(lo <= hi)) return out;
    auto first = std::lower_bound(sorted.begin(), sorted.end(), std::pair<T, std::uint32_t>{lo, 0});
    for (auto it = first; it != sorted.end() && it->first <= hi; ++it) out.push_back(it->second);
    for (const auto& [v, row] : tail) {
      if (v >= lo && v <= hi) out.push_back(row);
    }
    sort_unique(out);
    return out;
  }
  void clear() {
    sorted.clear();
    tail.clear();
  }
  std::size_t memory_bytes() const noexcept { return (sorted.capacity() + tail.capacity()) * sizeof(sorted[0]); }
};

std::uint64_t bits_of(double d) { return std::bit_cast<std::uint64_t>(d); }
double double_of(std::uint64_t b) { return std::bit_cast<double>(b); }

}  // namespace

std::string_view field_schema_name(FieldSchema s) noexcept { return kSchemaNames[static_cast<std::size_t>(s)]; }

std::optional<FieldSchema> field_schema_from_name(std::string_view name) noexcept {
  for (std::size_t i = 0; i < kSchemaNames.size(); ++i) {
    if (kSchemaNames[i] == name) return static_cast<FieldSchema>(i);
  }
  return std::nullopt;
}

std::optional<std::int64_t> parse_datetime(std::string_view t) noexcept {
  std::size_t i = 0;
  auto digits = [&](std::size_t n, int* out) {
    if (i + n > t.size()) return false;
    int v = 0;
    for (std::size_t k = 0; k < n; ++k) {
      const char c = t[i + k];
      if (c < '0' || c > '9') return false;
      v = v * 10 + (c - '0');
    }
    *out = v;
    i += n;
    return true;
  };
  auto take = [&](char c) {
    if (i < t.size() && t[i] == c) {
      ++i;
      return true;
    }
    return false;
  };
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(4, &year) || !take('-') || !digits(2, &month) || !take('-') || !digits(2, &day)) return std::nullopt;
  std::int64_t micros = 0, offset_minutes = 0;
  if (i < t.size()) {
    if (t[i] != 'T' && t[i] != 't' && t[i] != ' ') return std::nullopt;
    ++i;
    if (!digits(2, &hour) || !take(':') || !digits(2, &minute)) return std::nullopt;
    if (take(':')) {
      if (!digits(2, &second)) return std::nullopt;
      if (take('.')) {
        std::size_t n = 0;
        std::int64_t frac = 0;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') {
          if (n < 6) frac = frac * 10 + (t[i] - '0');
          ++n;
          ++i;
        }
        if (n == 0) return std::nullopt;
        for (std::size_t k = n; k < 6; ++k) frac *= 10;
        micros = frac;
      }
    }
    if (i < t.size()) {
      if (t[i] == 'Z' || t[i] == 'z') {
        ++i;
      } else if (t[i] == '+' || t[i] == '-') {
        const int sign = t[i] == '-' ? -1 : 1;
        ++i;
        int oh = 0, om = 0;
        if (!digits(2, &oh)) return std::nullopt;
        take(':');
        if (!digits(2, &om) || oh > 23 || om > 59) return std::nullopt;
        offset_minutes = sign * (oh * 60 + om);
      } else {
        return std::nullopt;
      }
    }
    if (i != t.size()) return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return std::nullopt;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (day > kDays[month - 1] + (month == 2 && leap ? 1 : 0)) return std::nullopt;
  // Days from the civil date (H. Hinnant's algorithm).
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy =
      (153 * static_cast<unsigned>(month + (month > 2 ? -3 : 9)) + 2) / 5 + static_cast<unsigned>(day) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
  const std::int64_t seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
  return seconds * 1000000 + micros;
}

std::vector<std::string> text_tokens(std::string_view text, bool unique) {
  std::vector<std::string> out;
  std::string token;
  auto word_byte = [](unsigned char c) {
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  };
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (word_byte(c)) {
      token.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : ch);
    } else if (!token.empty()) {
      out.push_back(std::move(token));
      token.clear();
    }
  }
  if (!token.empty()) out.push_back(std::move(token));
  if (unique) {
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
  }
  return out;
}

// ---- FieldIndex ---------------------------------------------------------------------------------

struct FieldIndex::Impl {
  FieldSchema schema;
  Path path;
  // Term-based types (keyword, uuid, bool, text): a dictionary and a sorted posting list per term.
  std::unordered_map<std::string, std::uint32_t> term_of;
  std::vector<std::string> terms;
  std::vector<RowList> postings;
  // Numeric types: integer and datetime as int64, float as double.
  SortedPairs<std::int64_t> ints;
  SortedPairs<double> doubles;
  // The forward side: per row 0 (no values), 1 (one value in single[row]) or 2 (values in multi).
  MappedArray<std::uint8_t> kind;
  MappedArray<std::uint64_t> single;
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> multi;
  std::size_t with_values = 0;
  RowList uncovered;

  bool term_based() const noexcept {
    return schema == FieldSchema::kKeyword || schema == FieldSchema::kUuid || schema == FieldSchema::kBool ||
           schema == FieldSchema::kText;
  }

  std::uint32_t term(const std::string& s) {
    const auto [it, fresh] = term_of.emplace(s, static_cast<std::uint32_t>(terms.size()));
    if (fresh) {
      terms.push_back(s);
      postings.emplace_back();
    }
    return it->second;
  }

  // The values of a payload (as u64: term ids, int64 or double bits); sets *other when the field
  // holds values the type cannot represent.
  std::vector<std::uint64_t> extract(const json& payload, bool* other) {
    std::vector<std::uint64_t> values;
    auto visit = [&](const json& v) noexcept {
      std::int64_t i = 0;
      switch (schema) {
        case FieldSchema::kKeyword:
          if (v.is_string()) values.push_back(term(v.get_ref<const std::string&>()));
          break;
        case FieldSchema::kUuid:
          if (v.is_string()) {
            if (is_uuid_text(v.get_ref<const std::string&>())) {
              values.push_back(term(v.get_ref<const std::string&>()));
            } else {
              *other = true;
            }
          }
          break;
        case FieldSchema::kBool:
          if (v.is_boolean()) values.push_back(term(v.get<bool>() ? "true" : "false"));
          break;
        case FieldSchema::kText:
          if (v.is_string()) {
            for (const std::string& t : text_tokens(v.get_ref<const std::string&>(), true)) values.push_back(term(t));
          }
          break;
        case FieldSchema::kInteger:
          if (as_int64(v, &i)) {
            values.push_back(static_cast<std::uint64_t>(i));
          } else if (v.is_number()) {
            *other = true;  // a float (or a huge unsigned) still matches a range
          }
          break;
        case FieldSchema::kFloat:
          if (v.is_number()) values.push_back(bits_of(v.get<double>()));
          break;
        case FieldSchema::kDatetime:
          if (v.is_string()) {
            if (const auto t = parse_datetime(v.get_ref<const std::string&>()))
              values.push_back(static_cast<std::uint64_t>(*t));
          }
          break;
      }
      return false;
    };
    for_each_leaf(path, payload, visit);
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
  }

  void add_value(std::uint64_t v, std::uint32_t row) {
    if (term_based()) {
      insert_sorted(postings[v], row);
    } else if (schema == FieldSchema::kFloat) {
      doubles.add(double_of(v), row);
    } else {
      ints.add(static_cast<std::int64_t>(v), row);
    }
  }
  void remove_value(std::uint64_t v, std::uint32_t row) {
    if (term_based()) {
      erase_sorted(postings[v], row);
    } else if (schema == FieldSchema::kFloat) {
      doubles.remove(double_of(v), row);
    } else {
      ints.remove(static_cast<std::int64_t>(v), row);
    }
  }

  std::vector<std::uint64_t> values_of(std::uint32_t row) const {
    if (row >= kind.size() || kind[row] == 0) return {};
    if (kind[row] == 1) return {single[row]};
    return multi.at(row);
  }

  void store(std::uint32_t row, std::vector<std::uint64_t> values) {
    if (values.empty()) return;
    if (row >= kind.size()) {
      kind.resize(row + 1);
      single.resize(row + 1);
    }
    ++with_values;
    for (std::uint64_t v : values) add_value(v, row);
    if (values.size() == 1) {
      kind[row] = 1;
      single[row] = values[0];
    } else {
      kind[row] = 2;
      multi[row] = std::move(values);
    }
  }

  void forget(std::uint32_t row) {
    if (row < kind.size() && kind[row] != 0) {
      for (std::uint64_t v : values_of(row)) remove_value(v, row);
      if (kind[row] == 2) multi.erase(row);
      kind[row] = 0;
      --with_values;
    }
    erase_sorted(uncovered, row);
  }

  void rebuild_lookup_side() {
    for (RowList& p : postings) p.clear();
    ints.clear();
    doubles.clear();
    for (std::uint32_t row = 0; row < kind.size(); ++row) {
      if (kind[row] == 0) continue;
      for (std::uint64_t v : values_of(row)) {
        if (term_based()) {
          postings[v].push_back(row);  // rows in ascending order: already sorted
        } else if (schema == FieldSchema::kFloat) {
          doubles.tail.emplace_back(double_of(v), row);
        } else {
          ints.tail.emplace_back(static_cast<std::int64_t>(v), row);
        }
      }
    }
    ints.merge();
    doubles.merge();
  }

  RowList with_uncovered(RowList rows) const {
    if (uncovered.empty()) return rows;
    return merge_union(rows, uncovered);
  }
  RowList term_rows(const std::string& t) const {
    const auto it = term_of.find(t);
    return it == term_of.end() ? RowList{} : postings[it->second];
  }
};

FieldIndex::FieldIndex(std::string field, FieldSchema schema)
    : field_(std::move(field)), schema_(schema), impl_(std::make_unique<Impl>()) {
  impl_->schema = schema;
  // Field names were validated as paths when the index was created.
  (void)parse_path(field_, "field_name", &impl_->path);
}
FieldIndex::~FieldIndex() = default;
FieldIndex::FieldIndex(FieldIndex&&) noexcept = default;
FieldIndex& FieldIndex::operator=(FieldIndex&&) noexcept = default;

void FieldIndex::set(std::uint32_t row, const json& payload) {
  impl_->forget(row);
  bool other = false;
  impl_->store(row, impl_->extract(payload, &other));
  if (other) insert_sorted(impl_->uncovered, row);
}

void FieldIndex::remove(std::uint32_t row) { impl_->forget(row); }

bool FieldIndex::has_values(std::uint32_t row) const noexcept {
  return row < impl_->kind.size() && impl_->kind[row] != 0;
}

std::size_t FieldIndex::rows_with_values() const noexcept {
  // Rows with values and uncovered rows may overlap; count each once.
  std::size_t extra = 0;
  for (std::uint32_t r : impl_->uncovered) extra += (r >= impl_->kind.size() || impl_->kind[r] == 0) ? 1 : 0;
  return impl_->with_values + extra;
}

const RowList& FieldIndex::uncovered() const noexcept { return impl_->uncovered; }

std::size_t FieldIndex::memory_bytes() const noexcept {
  const Impl& m = *impl_;
  std::size_t bytes = m.kind.memory_bytes() + m.single.memory_bytes() + m.uncovered.capacity() * 4;
  for (const RowList& p : m.postings) bytes += p.capacity() * 4 + sizeof(RowList);
  for (const std::string& t : m.terms) bytes += t.capacity() + sizeof(std::string) + 48;  // + the dictionary node
  for (const auto& [row, values] : m.multi) bytes += values.capacity() * 8 + 64;
  return bytes + m.ints.memory_bytes() + m.doubles.memory_bytes();
}

void FieldIndex::for_each_row(const std::function<void(std::uint32_t)>& fn) const {
  for (std::uint32_t row = 0; row < impl_->kind.size(); ++row) {
    if (impl_->kind[row] != 0) fn(row);
  }
}

std::optional<RowList> FieldIndex::match_strings(std::span<const std::string> values) const {
  if (schema_ != FieldSchema::kKeyword && schema_ != FieldSchema::kUuid) return std::nullopt;
  RowList out;
  for (const std::string& v : values) out = merge_union(out, impl_->term_rows(v));
  return impl_->with_uncovered(std::move(out));
}

std::optional<RowList> FieldIndex::match_integers(std::span<const std::int64_t> values) const {
  if (schema_ != FieldSchema::kInteger) return std::nullopt;
  RowList out;
  // (Uncovered rows hold floats or huge numbers: no integer match can pick them.)
  for (std::int64_t v : values) out = merge_union(out, impl_->ints.collect(v, v));
  return out;
}

std::optional<RowList> FieldIndex::match_bool(bool value) const {
  if (schema_ != FieldSchema::kBool) return std::nullopt;
  return impl_->term_rows(value ? "true" : "false");
}

std::optional<RowList> FieldIndex::range(double gt, double gte, double lt, double lte) const {
  const double lo = std::max(gt, gte), hi = std::min(lt, lte);
  if (schema_ == FieldSchema::kFloat) {
    RowList rows = impl_->doubles.collect(lo, hi);
    // Strict bounds: drop rows whose only reason to be here is a value equal to the bound.
    if (gt >= gte || lt <= lte) {
      std::erase_if(rows, [&](std::uint32_t r) {
        for (std::uint64_t b : impl_->values_of(r)) {
          const double x = double_of(b);
          if (x > gt && x >= gte && x < lt && x <= lte) return false;
        }
        return true;
      });
    }
    return rows;
  }
  if (schema_ == FieldSchema::kInteger) {
    // Integers in the range: ceil of the lower bound (+1 past a strict one), floor of the upper one.
    constexpr double kMin = -9223372036854775808.0, kMax = 9223372036854775807.0;
    double l = std::ceil(lo), h = std::floor(hi);
    if (gt >= gte && l == gt) l += 1;
    if (lt <= lte && h == lt) h -= 1;
    RowList rows;
    if (l <= h && h >= kMin && l <= kMax) {
      const auto a = l <= kMin ? std::numeric_limits<std::int64_t>::min() : static_cast<std::int64_t>(l);
      const auto b = h >= kMax ? std::numeric_limits<std::int64_t>::max() : static_cast<std::int64_t>(h);
      rows = impl_->ints.collect(a, b);
    }
    return impl_->with_uncovered(std::move(rows));
  }
  return std::nullopt;
}

std::optional<RowList> FieldIndex::datetime_range(std::int64_t from, std::int64_t to) const {
  if (schema_ != FieldSchema::kDatetime) return std::nullopt;
  return impl_->ints.collect(from, to);
}

std::optional<RowList> FieldIndex::text(std::span<const std::string> tokens, bool all) const {
  if (schema_ != FieldSchema::kText || tokens.empty()) return std::nullopt;
  RowList out;
  bool first = true;
  for (const std::string& t : tokens) {
    const RowList rows = impl_->term_rows(t);
    if (all) {
      if (first) {
        out = rows;
      } else {
        RowList both;
        std::set_intersection(out.begin(), out.end(), rows.begin(), rows.end(), std::back_inserter(both));
        out = std::move(both);
      }
      if (out.empty()) break;
    } else {
      out = merge_union(out, rows);
    }
    first = false;
  }
  return out;
}

void FieldIndex::renumber(std::span<const std::uint32_t> old_to_new) {
  Impl& m = *impl_;
  MappedArray<std::uint8_t> kind;
  MappedArray<std::uint64_t> single;
  std::unordered_map<std::uint32_t, std::vector<std::uint64_t>> multi;
  std::size_t with_values = 0;
  for (std::uint32_t row = 0; row < m.kind.size(); ++row) {
    if (m.kind[row] == 0 || row >= old_to_new.size() || old_to_new[row] == kNoRow) continue;
    const std::uint32_t to = old_to_new[row];
    if (to >= kind.size()) {
      kind.resize(to + 1);
      single.resize(to + 1);
    }
    kind[to] = m.kind[row];
    if (m.kind[row] == 1) {
      single[to] = m.single[row];
    } else {
      multi[to] = std::move(m.multi[row]);
    }
    ++with_values;
  }
  RowList uncovered;
  for (std::uint32_t r : m.uncovered) {
    if (r < old_to_new.size() && old_to_new[r] != kNoRow) uncovered.push_back(old_to_new[r]);
  }
  sort_unique(uncovered);
  m.kind = std::move(kind);
  m.single = std::move(single);
  m.multi = std::move(multi);
  m.with_values = with_values;
  m.uncovered = std::move(uncovered);
  m.rebuild_lookup_side();
}

void FieldIndex::serialize(std::vector<std::uint8_t>* out) const {
  BlobWriter w("VSFI", kIndexesVersion);
  w.bytes({reinterpret_cast<const std::uint8_t*>(field_.data()), field_.size()});
  w.u8(static_cast<std::uint8_t>(schema_));
  w.u64(impl_->terms.size());
  for (const std::string& t : impl_->terms) w.bytes({reinterpret_cast<const std::uint8_t*>(t.data()), t.size()});
  w.u64(impl_->with_values);
  for (std::uint32_t row = 0; row < impl_->kind.size(); ++row) {
    if (impl_->kind[row] == 0) continue;
    const auto values = impl_->values_of(row);
    w.u32(row);
    w.u32(static_cast<std::uint32_t>(values.size()));
    for (std::uint64_t v : values) w.u64(v);
  }
  w.u64(impl_->uncovered.size());
  for (std::uint32_t r : impl_->uncovered) w.u32(r);
  const auto blob = w.finish();
  out->insert(out->end(), blob.begin(), blob.end());
}

Result<FieldIndex> FieldIndex::deserialize(std::span<const std::uint8_t> bytes) {
  BlobReader r(bytes, "payload index");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open("VSFI", kIndexesVersion, &version));
  std::string field;
  VECSTASH_RETURN_IF_ERROR(r.string(&field, bytes.size()));
  std::uint8_t schema = 0;
  VECSTASH_RETURN_IF_ERROR(r.u8(&schema));
  if (schema >= kSchemaNames.size()) return Status::corruption("payload index: unknown field type");
  Path path;
  if (!parse_path(field, "field", &path).is_ok()) return Status::corruption("payload index: bad field name");
  FieldIndex index(field, static_cast<FieldSchema>(schema));
  Impl& m = *index.impl_;
  std::uint64_t count = 0;
  VECSTASH_RETURN_IF_ERROR(r.u64(&count));
  if (count > bytes.size()) return Status::corruption("payload index: bad term count");
  for (std::uint64_t i = 0; i < count; ++i) {
    std::string t;
    VECSTASH_RETURN_IF_ERROR(r.string(&t, bytes.size()));
    m.term(t);
  }
  VECSTASH_RETURN_IF_ERROR(r.u64(&count));
  if (count > bytes.size()) return Status::corruption("payload index: bad row count");
  for (std::uint64_t i = 0; i < count; ++i) {
    std::uint32_t row = 0, n = 0;
    VECSTASH_RETURN_IF_ERROR(r.u32(&row));
    VECSTASH_RETURN_IF_ERROR(r.u32(&n));
    if (n == 0 || n > bytes.size() || row == kNoRow) return Status::corruption("payload index: bad row entry");
    std::vector<std::uint64_t> values(n);
    for (auto& v : values) {
      VECSTASH_RETURN_IF_ERROR(r.u64(&v));
      if (m.term_based() && v >= m.terms.size()) return Status::corruption("payload index: unknown term");
    }
    if (row < m.kind.size() && m.kind[row] != 0) return Status::corruption("payload index: row listed twice");
    if (row >= m.kind.size()) {
      m.kind.resize(row + 1);
      m.single.resize(row + 1);
    }
    ++m.with_values;
    if (n == 1) {
      m.kind[row] = 1;
      m.single[row] = values[0];
    } else {
      m.kind[row] = 2;
      m.multi[row] = std::move(values);
    }
  }
  VECSTASH_RETURN_IF_ERROR(r.u64(&count));
  if (count > bytes.size()) return Status::corruption("payload index: bad uncovered count");
  m.uncovered.resize(count);
  for (auto& row : m.uncovered) VECSTASH_RETURN_IF_ERROR(r.u32(&row));
  sort_unique(m.uncovered);
  VECSTASH_RETURN_IF_ERROR(r.finish());
  m.rebuild_lookup_side();
  return index;
}

// ---- PayloadIndexes -----------------------------------------------------------------------------

const FieldIndex* PayloadIndexes::find(std::string_view field) const noexcept {
  const auto it = fields_.find(field);
  return it == fields_.end() ? nullptr : &it->second;
}

FieldIndex& PayloadIndexes::add(std::string field, FieldSchema schema) {
  fields_.erase(field);
  std::string key = field;
  return fields_.emplace(std::move(key), FieldIndex(std::move(field), schema)).first->second;
}

bool PayloadIndexes::remove(std::string_view field) {
  const auto it = fields_.find(field);
  if (it == fields_.end()) return false;
  fields_.erase(it);
  return true;
}

void PayloadIndexes::set(std::uint32_t row, const json& payload) {
  for (auto& [name, index] : fields_) index.set(row, payload);
}

void PayloadIndexes::remove_row(std::uint32_t row) {
  for (auto& [name, index] : fields_) index.remove(row);
}

void PayloadIndexes::renumber(std::span<const std::uint32_t> old_to_new) {
  for (auto& [name, index] : fields_) index.renumber(old_to_new);
}

std::size_t PayloadIndexes::memory_bytes() const noexcept {
  std::size_t bytes = 0;
  for (const auto& [name, index] : fields_) bytes += index.memory_bytes();
  return bytes;
}

std::vector<std::uint8_t> PayloadIndexes::serialize() const {
  BlobWriter w("VSPI", kIndexesVersion);
  w.u64(fields_.size());
  for (const auto& [name, index] : fields_) {
    std::vector<std::uint8_t> blob;
    index.serialize(&blob);
    w.bytes(blob);
  }
  return w.finish();
}

Result<PayloadIndexes> PayloadIndexes::deserialize(std::span<const std::uint8_t> blob) {
  BlobReader r(blob, "payload indexes");
  std::uint16_t version = 0;
  VECSTASH_RETURN_IF_ERROR(r.open("VSPI", kIndexesVersion, &version));
  std::uint64_t n = 0;
  VECSTASH_RETURN_IF_ERROR(r.u64(&n));
  if (n > blob.size()) return Status::corruption("payload indexes: bad field count");
  PayloadIndexes out;
  for (std::uint64_t i = 0; i < n; ++i) {
    std::vector<std::uint8_t> bytes;
    VECSTASH_RETURN_IF_ERROR(r.bytes(&bytes, blob.size()));
    auto index = FieldIndex::deserialize(bytes);
    if (!index.is_ok()) return index.status();
    std::string name = index->field();
    out.fields_.emplace(std::move(name), std::move(*index));
  }
  VECSTASH_RETURN_IF_ERROR(r.finish());
  return out;
}

}  // namespace vecstash::engine
