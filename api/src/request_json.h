// Internal to the api library: reading request bodies. Every reader checks the JSON type and range of
// what it reads and answers InvalidArgument with a message in Qdrant's words ("Json deserialize
// error: ..." for shapes and types, "Wrong input: ..." for values), so handlers validate once, before
// anything changes.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vecstash/common/status.h"
#include "vecstash/engine/collection_config.h"
#include "vecstash/engine/point_id.h"

namespace vecstash::api {

/// InvalidArgument with `message`.
Status bad(std::string message);

/// A field counts as given when present and not null (clients send null for "unset"); nullptr otherwise.
const nlohmann::json* field(const nlohmann::json& o, std::string_view key);

/// `o` is an object whose non-null keys are all in `allowed`; `what` names it in the message.
Status check_fields(const nlohmann::json& o, std::string_view what, std::initializer_list<std::string_view> allowed);

/// o[key] as a boolean, `def` when absent.
Result<bool> read_bool(const nlohmann::json& o, std::string_view key, bool def);
/// A boolean that may be absent or null (nullopt then).
Result<std::optional<bool>> read_optional_bool(const nlohmann::json& o, std::string_view key);
/// o[key] as a non-negative JSON integer, `def` when absent.
Result<std::size_t> read_count(const nlohmann::json& o, std::string_view key, std::size_t def);
/// o[key] as a finite number, nullopt when absent.
Result<std::optional<double>> read_number(const nlohmann::json& o, std::string_view key);

/// A dense vector of exactly `dim` finite float32 values.
Result<std::vector<float>> read_dense(const nlohmann::json& v, std::size_t dim);
/// VectorStruct: a plain array, or {"<name>": array} naming the collection's one vector.
Result<std::vector<float>> read_vector_struct(const nlohmann::json& v, const engine::CollectionConfig& cfg);
/// A list of at most `max` point ids; `what` names the field.
Result<std::vector<engine::PointId>> read_ids(const nlohmann::json& v, std::string_view what, std::size_t max);

}  // namespace vecstash::api
