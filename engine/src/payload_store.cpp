#include "payload_store.h"

#include <algorithm>
#include <bit>

#include "engine_shared.h"

namespace vecstash::engine {

namespace {

using nlohmann::json;
using storage::Column;

// Payloads read per batched lookup when checking candidates.
constexpr std::size_t kReadBatch = 256;

}  // namespace

std::string PayloadStore::key(const PointId& id) const { return keys::point(cid_, id); }

void PayloadStore::put(storage::WriteBatch& batch, const PointId& id, const json& payload) const {
  std::string value(1, static_cast<char>(keys::kPayloadFormat));
  value += payload.dump();
  batch.put(Column::kPayloads, key(id), value);
}

void PayloadStore::erase(storage::WriteBatch& batch, const PointId& id) const {
  batch.erase(Column::kPayloads, key(id));
}

std::size_t PayloadStore::json_bytes(const json& j) noexcept {
  // What nlohmann::json holds on the heap: the value (16 bytes), std::map nodes for objects (about
  // 64 bytes plus the key), vectors for arrays, strings past the small-string buffer.
  std::size_t bytes = sizeof(json);
  if (j.is_object()) {
    for (const auto& [k, v] : j.get_ref<const json::object_t&>())
      bytes += 48 + sizeof(std::string) + (k.size() > 15 ? k.size() + 1 : 0) + json_bytes(v);
  } else if (j.is_array()) {
    for (const json& v : j.get_ref<const json::array_t&>()) bytes += json_bytes(v);
    bytes += sizeof(json::array_t);
  } else if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    bytes += sizeof(std::string) + (s.size() > 15 ? s.size() + 1 : 0);
  }
  return bytes;
}

void PayloadStore::apply(std::size_t row, const json* payload) {
  if (in_ram_) {
    forget(row);
    if (payload != nullptr) {
      ram_bytes_ += json_bytes(*payload) + 32;  // + the hash node
      ram_.insert_or_assign(row, *payload);
    }
  }
  if (!indexes_.empty()) {
    static const json kEmpty = json::object();
    indexes_.set(static_cast<std::uint32_t>(row), payload != nullptr ? *payload : kEmpty);
  }
}

void PayloadStore::forget(std::size_t row) {
  if (!in_ram_) return;
  const auto it = ram_.find(row);
  if (it == ram_.end()) return;
  ram_bytes_ -= std::min(ram_bytes_, json_bytes(it->second) + 32);
  ram_.erase(it);
}

void PayloadStore::renumber(std::span<const std::uint32_t> old_to_new) {
  if (in_ram_) {
    std::unordered_map<std::uint64_t, json> moved;
    moved.reserve(ram_.size());
    for (auto& [row, value] : ram_) {
      if (row < old_to_new.size() && old_to_new[row] != UINT32_MAX) moved.emplace(old_to_new[row], std::move(value));
    }
    ram_ = std::move(moved);
  }
  indexes_.renumber(old_to_new);
}

Result<json> PayloadStore::parse(std::string_view value, const PointId& id) {
  if (value.empty() || static_cast<std::uint8_t>(value[0]) != keys::kPayloadFormat) {
    return Status::corruption("payload of point " + id.to_string() + " has an unknown format version");
  }
  json parsed = json::parse(value.substr(1), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return Status::corruption("payload of point " + id.to_string() + " is not a JSON object");
  }
  return parsed;
}

Result<json> PayloadStore::get(std::size_t row, const PointId& id) const {
  if (in_ram_) {
    const auto it = ram_.find(row);
    return it == ram_.end() ? json::object() : it->second;
  }
  auto value = store_->get(Column::kPayloads, key(id));
  if (!value.is_ok()) return value.status();
  if (!value->has_value()) return json::object();
  return parse(**value, id);
}

Result<std::vector<json>> PayloadStore::get_many(std::span<const std::size_t> rows, const RowStore& store) const {
  std::vector<json> out(rows.size());
  if (in_ram_) {
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const auto it = ram_.find(rows[i]);
      out[i] = it == ram_.end() ? json::object() : it->second;
    }
    return out;
  }
  std::vector<std::string> keys(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) keys[i] = key(store.id(rows[i]));
  auto values = store_->multi_get(Column::kPayloads, keys);
  if (!values.is_ok()) return values.status();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (!(*values)[i]) {
      out[i] = json::object();
      continue;
    }
    auto parsed = parse(*(*values)[i], store.id(rows[i]));
    if (!parsed.is_ok()) return parsed.status();
    out[i] = std::move(*parsed);
  }
  return out;
}

Status PayloadStore::for_each(const RowStore& rows, const std::function<bool(std::size_t, const json&)>& fn) const {
  if (in_ram_) {
    for (const auto& [row, value] : ram_) {
      if (rows.is_live(row) && !fn(row, value)) break;
    }
    return Status::ok();
  }
  Status bad;
  VECSTASH_RETURN_IF_ERROR(
      store_->scan(Column::kPayloads, keys::cid(cid_), [&](std::string_view k, std::string_view v) {
        auto id = PointId::from_key(k.substr(4));
        if (!id.is_ok()) {
          bad = Status::corruption("malformed payload key");
          return false;
        }
        const auto row = rows.find(*id);
        if (!row) return true;  // written by a batch whose rows are not visible (yet)
        auto parsed = parse(v, *id);
        if (!parsed.is_ok()) {
          bad = parsed.status();
          return false;
        }
        return fn(*row, *parsed);
      }));
  return bad;
}

Result<std::vector<std::uint64_t>> PayloadStore::matching(const Filter& filter, const RowStore& rows,
                                                          std::size_t* count) const {
  const std::size_t words = rows.live_words();
  const std::uint64_t* live = rows.live_bits();
  std::vector<std::uint64_t> bits(words, 0);
  auto finish = [&]() -> Result<std::vector<std::uint64_t>> {
    std::size_t n = 0;
    for (std::size_t w = 0; w < words; ++w) {
      bits[w] &= live[w];
      n += static_cast<std::size_t>(std::popcount(bits[w]));
    }
    if (count) *count = n;
    return std::move(bits);
  };
  if (filter.matches_all()) {
    std::copy(live, live + words, bits.begin());
    return finish();
  }
  const Filter bound = filter.bind(indexes_);
  const auto candidates = bound.candidates(indexes_, [&rows](const PointId& id) { return rows.find(id); });
  if (candidates) {
    std::vector<std::size_t> check;
    for (const std::uint32_t r : candidates->rows) {
      if (!rows.is_live(r)) continue;
      if (candidates->exact) {
        set_bit(bits.data(), r);
      } else {
        check.push_back(r);
      }
    }
    for (std::size_t begin = 0; begin < check.size(); begin += kReadBatch) {
      const std::span<const std::size_t> part(check.data() + begin, std::min(kReadBatch, check.size() - begin));
      auto payloads =
          bound.reads_payload() ? get_many(part, rows) : Result<std::vector<json>>(std::vector<json>(part.size()));
      if (!payloads.is_ok()) return payloads.status();
      for (std::size_t i = 0; i < part.size(); ++i) {
        if (bound.matches(rows.id(part[i]), &(*payloads)[i])) set_bit(bits.data(), part[i]);
      }
    }
    return finish();
  }
  // Every live row: with its payload where it has one, as an empty payload otherwise.
  std::vector<std::uint64_t> with_payload(words, 0);
  if (bound.reads_payload()) {
    VECSTASH_RETURN_IF_ERROR(for_each(rows, [&](std::size_t row, const json& payload) {
      set_bit(with_payload.data(), row);
      if (bound.matches(rows.id(row), &payload)) set_bit(bits.data(), row);
      return true;
    }));
  }
  for (std::size_t w = 0; w < words; ++w) {
    for (std::uint64_t todo = live[w] & ~with_payload[w]; todo != 0; todo &= todo - 1) {
      const std::size_t row = w * 64 + static_cast<std::size_t>(std::countr_zero(todo));
      if (bound.matches(rows.id(row), nullptr)) set_bit(bits.data(), row);
    }
  }
  return finish();
}

Result<FieldIndex> PayloadStore::build_index(const std::string& field, FieldSchema schema, const RowStore& rows) const {
  FieldIndex index(field, schema);
  VECSTASH_RETURN_IF_ERROR(for_each(rows, [&](std::size_t row, const json& payload) {
    index.set(static_cast<std::uint32_t>(row), payload);
    return true;
  }));
  return index;
}

void PayloadStore::install_index(FieldIndex index) {
  const std::string field = index.field();
  const FieldSchema schema = index.schema();
  indexes_.add(field, schema) = std::move(index);
}

Status PayloadStore::reindex(std::span<const std::size_t> rows, const RowStore& store) {
  if (indexes_.empty()) return Status::ok();
  for (std::size_t begin = 0; begin < rows.size(); begin += kReadBatch) {
    const std::span<const std::size_t> part(rows.data() + begin, std::min(kReadBatch, rows.size() - begin));
    auto payloads = get_many(part, store);
    if (!payloads.is_ok()) return payloads.status();
    for (std::size_t i = 0; i < part.size(); ++i) indexes_.set(static_cast<std::uint32_t>(part[i]), (*payloads)[i]);
  }
  return Status::ok();
}

Status PayloadStore::load(const RowStore& rows) {
  if (!in_ram_) return Status::ok();
  ram_.clear();
  ram_bytes_ = 0;
  in_ram_ = false;  // read from the store below
  const Status s = for_each(rows, [&](std::size_t row, const json& payload) {
    ram_bytes_ += json_bytes(payload) + 32;
    ram_.emplace(row, payload);
    return true;
  });
  in_ram_ = true;
  return s;
}

}  // namespace vecstash::engine
