// Payload filters: a Qdrant Filter object compiled into a small tree of nodes, evaluated per point.
//
// Evaluation rules (Qdrant 1.19 where it defines them; the differences are marked "Qdrant:"):
// - A key is a path. Walking it from the payload yields zero or more values: objects are entered by
//   key, "[]" expands an array, "[n]" picks an element, and an array met where a key is expected is
//   expanded as if "[]" had been written (Qdrant: such a path reaches nothing; "[]" is required).
// - Value conditions (match value/any/except/text/text_any/phrase/prefix, range) match when some
//   reached value satisfies them; a reached array is tested element by element (one level: an array
//   inside it is not expanded). A missing key matches none of them.
//   * value / any: same JSON type only. Integers compare as int64; a float (1.0) is not an integer.
//   * except: a string or an integer not in the list; null never; any other type (bool, float, object,
//     a nested array, a number when the list holds strings...) always.
//   * text / phrase: substring; text_any: any whitespace-separated token is a substring; prefix:
//     starts with (all byte-wise, case-sensitive, as Qdrant does without a full-text index).
//   * range: any number, compared as a double; other types never.
// - values_count: the number of values reached (an array counts its elements, null counts 0, any
//   other value 1); a missing key counts 0 (as Qdrant documents; Qdrant 1.19's code never matches a
//   missing key, and with several reached values it tests each value's count on its own).
// - {"is_empty": {"key"}}: every reached value is null or [] (true when the key is missing).
// - {"is_null": {"key"}}: some reached value is null ([null] is not null; a missing key is not null).
// - Field-condition flags, as Qdrant: "is_empty": b matches when the key is missing and b is true,
//   or some reached value's emptiness (null or []) equals b; "is_null": b matches when the key is
//   missing and b is false, or some reached value's nullness (null, or an array holding a null)
//   equals b.
// - Several clauses in one field condition must all match (Qdrant: any of them, and values_count,
//   is_empty or is_null, when present, decide alone).
// - An empty "should" array is no constraint (Qdrant: it matches nothing).
// - nested: the key (with "[]" appended) must reach an object for which the inner filter matches;
//   has_id is rejected inside it (Qdrant accepts it and never matches).
#include "vecstash/engine/filter.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "payload_index.h"
#include "payload_path.h"

namespace vecstash::engine {
namespace {

using nlohmann::json;

/// Filters nested deeper than this are rejected; it bounds the recursion of parse and matches.
constexpr int kMaxDepth = 64;

enum class NodeKind : std::uint8_t {
  kConst,  // flag
  kBool,   // must / should / must_not / min_should over child nodes
  // Value conditions: true when a reached value, or an element of a reached array, passes.
  kMatchString,
  kMatchInt,
  kMatchBool,
  kAnyString,
  kAnyInt,
  kExceptString,
  kExceptInt,
  kText,  // also phrase
  kTextAny,
  kPrefix,
  kRange,
  kDatetimeRange,  // RFC 3339 strings between two instants
  kTextTokens,     // full-text match on a text-indexed key: every token present (bind())
  kTextAnyTokens,  // full-text match on a text-indexed key: some token present (bind())
  // Field-condition clauses with rules of their own.
  kValuesCount,
  kEmptyFlag,
  kNullFlag,
  // Other conditions.
  kIsEmpty,
  kIsNull,
  kHasId,
  kNested,
};

struct Node {
  NodeKind kind = NodeKind::kConst;
  bool flag = true;                    ///< kConst, kMatchBool, kEmptyFlag, kNullFlag
  bool phrase = false;                 ///< kText: from match.phrase (stays a substring match)
  Path path;                           ///< payload conditions
  std::string key;                     ///< payload conditions: the key as written (names an index)
  std::string text;                    ///< kMatchString, kText, kPrefix
  std::int64_t integer = 0;            ///< kMatchInt
  std::vector<std::string> strings;    ///< kAnyString, kExceptString (sorted, unique); kTextAny tokens
  std::vector<std::int64_t> integers;  ///< kAnyInt, kExceptInt (sorted, unique)
  std::vector<PointId> ids;            ///< kHasId (sorted, unique)
  // kRange: an absent bound is infinite, so every bound can be tested unconditionally.
  double gt = -std::numeric_limits<double>::infinity();
  double gte = -std::numeric_limits<double>::infinity();
  double lt = std::numeric_limits<double>::infinity();
  double lte = std::numeric_limits<double>::infinity();
  // kValuesCount: inclusive bounds (min > max when nothing can match).
  // kDatetimeRange: inclusive bounds in microseconds since the epoch.
  std::int64_t from = std::numeric_limits<std::int64_t>::min();
  std::int64_t to = std::numeric_limits<std::int64_t>::max();
  std::uint64_t count_min = 0;
  std::uint64_t count_max = std::numeric_limits<std::uint64_t>::max();
  // kBool
  std::vector<std::uint32_t> must, should, must_not, min_should;
  std::size_t min_count = 0;
  std::uint32_t child = 0;  ///< kNested: the inner filter's root
};

}  // namespace

struct Filter::Program {
  std::vector<Node> nodes;
  std::uint32_t root = 0;
  std::optional<std::vector<PointId>> required_ids;
};

namespace {

using Program = Filter::Program;

// ---- evaluation ---------------------------------------------------------------------------------

const json& empty_object() noexcept {
  static const json kEmpty = json::object();
  return kEmpty;
}

bool contains_string(const std::vector<std::string>& sorted, const std::string& s) noexcept {
  return std::binary_search(sorted.begin(), sorted.end(), s);
}

/// One (non-array) value against a value condition.
bool test_value(const Node& n, const json& v) noexcept {
  std::int64_t i = 0;
  switch (n.kind) {
    case NodeKind::kMatchString:
      return v.is_string() && v.get_ref<const std::string&>() == n.text;
    case NodeKind::kMatchInt:
      return as_int64(v, &i) && i == n.integer;
    case NodeKind::kMatchBool:
      return v.is_boolean() && v.get<bool>() == n.flag;
    case NodeKind::kAnyString:
      return v.is_string() && contains_string(n.strings, v.get_ref<const std::string&>());
    case NodeKind::kAnyInt:
      return as_int64(v, &i) && std::binary_search(n.integers.begin(), n.integers.end(), i);
    case NodeKind::kExceptString:
      if (v.is_null()) return false;
      return !v.is_string() || !contains_string(n.strings, v.get_ref<const std::string&>());
    case NodeKind::kExceptInt:
      if (v.is_null()) return false;
      return !as_int64(v, &i) || !std::binary_search(n.integers.begin(), n.integers.end(), i);
    case NodeKind::kText:
      return v.is_string() && v.get_ref<const std::string&>().find(n.text) != std::string::npos;
    case NodeKind::kTextAny:
      if (!v.is_string()) return false;
      for (const std::string& token : n.strings) {
        if (v.get_ref<const std::string&>().find(token) != std::string::npos) return true;
      }
      return false;
    case NodeKind::kPrefix:
      return v.is_string() && v.get_ref<const std::string&>().starts_with(n.text);
    case NodeKind::kRange: {
      if (!v.is_number()) return false;
      const double x = v.get<double>();
      return x > n.gt && x >= n.gte && x < n.lt && x <= n.lte;
    }
    case NodeKind::kDatetimeRange: {
      if (!v.is_string()) return false;
      const auto t = parse_datetime(v.get_ref<const std::string&>());
      return t && *t >= n.from && *t <= n.to;
    }
    case NodeKind::kTextTokens:
    case NodeKind::kTextAnyTokens: {
      if (!v.is_string()) return false;
      const std::vector<std::string> have = text_tokens(v.get_ref<const std::string&>(), true);
      auto present = [&](const std::string& t) { return std::binary_search(have.begin(), have.end(), t); };
      return n.kind == NodeKind::kTextTokens ? std::all_of(n.strings.begin(), n.strings.end(), present)
                                             : std::any_of(n.strings.begin(), n.strings.end(), present);
    }
    default:
      return false;
  }
}

bool is_empty_value(const json& v) noexcept { return v.is_null() || (v.is_array() && v.empty()); }

bool holds_null(const json& v) noexcept {
  if (v.is_null()) return true;
  if (!v.is_array()) return false;
  const auto& array = v.get_ref<const json::array_t&>();
  return std::any_of(array.begin(), array.end(), [](const json& e) { return e.is_null(); });
}

bool eval(const Program& p, std::uint32_t index, const PointId& id, const json& root) noexcept;

bool eval_bool(const Program& p, const Node& n, const PointId& id, const json& root) noexcept {
  for (const std::uint32_t c : n.must) {
    if (!eval(p, c, id, root)) return false;
  }
  for (const std::uint32_t c : n.must_not) {
    if (eval(p, c, id, root)) return false;
  }
  if (!n.should.empty()) {
    const bool any =
        std::any_of(n.should.begin(), n.should.end(), [&](std::uint32_t c) { return eval(p, c, id, root); });
    if (!any) return false;
  }
  if (n.min_count > 0) {
    std::size_t hits = 0;
    std::size_t left = n.min_should.size();
    for (const std::uint32_t c : n.min_should) {
      if (hits + left < n.min_count) return false;  // cannot reach min_count any more
      --left;
      if (eval(p, c, id, root) && ++hits == n.min_count) return true;
    }
    return false;
  }
  return true;
}

bool eval(const Program& p, std::uint32_t index, const PointId& id, const json& root) noexcept {
  const Node& n = p.nodes[index];
  switch (n.kind) {
    case NodeKind::kConst:
      return n.flag;
    case NodeKind::kBool:
      return eval_bool(p, n, id, root);
    case NodeKind::kHasId:
      return std::binary_search(n.ids.begin(), n.ids.end(), id);
    case NodeKind::kValuesCount: {
      std::uint64_t count = 0;
      auto visit = [&](const json& v) noexcept {
        count += v.is_null() ? 0 : v.is_array() ? v.size() : 1;
        return count > n.count_max;  // already too many: stop counting
      };
      walk(n.path, 0, root, visit);
      return count >= n.count_min && count <= n.count_max;
    }
    case NodeKind::kEmptyFlag: {
      bool reached = false;
      auto visit = [&](const json& v) noexcept {
        reached = true;
        return is_empty_value(v) == n.flag;
      };
      return walk(n.path, 0, root, visit) || (!reached && n.flag);
    }
    case NodeKind::kNullFlag: {
      bool reached = false;
      auto visit = [&](const json& v) noexcept {
        reached = true;
        return holds_null(v) == n.flag;
      };
      return walk(n.path, 0, root, visit) || (!reached && !n.flag);
    }
    case NodeKind::kIsEmpty: {
      auto non_empty = [](const json& v) noexcept { return !is_empty_value(v); };
      return !walk(n.path, 0, root, non_empty);
    }
    case NodeKind::kIsNull: {
      auto is_null = [](const json& v) noexcept { return v.is_null(); };
      return walk(n.path, 0, root, is_null);
    }
    case NodeKind::kNested: {
      auto inner = [&](const json& v) noexcept { return v.is_object() && eval(p, n.child, id, v); };
      return walk(n.path, 0, root, inner);
    }
    default: {  // value conditions
      auto visit = [&](const json& v) noexcept {
        if (!v.is_array()) return test_value(n, v);
        const auto& array = v.get_ref<const json::array_t&>();
        return std::any_of(array.begin(), array.end(), [&](const json& e) { return test_value(n, e); });
      };
      return walk(n.path, 0, root, visit);
    }
  }
}

// ---- parsing ------------------------------------------------------------------------------------

Status error(const std::string& where, std::string_view what) {
  return Status::invalid_argument(where + ": " + std::string(what));
}

/// A JSON object key as it appears in a message.
std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

/// A key path from JSON (a string), or an error naming `where`.
Status parse_key(const json& key, const std::string& where, Path* out) {
  if (!key.is_string()) return error(where, "expected a string");
  return parse_path(key.get_ref<const std::string&>(), where, out);
}

/// An int64 from JSON, or an error naming `where`.
Status parse_int64(const json& v, const std::string& where, std::int64_t* out) {
  if (v.is_number_unsigned()) {
    if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return error(where, "integer out of the int64 range");
    }
  } else if (!v.is_number_integer()) {
    return error(where, "expected an integer");
  }
  *out = v.is_number_unsigned() ? static_cast<std::int64_t>(v.get<std::uint64_t>()) : v.get<std::int64_t>();
  return Status::ok();
}

template <typename T>
void sort_unique(std::vector<T>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

/// A list of strings or a list of integers (Qdrant's AnyVariants) into n.strings or n.integers.
/// Returns whether it held integers. An empty list counts as strings.
Status parse_value_list(const json& list, const std::string& where, Node* n, bool* integers) {
  if (!list.is_array()) return error(where, "expected an array of strings or of integers");
  *integers = !list.empty() && list.front().is_number();
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& v = list[i];
    if (*integers) {
      if (v.is_string()) return error(at, "mixes strings and integers");
      std::int64_t x = 0;
      VECSTASH_RETURN_IF_ERROR(parse_int64(v, at, &x));
      n->integers.push_back(x);
    } else {
      if (v.is_number()) return error(at, "mixes strings and integers");
      if (!v.is_string()) return error(at, "expected a string or an integer");
      n->strings.push_back(v.get<std::string>());
    }
  }
  sort_unique(n->strings);
  sort_unique(n->integers);
  return Status::ok();
}

Status parse_match(const json& m, const std::string& where, Node* n) {
  static constexpr std::string_view kKinds = "one of value, any, except, text, text_any, phrase, prefix";
  if (!m.is_object() || m.size() != 1) return error(where, "expected an object with " + std::string(kKinds));
  const auto& [kind, v] = *m.get_ref<const json::object_t&>().begin();
  const std::string at = where + "." + kind;
  if (kind == "value") {
    if (v.is_string()) {
      n->kind = NodeKind::kMatchString;
      n->text = v.get<std::string>();
    } else if (v.is_boolean()) {
      n->kind = NodeKind::kMatchBool;
      n->flag = v.get<bool>();
    } else if (v.is_number_integer()) {
      n->kind = NodeKind::kMatchInt;
      return parse_int64(v, at, &n->integer);
    } else {
      return error(at, "expected a string, an integer or a bool");
    }
    return Status::ok();
  }
  if (kind == "any" || kind == "except") {
    bool integers = false;
    VECSTASH_RETURN_IF_ERROR(parse_value_list(v, at, n, &integers));
    if (kind == "any") {
      n->kind = integers ? NodeKind::kAnyInt : NodeKind::kAnyString;
    } else {
      n->kind = integers ? NodeKind::kExceptInt : NodeKind::kExceptString;
    }
    return Status::ok();
  }
  if (kind == "text" || kind == "phrase" || kind == "text_any" || kind == "prefix") {
    if (!v.is_string()) return error(at, "expected a string");
    const std::string& s = v.get_ref<const std::string&>();
    if (kind == "text_any") {
      n->kind = NodeKind::kTextAny;
      std::size_t i = 0;
      while (i < s.size()) {
        const std::size_t begin = s.find_first_not_of(" \t\n\r\f\v", i);
        if (begin == std::string::npos) break;
        const std::size_t end = std::min(s.find_first_of(" \t\n\r\f\v", begin), s.size());
        n->strings.push_back(s.substr(begin, end - begin));
        i = end;
      }
    } else {
      n->kind = kind == "prefix" ? NodeKind::kPrefix : NodeKind::kText;
      n->phrase = kind == "phrase";
      n->text = s;
    }
    return Status::ok();
  }
  return error(where, "unknown match " + in_quotes(kind) + "; expected " + std::string(kKinds));
}

/// The bounds object of range / values_count: calls on_bound(name, value, where) for each non-null
/// bound; at least one is required.
template <typename OnBound>
Status parse_bounds(const json& b, const std::string& where, OnBound on_bound) {
  if (!b.is_object()) return error(where, "expected an object with gt, gte, lt or lte");
  bool any = false;
  for (const auto& [name, v] : b.items()) {
    if (name != "gt" && name != "gte" && name != "lt" && name != "lte") {
      return error(where, "unknown field " + in_quotes(name) + "; expected gt, gte, lt or lte");
    }
    if (v.is_null()) continue;
    VECSTASH_RETURN_IF_ERROR(on_bound(name, v, where + "." + name));
    any = true;
  }
  if (!any) return error(where, "needs at least one of gt, gte, lt, lte");
  return Status::ok();
}

/// A range whose bounds are RFC 3339 strings (Qdrant's DatetimeRange).
Status parse_datetime_range(const json& r, const std::string& where, Node* n) {
  n->kind = NodeKind::kDatetimeRange;
  return parse_bounds(r, where, [n](const std::string& name, const json& v, const std::string& at) {
    if (!v.is_string()) return error(at, "expected an RFC 3339 date-time string, as the other bounds");
    const auto t = parse_datetime(v.get_ref<const std::string&>());
    if (!t) return error(at, "expected a number, or an RFC 3339 date-time such as \"2023-02-08T10:49:00Z\"");
    if (name == "gt" || name == "gte") {
      const std::int64_t lo = name == "gt" ? (*t == std::numeric_limits<std::int64_t>::max() ? *t : *t + 1) : *t;
      n->from = std::max(n->from, lo);
    } else {
      const std::int64_t hi = name == "lt" ? (*t == std::numeric_limits<std::int64_t>::min() ? *t : *t - 1) : *t;
      n->to = std::min(n->to, hi);
    }
    return Status::ok();
  });
}

Status parse_range(const json& r, const std::string& where, Node* n) {
  if (r.is_object()) {
    for (const auto& [name, v] : r.items()) {
      if (v.is_string()) return parse_datetime_range(r, where, n);
    }
  }
  n->kind = NodeKind::kRange;
  return parse_bounds(r, where, [n](const std::string& name, const json& v, const std::string& at) {
    if (!v.is_number()) return error(at, "expected a number");
    const double x = v.get<double>();
    if (!std::isfinite(x)) return error(at, "expected a finite number");
    (name == "gt" ? n->gt : name == "gte" ? n->gte : name == "lt" ? n->lt : n->lte) = x;
    return Status::ok();
  });
}

Status parse_values_count(const json& c, const std::string& where, Node* n) {
  n->kind = NodeKind::kValuesCount;
  return parse_bounds(c, where, [n](const std::string& name, const json& v, const std::string& at) {
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
      return error(at, "expected a non-negative integer");
    }
    const auto x = v.get<std::uint64_t>();
    constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
    if ((name == "gt" && x == kMax) || (name == "lt" && x == 0)) {
      n->count_min = 1;  // no count passes
      n->count_max = 0;
    } else if (name == "gt" || name == "gte") {
      n->count_min = std::max(n->count_min, name == "gt" ? x + 1 : x);
    } else {
      n->count_max = std::min(n->count_max, name == "lt" ? x - 1 : x);
    }
    return Status::ok();
  });
}

class Compiler {
 public:
  std::vector<Node> nodes;

  /// A Filter object (or null) at `where`. `nested` is true inside a nested condition's filter.
  Status filter(const json& f, const std::string& where, int depth, bool nested, std::uint32_t* out,
                bool as_condition = false) {
    if (depth > kMaxDepth) return error(where, "filters nest deeper than " + std::to_string(kMaxDepth) + " levels");
    if (f.is_null()) {
      *out = constant(true);
      return Status::ok();
    }
    if (!f.is_object()) return error(where, "expected a filter object");
    Node n;
    n.kind = NodeKind::kBool;
    bool had_should = false;
    for (const auto& [name, v] : f.items()) {
      const std::string at = where + "." + name;
      if (name == "must") {
        VECSTASH_RETURN_IF_ERROR(condition_list(v, at, depth, nested, &n.must));
      } else if (name == "should") {
        VECSTASH_RETURN_IF_ERROR(condition_list(v, at, depth, nested, &n.should));
        had_should = !n.should.empty();
      } else if (name == "must_not") {
        VECSTASH_RETURN_IF_ERROR(condition_list(v, at, depth, nested, &n.must_not));
      } else if (name == "min_should") {
        VECSTASH_RETURN_IF_ERROR(min_should(v, at, depth, nested, &n));
      } else if (as_condition) {
        return error(where, "unknown condition field " + in_quotes(name) +
                                "; expected a field condition (with \"key\"), is_empty, is_null, has_id, nested, "
                                "or a filter (must, should, must_not, min_should)");
      } else {
        return error(where, "unknown field " + in_quotes(name) + "; expected must, should, must_not or min_should");
      }
    }
    *out = simplify(std::move(n), had_should);
    return Status::ok();
  }

 private:
  std::uint32_t add(Node n) {
    nodes.push_back(std::move(n));
    return static_cast<std::uint32_t>(nodes.size() - 1);
  }

  std::uint32_t constant(bool value) {
    Node n;
    n.kind = NodeKind::kConst;
    n.flag = value;
    return add(std::move(n));
  }

  bool is_const(std::uint32_t i, bool value) const {
    return nodes[i].kind == NodeKind::kConst && nodes[i].flag == value;
  }

  /// Folds constant children (empty filters used as conditions) so that trivial filters become
  /// constants, and a bool node holding a single must condition becomes that condition.
  std::uint32_t simplify(Node n, bool had_should) {
    auto drop = [this](std::vector<std::uint32_t>& list, bool value) {
      std::erase_if(list, [&](std::uint32_t c) { return is_const(c, value); });
    };
    auto holds = [this](const std::vector<std::uint32_t>& list, bool value) {
      return std::any_of(list.begin(), list.end(), [&](std::uint32_t c) { return is_const(c, value); });
    };
    if (holds(n.must, false) || holds(n.must_not, true)) return constant(false);
    drop(n.must, true);
    drop(n.must_not, false);
    if (holds(n.should, true)) {
      n.should.clear();  // satisfied by every point
    } else {
      drop(n.should, false);
      if (had_should && n.should.empty()) return constant(false);  // no condition left that could match
    }
    if (n.must_not.empty() && n.should.empty() && n.min_count == 0) {
      if (n.must.empty()) return constant(true);
      if (n.must.size() == 1) return n.must.front();
    }
    return add(std::move(n));
  }

  Status condition_list(const json& v, const std::string& where, int depth, bool nested,
                        std::vector<std::uint32_t>* out) {
    if (v.is_null()) return Status::ok();
    if (v.is_object()) {  // a single condition, as Qdrant accepts
      std::uint32_t c = 0;
      VECSTASH_RETURN_IF_ERROR(condition(v, where, depth, nested, &c));
      out->push_back(c);
      return Status::ok();
    }
    if (!v.is_array()) return error(where, "expected an array of conditions");
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::uint32_t c = 0;
      VECSTASH_RETURN_IF_ERROR(condition(v[i], where + "[" + std::to_string(i) + "]", depth, nested, &c));
      out->push_back(c);
    }
    return Status::ok();
  }

  Status min_should(const json& v, const std::string& where, int depth, bool nested, Node* n) {
    if (v.is_null()) return Status::ok();
    if (!v.is_object()) return error(where, "expected an object with conditions and min_count");
    for (const auto& [name, unused] : v.items()) {
      if (name != "conditions" && name != "min_count") {
        return error(where, "unknown field " + in_quotes(name) + "; expected conditions and min_count");
      }
    }
    if (!v.contains("conditions")) return error(where, "missing conditions");
    if (!v.contains("min_count")) return error(where, "missing min_count");
    const json& conditions = v["conditions"];
    if (!conditions.is_array()) return error(where + ".conditions", "expected an array of conditions");
    VECSTASH_RETURN_IF_ERROR(condition_list(conditions, where + ".conditions", depth, nested, &n->min_should));
    const json& count = v["min_count"];
    const bool positive = count.is_number_unsigned() ? count.get<std::uint64_t>() >= 1
                                                     : count.is_number_integer() && count.get<std::int64_t>() >= 1;
    if (!positive) return error(where + ".min_count", "expected an integer >= 1");
    n->min_count = static_cast<std::size_t>(count.get<std::uint64_t>());
    return Status::ok();
  }

  Status condition(const json& c, const std::string& where, int depth, bool nested, std::uint32_t* out) {
    if (!c.is_object()) return error(where, "expected a condition object");
    if (c.contains("key")) return field_condition(c, where, out);
    if (c.contains("is_empty")) return key_condition(c, where, "is_empty", NodeKind::kIsEmpty, out);
    if (c.contains("is_null")) return key_condition(c, where, "is_null", NodeKind::kIsNull, out);
    if (c.contains("has_id")) return has_id(c, where, nested, out);
    if (c.contains("nested")) return nested_condition(c, where, depth, out);
    if (c.contains("has_vector")) return error(where, "has_vector conditions are not supported");
    if (c.contains("slice")) return error(where, "slice conditions are not supported");
    return filter(c, where, depth + 1, nested, out, /*as_condition=*/true);
  }

  /// Rejects fields of a one-field condition other than `name`.
  static Status only_field(const json& c, const std::string& where, std::string_view name) {
    for (const auto& [field, unused] : c.items()) {
      if (field != name)
        return error(where, "unknown field " + in_quotes(field) + "; expected only " + std::string(name));
    }
    return Status::ok();
  }

  Status key_condition(const json& c, const std::string& where, const char* name, NodeKind kind, std::uint32_t* out) {
    VECSTASH_RETURN_IF_ERROR(only_field(c, where, name));
    const json& field = c[name];
    const std::string at = where + "." + name;
    if (!field.is_object() || !field.contains("key")) return error(at, "expected an object with a key");
    VECSTASH_RETURN_IF_ERROR(only_field(field, at, "key"));
    Node n;
    n.kind = kind;
    VECSTASH_RETURN_IF_ERROR(parse_key(field["key"], at + ".key", &n.path));
    *out = add(std::move(n));
    return Status::ok();
  }

  Status has_id(const json& c, const std::string& where, bool nested, std::uint32_t* out) {
    VECSTASH_RETURN_IF_ERROR(only_field(c, where, "has_id"));
    const std::string at = where + ".has_id";
    if (nested) return error(at, "has_id is not supported inside a nested filter");
    const json& list = c["has_id"];
    if (!list.is_array()) return error(at, "expected an array of point ids");
    Node n;
    n.kind = NodeKind::kHasId;
    for (std::size_t i = 0; i < list.size(); ++i) {
      const json& v = list[i];
      // json(5) built in C++ is a signed integer; PointId::from_json only takes unsigned ones.
      if (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() >= 0) {
        n.ids.push_back(PointId::number(v.get<std::uint64_t>()));
        continue;
      }
      Result<PointId> id = PointId::from_json(v);
      if (!id.is_ok()) return error(at + "[" + std::to_string(i) + "]", id.status().message());
      n.ids.push_back(*id);
    }
    sort_unique(n.ids);
    *out = add(std::move(n));
    return Status::ok();
  }

  Status nested_condition(const json& c, const std::string& where, int depth, std::uint32_t* out) {
    VECSTASH_RETURN_IF_ERROR(only_field(c, where, "nested"));
    const json& spec = c["nested"];
    const std::string at = where + ".nested";
    if (!spec.is_object()) return error(at, "expected an object with key and filter");
    for (const auto& [name, unused] : spec.items()) {
      if (name != "key" && name != "filter")
        return error(at, "unknown field " + in_quotes(name) + "; expected key and filter");
    }
    if (!spec.contains("key")) return error(at, "missing key");
    if (!spec.contains("filter")) return error(at, "missing filter");
    Node n;
    n.kind = NodeKind::kNested;
    VECSTASH_RETURN_IF_ERROR(parse_key(spec["key"], at + ".key", &n.path));
    if (n.path.back().kind != StepKind::kEach) n.path.push_back(Step{StepKind::kEach, 0, {}});
    if (!spec["filter"].is_object()) return error(at + ".filter", "expected a filter object");
    VECSTASH_RETURN_IF_ERROR(filter(spec["filter"], at + ".filter", depth + 1, /*nested=*/true, &n.child));
    *out = add(std::move(n));
    return Status::ok();
  }

  Status field_condition(const json& c, const std::string& where, std::uint32_t* out) {
    Path path;
    VECSTASH_RETURN_IF_ERROR(parse_key(c["key"], where + ".key", &path));
    std::vector<Node> clauses;
    for (const auto& [name, v] : c.items()) {
      if (name == "key" || v.is_null()) continue;  // every clause is optional and nullable
      const std::string at = where + "." + name;
      Node n;
      if (name == "match") {
        VECSTASH_RETURN_IF_ERROR(parse_match(v, at, &n));
      } else if (name == "range") {
        VECSTASH_RETURN_IF_ERROR(parse_range(v, at, &n));
      } else if (name == "values_count") {
        VECSTASH_RETURN_IF_ERROR(parse_values_count(v, at, &n));
      } else if (name == "is_empty" || name == "is_null") {
        if (!v.is_boolean()) return error(at, "expected a bool");
        n.kind = name == "is_empty" ? NodeKind::kEmptyFlag : NodeKind::kNullFlag;
        n.flag = v.get<bool>();
      } else if (name == "geo_bounding_box" || name == "geo_radius" || name == "geo_polygon") {
        return error(at, "geo conditions are not supported");
      } else {
        return error(where, "unknown field " + in_quotes(name) + " in a field condition");
      }
      clauses.push_back(std::move(n));
    }
    if (clauses.empty()) {
      return error(where, "a field condition needs one of match, range, values_count, is_empty, is_null");
    }
    const std::string key = c["key"].get<std::string>();
    if (clauses.size() == 1) {
      clauses.front().path = std::move(path);
      clauses.front().key = key;
      *out = add(std::move(clauses.front()));
      return Status::ok();
    }
    Node all;
    all.kind = NodeKind::kBool;
    for (Node& clause : clauses) {
      clause.path = path;
      clause.key = key;
      all.must.push_back(add(std::move(clause)));
    }
    *out = add(std::move(all));
    return Status::ok();
  }
};

std::vector<PointId> intersect(const std::vector<PointId>& a, const std::vector<PointId>& b) {
  std::vector<PointId> out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

/// The ids every point matching node `i` must have, when has_id conditions pin them down.
std::optional<std::vector<PointId>> required_ids(const std::vector<Node>& nodes, std::uint32_t i) {
  const Node& n = nodes[i];
  if (n.kind == NodeKind::kHasId) return n.ids;
  if (n.kind == NodeKind::kConst && !n.flag) return std::vector<PointId>{};
  if (n.kind != NodeKind::kBool) return std::nullopt;
  std::optional<std::vector<PointId>> result;
  auto narrow = [&](std::vector<PointId> ids) { result = result ? intersect(*result, ids) : std::move(ids); };
  // A point passing an "at least one of" list has the ids of one of its conditions: the union, if
  // every condition restricts ids.
  auto union_of = [&](const std::vector<std::uint32_t>& list) -> std::optional<std::vector<PointId>> {
    std::vector<PointId> all;
    for (const std::uint32_t c : list) {
      auto ids = required_ids(nodes, c);
      if (!ids) return std::nullopt;
      all.insert(all.end(), ids->begin(), ids->end());
    }
    sort_unique(all);
    return all;
  };
  for (const std::uint32_t c : n.must) {
    if (auto ids = required_ids(nodes, c)) narrow(std::move(*ids));
  }
  if (!n.should.empty()) {
    if (auto ids = union_of(n.should)) narrow(std::move(*ids));
  }
  if (n.min_count > 0) {
    if (auto ids = union_of(n.min_should)) narrow(std::move(*ids));
  }
  return result;
}

}  // namespace

/// Qdrant's key syntax, a little more lenient: a segment is any run of characters other than
/// . [ ] " (Qdrant: letters, digits, _ and -), or a "quoted" run without " and \.
Status parse_path(std::string_view key, const std::string& where, Path* out) {
  const std::string text(key);
  if (text.empty()) return Status::invalid_argument(where + ": empty key");
  auto bad = [&](std::size_t at, std::string_view why) {
    return Status::invalid_argument(where + ": invalid key '" + text + "' at character " + std::to_string(at) + ": " +
                                    std::string(why));
  };
  Path path;
  std::size_t i = 0;
  bool expect_key = true;  // at the start and after '.'
  while (i < text.size()) {
    if (expect_key) {
      Step step;
      if (text[i] == '"') {
        const std::size_t close = text.find('"', i + 1);
        if (close == std::string::npos) return bad(i, "unterminated quote");
        step.key = text.substr(i + 1, close - i - 1);
        if (step.key.find('\\') != std::string::npos) return bad(i, "backslash in a quoted key");
        i = close + 1;
      } else {
        const std::size_t end = std::min(text.find_first_of(".[]\"", i), text.size());
        if (end == i) return bad(i, "expected a key name");
        step.key = text.substr(i, end - i);
        i = end;
      }
      path.push_back(std::move(step));
      expect_key = false;
      continue;
    }
    if (text[i] == '.') {
      expect_key = true;
      ++i;
      if (i == text.size()) return bad(i, "expected a key name");
      continue;
    }
    if (text[i] != '[') return bad(i, "expected '.' or '['");
    const std::size_t close = text.find(']', i + 1);
    if (close == std::string::npos) return bad(i, "unterminated '['");
    Step step;
    if (close == i + 1) {
      step.kind = StepKind::kEach;
    } else {
      const std::string_view digits(text.data() + i + 1, close - i - 1);
      if (digits.size() > 9 ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
        return bad(i, "expected [] or [index]");
      }
      step.kind = StepKind::kIndex;
      step.index = std::stoul(std::string(digits));
    }
    path.push_back(std::move(step));
    i = close + 1;
  }
  *out = std::move(path);
  return Status::ok();
}

Filter::Filter() noexcept = default;

Filter::Filter(std::shared_ptr<const Program> program) noexcept : program_(std::move(program)) {}

Result<Filter> Filter::parse(const nlohmann::json& filter) {
  Compiler compiler;
  std::uint32_t root = 0;
  VECSTASH_RETURN_IF_ERROR(compiler.filter(filter, "filter", 0, /*nested=*/false, &root));
  if (compiler.nodes[root].kind == NodeKind::kConst && compiler.nodes[root].flag) return Filter();
  auto program = std::make_shared<Program>();
  program->required_ids = engine::required_ids(compiler.nodes, root);
  program->nodes = std::move(compiler.nodes);
  program->root = root;
  return Filter(std::move(program));
}

bool Filter::matches(const PointId& id, const nlohmann::json* payload) const noexcept {
  if (!program_) return true;
  const json& root = payload != nullptr && payload->is_object() ? *payload : empty_object();
  return eval(*program_, program_->root, id, root);
}

bool Filter::matches_all() const noexcept { return program_ == nullptr; }

bool Filter::reads_payload() const noexcept {
  if (!program_) return false;
  return std::any_of(program_->nodes.begin(), program_->nodes.end(), [](const Node& n) {
    return n.kind != NodeKind::kConst && n.kind != NodeKind::kBool && n.kind != NodeKind::kHasId;
  });
}

namespace {

// What the payload indexes say about a node: rows nullopt = every row may match; otherwise a
// superset of the matching rows, equal to them (on live rows) when exact.
struct Plan {
  std::optional<RowList> rows;
  bool exact = false;
};

RowList intersect_rows(const RowList& a, const RowList& b) {
  RowList out;
  std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

Plan both(Plan a, Plan b) {
  Plan out;
  out.exact = a.exact && b.exact;
  if (a.rows && b.rows) {
    out.rows = intersect_rows(*a.rows, *b.rows);
  } else {
    out.rows = a.rows ? std::move(a.rows) : std::move(b.rows);
  }
  return out;
}

Plan leaf_plan(const Node& n, const PayloadIndexes& indexes) {
  const FieldIndex* index = n.key.empty() ? nullptr : indexes.find(n.key);
  if (index == nullptr) return {};
  std::optional<RowList> rows;
  switch (n.kind) {
    case NodeKind::kMatchString:
      rows = index->match_strings(std::span<const std::string>(&n.text, 1));
      break;
    case NodeKind::kAnyString:
      rows = index->match_strings(n.strings);
      break;
    case NodeKind::kMatchInt:
      rows = index->match_integers(std::span<const std::int64_t>(&n.integer, 1));
      break;
    case NodeKind::kAnyInt:
      rows = index->match_integers(n.integers);
      break;
    case NodeKind::kMatchBool:
      rows = index->match_bool(n.flag);
      break;
    case NodeKind::kRange:
      rows = index->range(n.gt, n.gte, n.lt, n.lte);
      break;
    case NodeKind::kDatetimeRange:
      rows = index->datetime_range(n.from, n.to);
      break;
    case NodeKind::kTextTokens:
    case NodeKind::kTextAnyTokens:
      rows = index->text(n.strings, n.kind == NodeKind::kTextTokens);
      break;
    default:
      break;
  }
  if (!rows) return {};
  // Uncovered rows (values the index cannot hold) are added to the lookups they could satisfy:
  // those answers need checking; integer matches never pick such rows.
  const bool integer_match = n.kind == NodeKind::kMatchInt || n.kind == NodeKind::kAnyInt;
  return {std::move(rows), integer_match || index->exact_ranges()};
}

Plan plan_node(const Program& p, std::uint32_t i, const PayloadIndexes& indexes, const Filter::RowOf& row_of) {
  const Node& n = p.nodes[i];
  switch (n.kind) {
    case NodeKind::kConst:
      return n.flag ? Plan{std::nullopt, true} : Plan{RowList{}, true};
    case NodeKind::kHasId: {
      RowList rows;
      for (const PointId& id : n.ids) {
        if (const auto r = row_of(id)) rows.push_back(*r);
      }
      std::sort(rows.begin(), rows.end());
      return {std::move(rows), true};
    }
    case NodeKind::kBool: {
      Plan acc{std::nullopt, true};
      for (const std::uint32_t c : n.must) acc = both(std::move(acc), plan_node(p, c, indexes, row_of));
      if (!n.should.empty()) {
        Plan any{RowList{}, true};
        for (const std::uint32_t c : n.should) {
          Plan q = plan_node(p, c, indexes, row_of);
          any.exact = any.exact && q.exact;
          if (any.rows && q.rows) {
            RowList u;
            std::set_union(any.rows->begin(), any.rows->end(), q.rows->begin(), q.rows->end(), std::back_inserter(u));
            any.rows = std::move(u);
          } else {
            any.rows.reset();
          }
        }
        acc = both(std::move(acc), std::move(any));
      }
      for (const std::uint32_t c : n.must_not) {
        const Plan q = plan_node(p, c, indexes, row_of);
        if (q.exact && q.rows && acc.rows) {
          RowList left;
          std::set_difference(acc.rows->begin(), acc.rows->end(), q.rows->begin(), q.rows->end(),
                              std::back_inserter(left));
          acc.rows = std::move(left);
        } else {
          acc.exact = false;  // excluding rows never adds any: acc stays a superset
        }
      }
      if (n.min_count > 0) acc.exact = false;
      return acc;
    }
    default:
      return leaf_plan(n, indexes);
  }
}

}  // namespace

std::optional<Filter::Candidates> Filter::candidates(const PayloadIndexes& indexes, const RowOf& row_of) const {
  if (!program_) return std::nullopt;
  Plan plan = plan_node(*program_, program_->root, indexes, row_of);
  if (!plan.rows) return std::nullopt;
  return Candidates{std::move(*plan.rows), plan.exact};
}

Filter Filter::bind(const PayloadIndexes& indexes) const {
  if (!program_) return *this;
  std::shared_ptr<Program> bound;
  for (std::size_t i = 0; i < program_->nodes.size(); ++i) {
    const Node& n = program_->nodes[i];
    const bool text = (n.kind == NodeKind::kText && !n.phrase) || n.kind == NodeKind::kTextAny;
    if (!text || n.key.empty()) continue;
    const FieldIndex* index = indexes.find(n.key);
    if (index == nullptr || index->schema() != FieldSchema::kText) continue;
    if (!bound) bound = std::make_shared<Program>(*program_);
    Node& b = bound->nodes[i];
    std::string query = n.text;
    for (const std::string& s : n.strings) query += " " + s;
    b.strings = text_tokens(query, true);
    b.kind = n.kind == NodeKind::kText ? NodeKind::kTextTokens : NodeKind::kTextAnyTokens;
  }
  return bound ? Filter(std::move(bound)) : *this;
}

const std::vector<PointId>* Filter::required_ids() const noexcept {
  return program_ && program_->required_ids ? &*program_->required_ids : nullptr;
}

}  // namespace vecstash::engine
