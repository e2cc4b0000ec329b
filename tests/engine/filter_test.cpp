#include "vecstash/engine/filter.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

// Allocation counting for the "matches() does not allocate" test. Sanitizers bring their own
// operator new, so the counter is compiled out (and that test skipped) under them.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define VECSTASH_FILTER_TEST_COUNT_ALLOCATIONS 0
#else
#define VECSTASH_FILTER_TEST_COUNT_ALLOCATIONS 1
namespace {
std::atomic<std::uint64_t> g_allocations{0};
}  // namespace
// noinline: inlined into callers, GCC pairs the free() with a builtin new and warns.
[[gnu::noinline]] void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void* operator new[](std::size_t size) { return ::operator new(size); }
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace vecstash::engine {
namespace {

using nlohmann::json;

Filter parse_ok(const std::string& text) {
  auto f = Filter::parse(json::parse(text));
  EXPECT_TRUE(f.is_ok()) << text << " -> " << f.status().to_string();
  return f.is_ok() ? *f : Filter();
}

/// Does `filter` (JSON text) match a point with id 1 and `payload` (JSON text)?
bool match(const std::string& filter, const std::string& payload, PointId id = PointId::number(1)) {
  const Filter f = parse_ok(filter);
  const json p = json::parse(payload);
  return f.matches(id, &p);
}

/// A single must condition on `key` with the given clause, e.g. cond("a", R"("match":{"value":1})").
std::string cond(const std::string& key, const std::string& clause) {
  return R"({"must":[{"key":")" + key + R"(",)" + clause + "}]}";
}

std::string match_value(const std::string& key, const std::string& value) {
  return cond(key, R"("match":{"value":)" + value + "}");
}

// ---- hand-written cases -------------------------------------------------------------------------

TEST(Filter, EmptyFiltersMatchEverything) {
  EXPECT_TRUE(Filter().matches_all());
  EXPECT_TRUE(Filter().matches(PointId::number(7), nullptr));
  for (const char* text : {"null", "{}", R"({"must":[]})", R"({"must":null,"should":null,"must_not":null})",
                           R"({"should":[]})", R"({"must":[{}]})", R"({"must":{"must":[]}})"}) {
    const Filter f = parse_ok(text);
    EXPECT_TRUE(f.matches_all()) << text;
    EXPECT_TRUE(f.matches(PointId::number(1), nullptr)) << text;
    EXPECT_EQ(f.required_ids(), nullptr) << text;
  }
  const Filter f = parse_ok(match_value("a", "1"));
  EXPECT_FALSE(f.matches_all());
}

TEST(Filter, MatchValueIsTypeStrict) {
  const std::string p = R"({"i":1,"s":"1","b":true,"f":1.0,"neg":-5,"z":0,"fa":false,"big":18446744073709551615})";
  EXPECT_TRUE(match(match_value("i", "1"), p));
  EXPECT_FALSE(match(match_value("s", "1"), p));  // "1" is not 1
  EXPECT_FALSE(match(match_value("b", "1"), p));  // true is not 1
  EXPECT_FALSE(match(match_value("f", "1"), p));  // 1.0 is a float, not an integer
  EXPECT_TRUE(match(match_value("s", R"("1")"), p));
  EXPECT_FALSE(match(match_value("i", R"("1")"), p));
  EXPECT_TRUE(match(match_value("b", "true"), p));
  EXPECT_FALSE(match(match_value("i", "true"), p));
  EXPECT_FALSE(match(match_value("z", "false"), p));  // 0 is not false
  EXPECT_TRUE(match(match_value("fa", "false"), p));
  EXPECT_TRUE(match(match_value("neg", "-5"), p));
  EXPECT_FALSE(match(match_value("big", "-1"), p));  // beyond int64: equal to no integer
  EXPECT_FALSE(match(match_value("missing", "1"), p));
  EXPECT_FALSE(match(match_value("i", "2"), p));
  // Integers compare exactly, also near the int64 limits.
  EXPECT_TRUE(match(match_value("x", "9223372036854775807"), R"({"x":9223372036854775807})"));
  EXPECT_FALSE(match(match_value("x", "9223372036854775807"), R"({"x":9223372036854775806})"));
  EXPECT_TRUE(match(match_value("x", "-9223372036854775808"), R"({"x":-9223372036854775808})"));
  // A string match is exact (case, whitespace).
  EXPECT_FALSE(match(match_value("s", R"("ab")"), R"({"s":"Ab"})"));
  EXPECT_TRUE(match(match_value("s", R"("")"), R"({"s":""})"));
}

TEST(Filter, NestedKeysWalkObjects) {
  const std::string p = R"({"metadata":{"source":"wiki","page":{"n":3}},"flat":"x","metadata.source":"dotted"})";
  EXPECT_TRUE(match(match_value("metadata.source", R"("wiki")"), p));
  EXPECT_FALSE(match(match_value("metadata.source", R"("dotted")"), p));        // dots always walk
  EXPECT_TRUE(match(match_value(R"(\"metadata.source\")", R"("dotted")"), p));  // a quoted key does not
  EXPECT_TRUE(match(match_value("metadata.page.n", "3"), p));
  EXPECT_FALSE(match(match_value("metadata.page", "3"), p));     // an object is not a value
  EXPECT_FALSE(match(match_value("flat.source", R"("x")"), p));  // a step into a scalar reaches nothing
  EXPECT_FALSE(match(match_value("metadata.nothing.n", "3"), p));
  EXPECT_FALSE(match(match_value("metadata.page.n", "3"), "{}"));
  const Filter f = parse_ok(match_value("metadata.source", R"("wiki")"));
  EXPECT_FALSE(f.matches(PointId::number(1), nullptr));  // no payload: no values
  const json not_an_object = json::array({1, 2});
  EXPECT_FALSE(f.matches(PointId::number(1), &not_an_object));
}

TEST(Filter, ArraysMatchWhenAnyElementMatches) {
  const std::string p = R"({
    "tags": ["red", "green", 7, null, ["blue"]],
    "cities": [{"name": "Berlin", "pop": 3.7, "sights": ["Gate", "Dome"]},
               {"name": "Tokyo", "pop": 9.3}, 5, {"other": 1}],
    "grid": [[1, 2], [3]],
    "deep": {"list": [{"x": {"y": [10, 20]}}, {"x": {"y": 30}}]}
  })";
  EXPECT_TRUE(match(match_value("tags", R"("green")"), p));
  EXPECT_TRUE(match(match_value("tags", "7"), p));
  EXPECT_FALSE(match(match_value("tags", R"("blue")"), p));   // an array inside the array is not expanded
  EXPECT_TRUE(match(match_value("tags[]", R"("blue")"), p));  // "[]" expands one level, then elements
  EXPECT_TRUE(match(match_value("tags[0]", R"("red")"), p));
  EXPECT_FALSE(match(match_value("tags[1]", R"("red")"), p));
  EXPECT_FALSE(match(match_value("tags[9]", R"("red")"), p));
  // Arrays of objects: "[]" as Qdrant writes it, and the same path without it.
  for (const char* key : {"cities[].name", "cities.name"}) {
    EXPECT_TRUE(match(match_value(key, R"("Tokyo")"), p)) << key;
    EXPECT_FALSE(match(match_value(key, R"("Paris")"), p)) << key;
  }
  EXPECT_TRUE(match(match_value("cities[].sights", R"("Dome")"), p));
  EXPECT_TRUE(match(match_value("cities[0].name", R"("Berlin")"), p));
  EXPECT_FALSE(match(match_value("cities[1].name", R"("Berlin")"), p));
  EXPECT_TRUE(match(match_value("grid[]", "3"), p));
  EXPECT_FALSE(match(match_value("grid", "3"), p));
  EXPECT_TRUE(match(match_value("deep.list[].x.y", "20"), p));
  EXPECT_TRUE(match(match_value("deep.list.x.y", "30"), p));
  EXPECT_FALSE(match(match_value("grid[]", R"("1")"), p));
  // "[]" on a scalar or an object reaches nothing.
  EXPECT_FALSE(match(match_value("s[]", R"("x")"), R"({"s":"x"})"));
  EXPECT_FALSE(match(match_value("o[].a", "1"), R"({"o":{"a":1}})"));
  EXPECT_TRUE(match(match_value("o.a", "1"), R"({"o":{"a":1}})"));
}

TEST(Filter, MatchAnyAndExcept) {
  const std::string any_s = R"("match":{"any":["a","b"]})";
  const std::string any_i = R"("match":{"any":[1,2]})";
  const std::string except_s = R"("match":{"except":["a","b"]})";
  const std::string except_i = R"("match":{"except":[1,2]})";
  EXPECT_TRUE(match(cond("k", any_s), R"({"k":"b"})"));
  EXPECT_FALSE(match(cond("k", any_s), R"({"k":"c"})"));
  EXPECT_FALSE(match(cond("k", any_s), R"({"k":1})"));
  EXPECT_TRUE(match(cond("k", any_s), R"({"k":["x","a"]})"));
  EXPECT_TRUE(match(cond("k", any_i), R"({"k":2})"));
  EXPECT_FALSE(match(cond("k", any_i), R"({"k":2.0})"));
  EXPECT_FALSE(match(cond("k", any_i), R"({"k":"2"})"));
  EXPECT_FALSE(match(cond("k", R"("match":{"any":[]})"), R"({"k":"a"})"));
  EXPECT_FALSE(match(cond("k", any_s), "{}"));

  EXPECT_TRUE(match(cond("k", except_s), R"({"k":"c"})"));
  EXPECT_FALSE(match(cond("k", except_s), R"({"k":"a"})"));
  EXPECT_TRUE(match(cond("k", except_s), R"({"k":["a","c"]})"));  // one value outside the list is enough
  EXPECT_FALSE(match(cond("k", except_s), R"({"k":["a","b"]})"));
  EXPECT_FALSE(match(cond("k", except_s), R"({"k":[]})"));  // no value at all
  EXPECT_FALSE(match(cond("k", except_s), "{}"));           // missing
  EXPECT_FALSE(match(cond("k", except_s), R"({"k":null})"));
  EXPECT_TRUE(match(cond("k", except_s), R"({"k":1})"));  // other types are "not in the list"
  EXPECT_TRUE(match(cond("k", except_s), R"({"k":true})"));
  EXPECT_TRUE(match(cond("k", except_s), R"({"k":{"a":1}})"));
  EXPECT_TRUE(match(cond("k", except_i), R"({"k":3})"));
  EXPECT_FALSE(match(cond("k", except_i), R"({"k":2})"));
  EXPECT_TRUE(match(cond("k", except_i), R"({"k":2.0})"));  // a float is no integer of the list
  EXPECT_TRUE(match(cond("k", except_i), R"({"k":"1"})"));
  EXPECT_TRUE(match(cond("k", R"("match":{"except":[]})"), R"({"k":"a"})"));
  EXPECT_FALSE(match(cond("k", R"("match":{"except":[]})"), R"({"k":null})"));
}

TEST(Filter, TextMatches) {
  const std::string p = R"({"t":"the quick brown fox","n":5,"arr":["alpha","beta"]})";
  EXPECT_TRUE(match(cond("t", R"("match":{"text":"quick br"})"), p));
  EXPECT_FALSE(match(cond("t", R"("match":{"text":"Quick"})"), p));  // case-sensitive
  EXPECT_TRUE(match(cond("t", R"("match":{"phrase":"brown fox"})"), p));
  EXPECT_TRUE(match(cond("t", R"("match":{"text_any":"cat  fox"})"), p));
  EXPECT_FALSE(match(cond("t", R"("match":{"text_any":"cat dog"})"), p));
  EXPECT_FALSE(match(cond("t", R"("match":{"text_any":"   "})"), p));  // no tokens
  EXPECT_TRUE(match(cond("t", R"("match":{"prefix":"the q"})"), p));
  EXPECT_FALSE(match(cond("t", R"("match":{"prefix":"quick"})"), p));
  EXPECT_FALSE(match(cond("n", R"("match":{"text":"5"})"), p));  // not a string
  EXPECT_TRUE(match(cond("arr", R"("match":{"text":"et"})"), p));
  EXPECT_TRUE(match(cond("t", R"("match":{"text":""})"), p));
}

TEST(Filter, RangeComparesNumbers) {
  auto range = [](const std::string& bounds) { return cond("x", R"("range":)" + bounds); };
  EXPECT_TRUE(match(range(R"({"gt":1})"), R"({"x":2})"));
  EXPECT_FALSE(match(range(R"({"gt":2})"), R"({"x":2})"));
  EXPECT_TRUE(match(range(R"({"gte":2})"), R"({"x":2})"));
  EXPECT_TRUE(match(range(R"({"lt":2.5})"), R"({"x":2})"));
  EXPECT_FALSE(match(range(R"({"lt":2})"), R"({"x":2.0})"));
  EXPECT_TRUE(match(range(R"({"lte":2})"), R"({"x":2.0})"));  // integer bound, float value
  EXPECT_TRUE(match(range(R"({"gt":1.5,"lt":2.5})"), R"({"x":2})"));
  EXPECT_FALSE(match(range(R"({"gt":1.5,"lt":2.5})"), R"({"x":3})"));
  EXPECT_TRUE(match(range(R"({"gte":-10,"lte":-10})"), R"({"x":-10})"));
  EXPECT_TRUE(match(range(R"({"gt":null,"lt":0})"), R"({"x":-1})"));  // a null bound is absent
  EXPECT_FALSE(match(range(R"({"gt":0})"), R"({"x":"5"})"));          // not a number
  EXPECT_FALSE(match(range(R"({"gt":0})"), R"({"x":true})"));
  EXPECT_FALSE(match(range(R"({"gt":0})"), R"({"x":null})"));
  EXPECT_FALSE(match(range(R"({"gt":0})"), "{}"));
  EXPECT_TRUE(match(range(R"({"gt":0})"), R"({"x":[-3,"7",4]})"));  // any element
  EXPECT_FALSE(match(range(R"({"gt":0})"), R"({"x":[-3,"7"]})"));
  EXPECT_TRUE(match(range(R"({"gt":1e19})"), R"({"x":18446744073709551615})"));
}

TEST(Filter, ValuesCountCountsValues) {
  auto count = [](const std::string& bounds) { return cond("x", R"("values_count":)" + bounds); };
  EXPECT_TRUE(match(count(R"({"gt":1})"), R"({"x":[1,2]})"));
  EXPECT_FALSE(match(count(R"({"gt":2})"), R"({"x":[1,2]})"));
  EXPECT_TRUE(match(count(R"({"gte":2,"lte":2})"), R"({"x":[1,null]})"));  // elements count, even null
  EXPECT_TRUE(match(count(R"({"lt":1})"), R"({"x":[]})"));
  EXPECT_TRUE(match(count(R"({"lt":1})"), R"({"x":null})"));
  EXPECT_TRUE(match(count(R"({"lt":1})"), "{}"));  // missing: 0 values
  EXPECT_FALSE(match(count(R"({"gte":1})"), "{}"));
  EXPECT_TRUE(match(count(R"({"gte":1,"lte":1})"), R"({"x":"abc"})"));  // a scalar is one value
  EXPECT_TRUE(match(count(R"({"gte":1,"lte":1})"), R"({"x":{"a":1,"b":2}})"));
  EXPECT_FALSE(match(count(R"({"lt":0})"), R"({"x":[]})"));  // nothing is below 0
  EXPECT_TRUE(match(cond("a[].b", R"("values_count":{"gte":3})"), R"({"a":[{"b":[1,2]},{"b":3}]})"));
}

TEST(Filter, IsEmpty) {
  const std::string f = R"({"must":[{"is_empty":{"key":"x"}}]})";
  EXPECT_TRUE(match(f, "{}"));
  EXPECT_TRUE(match(f, R"({"x":null})"));
  EXPECT_TRUE(match(f, R"({"x":[]})"));
  EXPECT_FALSE(match(f, R"({"x":[null]})"));
  EXPECT_FALSE(match(f, R"({"x":[1]})"));
  EXPECT_FALSE(match(f, R"({"x":0})"));
  EXPECT_FALSE(match(f, R"({"x":""})"));
  EXPECT_FALSE(match(f, R"({"x":false})"));
  EXPECT_FALSE(match(f, R"({"x":{}})"));
  EXPECT_TRUE(parse_ok(f).matches(PointId::number(1), nullptr));
  // Through arrays: empty only when every value reached is empty.
  const std::string g = R"({"must":[{"is_empty":{"key":"a[].b"}}]})";
  EXPECT_TRUE(match(g, R"({"a":[{"b":[]},{"c":1},{"b":null}]})"));
  EXPECT_FALSE(match(g, R"({"a":[{"b":[]},{"b":1}]})"));
  EXPECT_TRUE(match(g, R"({"a":[]})"));
  // must_not is_empty: "has a value".
  EXPECT_TRUE(match(R"({"must_not":[{"is_empty":{"key":"x"}}]})", R"({"x":[0]})"));
  EXPECT_FALSE(match(R"({"must_not":[{"is_empty":{"key":"x"}}]})", R"({"x":[]})"));
}

TEST(Filter, IsNull) {
  const std::string f = R"({"must":[{"is_null":{"key":"x"}}]})";
  EXPECT_TRUE(match(f, R"({"x":null})"));
  EXPECT_FALSE(match(f, "{}"));  // missing is not null
  EXPECT_FALSE(match(f, R"({"x":[]})"));
  EXPECT_FALSE(match(f, R"({"x":[null]})"));  // an array holding null is not null (Qdrant)
  EXPECT_FALSE(match(f, R"({"x":0})"));
  EXPECT_FALSE(match(f, R"({"x":""})"));
  EXPECT_FALSE(parse_ok(f).matches(PointId::number(1), nullptr));
  const std::string g = R"({"must":[{"is_null":{"key":"a[].b"}}]})";
  EXPECT_TRUE(match(g, R"({"a":[{"b":1},{"b":null}]})"));
  EXPECT_FALSE(match(g, R"({"a":[{"b":1},{"c":null}]})"));
  EXPECT_TRUE(match(R"({"must":[{"is_null":{"key":"a[]"}}]})", R"({"a":[1,null]})"));
}

TEST(Filter, FieldConditionEmptyAndNullFlags) {
  auto flag = [](const char* name, const char* value) { return cond("x", "\"" + std::string(name) + "\":" + value); };
  EXPECT_TRUE(match(flag("is_empty", "true"), "{}"));
  EXPECT_TRUE(match(flag("is_empty", "true"), R"({"x":[]})"));
  EXPECT_FALSE(match(flag("is_empty", "true"), R"({"x":[null]})"));
  EXPECT_FALSE(match(flag("is_empty", "false"), "{}"));
  EXPECT_TRUE(match(flag("is_empty", "false"), R"({"x":1})"));
  EXPECT_FALSE(match(flag("is_empty", "false"), R"({"x":null})"));
  EXPECT_TRUE(match(flag("is_null", "true"), R"({"x":null})"));
  EXPECT_TRUE(match(flag("is_null", "true"), R"({"x":[1,null]})"));  // this form counts a null element
  EXPECT_FALSE(match(flag("is_null", "true"), "{}"));
  EXPECT_TRUE(match(flag("is_null", "false"), "{}"));
  EXPECT_TRUE(match(flag("is_null", "false"), R"({"x":[1]})"));
  EXPECT_FALSE(match(flag("is_null", "false"), R"({"x":null})"));
}

TEST(Filter, HasIdAndRequiredIds) {
  const std::string uuid = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  const Filter f = parse_ok(R"({"must":[{"has_id":[3, 1, ")" + uuid + R"(", 3]}]})");
  const PointId u = *PointId::parse_uuid(uuid);
  EXPECT_TRUE(f.matches(PointId::number(1), nullptr));
  EXPECT_TRUE(f.matches(PointId::number(3), nullptr));
  EXPECT_TRUE(f.matches(u, nullptr));
  EXPECT_FALSE(f.matches(PointId::number(2), nullptr));
  ASSERT_NE(f.required_ids(), nullptr);
  EXPECT_EQ(*f.required_ids(), (std::vector<PointId>{PointId::number(1), PointId::number(3), u}));

  // must intersects, should unions, a payload condition beside them does not widen the set.
  const Filter g = parse_ok(R"({"must":[{"has_id":[1,2,3]},{"has_id":[2,3,4]},{"key":"a","match":{"value":1}}],
                                 "should":[{"has_id":[3]},{"must":[{"has_id":[2,9]}]}]})");
  ASSERT_NE(g.required_ids(), nullptr);
  EXPECT_EQ(*g.required_ids(), (std::vector<PointId>{PointId::number(2), PointId::number(3)}));
  const json a1 = {{"a", 1}};
  EXPECT_TRUE(g.matches(PointId::number(2), &a1));
  EXPECT_FALSE(g.matches(PointId::number(1), &a1));
  EXPECT_FALSE(g.matches(PointId::number(4), &a1));

  // A should with a payload condition does not restrict ids; must_not never does.
  EXPECT_EQ(parse_ok(R"({"should":[{"has_id":[1]},{"key":"a","match":{"value":1}}]})").required_ids(), nullptr);
  EXPECT_EQ(parse_ok(R"({"must_not":[{"has_id":[1]}]})").required_ids(), nullptr);
  EXPECT_FALSE(parse_ok(R"({"must_not":[{"has_id":[1]}]})").matches(PointId::number(1), nullptr));
  const Filter none = parse_ok(R"({"must":[{"has_id":[]}]})");
  ASSERT_NE(none.required_ids(), nullptr);
  EXPECT_TRUE(none.required_ids()->empty());
  EXPECT_FALSE(none.matches(PointId::number(0), nullptr));
  // Ids built in C++ as signed integers are accepted like parsed ones.
  auto built = Filter::parse(json{{"must", json::array({json{{"has_id", json::array({5, 6})}}})}});
  ASSERT_TRUE(built.is_ok()) << built.status().to_string();
  EXPECT_TRUE(built->matches(PointId::number(6), nullptr));
}

TEST(Filter, BooleanStructure) {
  const std::string p = R"({"a":1,"b":"x","c":true})";
  const std::string a1 = R"({"key":"a","match":{"value":1}})";
  const std::string a2 = R"({"key":"a","match":{"value":2}})";
  const std::string bx = R"({"key":"b","match":{"value":"x"}})";
  const std::string cf = R"({"key":"c","match":{"value":false}})";
  EXPECT_TRUE(match(R"({"must":[)" + a1 + "," + bx + "]}", p));
  EXPECT_FALSE(match(R"({"must":[)" + a1 + "," + a2 + "]}", p));
  EXPECT_TRUE(match(R"({"must":)" + a1 + "}", p));  // a single condition object
  EXPECT_TRUE(match(R"({"should":[)" + a2 + "," + bx + "]}", p));
  EXPECT_FALSE(match(R"({"should":[)" + a2 + "," + cf + "]}", p));
  EXPECT_FALSE(match(R"({"must_not":[)" + a2 + "," + bx + "]}", p));
  EXPECT_TRUE(match(R"({"must_not":[)" + a2 + "," + cf + "]}", p));
  EXPECT_TRUE(match(R"({"must":[)" + a1 + R"(],"should":[)" + a2 + "," + bx + R"(],"must_not":)" + cf + "}", p));
  // min_should: at least min_count of the conditions.
  const std::string three = a1 + "," + a2 + "," + bx;
  EXPECT_TRUE(match(R"({"min_should":{"conditions":[)" + three + R"(],"min_count":2}})", p));
  EXPECT_FALSE(match(R"({"min_should":{"conditions":[)" + three + R"(],"min_count":3}})", p));
  EXPECT_FALSE(match(R"({"min_should":{"conditions":[],"min_count":1}})", p));
  // Filters as conditions: (a = 2 or b = "x") and not (a = 1 and c = false).
  EXPECT_TRUE(
      match(R"({"must":[{"should":[)" + a2 + "," + bx + R"(]}],"must_not":[{"must":[)" + a1 + "," + cf + "]}]}", p));
  EXPECT_FALSE(match(R"({"must":[{"must_not":[)" + a1 + "]}]}", p));
  // Constant sub-filters fold: an empty filter is true, so must_not of it matches nothing.
  EXPECT_FALSE(match(R"({"must_not":[{}]})", p));
  EXPECT_TRUE(match(R"({"should":[{},)" + a2 + "]}", p));
  EXPECT_FALSE(match(R"({"should":[{"must_not":[{}]}]})", p));
}

TEST(Filter, SeveralClausesInOneFieldConditionAllApply) {
  const std::string f = cond("x", R"("match":{"any":[1,2,3,10]},"range":{"gte":2})");
  EXPECT_TRUE(match(f, R"({"x":3})"));
  EXPECT_FALSE(match(f, R"({"x":1})"));       // matches any, fails range
  EXPECT_FALSE(match(f, R"({"x":2.5})"));     // passes range, fails any
  EXPECT_TRUE(match(f, R"({"x":[1,2.5]})"));  // each clause by its own element
  EXPECT_TRUE(match(cond("x", R"("range":{"gt":0},"values_count":{"lte":1},"match":null)"), R"({"x":1})"));
  EXPECT_FALSE(match(cond("x", R"("range":{"gt":0},"values_count":{"lte":1})"), R"({"x":[1,2]})"));
}

TEST(Filter, NestedMatchesWithinOneElement) {
  // Qdrant's example: flat conditions may be met by different elements, nested ones by one.
  const std::string p = R"({"diet":[{"food":"meat","likes":false},{"food":"vegan","likes":true}]})";
  const std::string flat = R"({"must":[{"key":"diet[].food","match":{"value":"meat"}},
                                       {"key":"diet[].likes","match":{"value":true}}]})";
  const std::string nested = R"({"must":[{"nested":{"key":"diet","filter":{"must":[
        {"key":"food","match":{"value":"meat"}},{"key":"likes","match":{"value":true}}]}}}]})";
  EXPECT_TRUE(match(flat, p));
  EXPECT_FALSE(match(nested, p));
  EXPECT_TRUE(match(nested, R"({"diet":[{"food":"fish","likes":true},{"food":"meat","likes":true}]})"));
  EXPECT_TRUE(
      match(R"({"must":{"nested":{"key":"diet[]","filter":{"must":{"key":"food","match":{"value":"vegan"}}}}}})", p));
  EXPECT_FALSE(match(nested, R"({"diet":{"food":"meat","likes":true}})"));  // not an array
  EXPECT_FALSE(match(nested, "{}"));
  // must_not inside nested is per element; is_empty inside sees the element.
  EXPECT_TRUE(match(
      R"({"must":[{"nested":{"key":"diet","filter":{"must_not":[{"key":"likes","match":{"value":true}}]}}}]})", p));
  EXPECT_TRUE(match(R"({"must":[{"nested":{"key":"d","filter":{"must":[{"is_empty":{"key":"x"}}]}}}]})",
                    R"({"d":[{"x":[1]},{"y":1}]})"));
}

TEST(Filter, ParseErrorsNameThePath) {
  struct Case {
    const char* filter;
    const char* message;  // the whole InvalidArgument message
  };
  const Case cases[] = {
      {R"(5)", "filter: expected a filter object"},
      {R"({"must":5})", "filter.must: expected an array of conditions"},
      {R"({"must":[1]})", "filter.must[0]: expected a condition object"},
      {R"({"musts":[]})", "filter: unknown field 'musts'; expected must, should, must_not or min_should"},
      {R"({"must":[{"key":"a","match":{"value":1}},{"key":"a","range":{"gt":"5"}}]})",
       "filter.must[1].range.gt: expected a number, or an RFC 3339 date-time such as \"2023-02-08T10:49:00Z\""},
      {R"({"must":[{"key":"a","range":{}}]})", "filter.must[0].range: needs at least one of gt, gte, lt, lte"},
      {R"({"must":[{"key":"a","range":{"gt":null}}]})", "filter.must[0].range: needs at least one of gt, gte, lt, lte"},
      {R"({"must":[{"key":"a","range":{"above":1}}]})",
       "filter.must[0].range: unknown field 'above'; expected gt, gte, lt or lte"},
      {R"({"must":[{"key":"a","match":{"value":1.5}}]})",
       "filter.must[0].match.value: expected a string, an integer or a bool"},
      {R"({"must":[{"key":"a","match":{"value":null}}]})",
       "filter.must[0].match.value: expected a string, an integer or a bool"},
      {R"({"must":[{"key":"a","match":{"value":{"x":1}}}]})",
       "filter.must[0].match.value: expected a string, an integer or a bool"},
      {R"({"must":[{"key":"a","match":{"value":18446744073709551615}}]})",
       "filter.must[0].match.value: integer out of the int64 range"},
      {R"({"must":[{"key":"a","match":{"value":1,"any":[1]}}]})",
       "filter.must[0].match: expected an object with one of value, any, except, text, text_any, phrase, prefix"},
      {R"({"must":[{"key":"a","match":{"like":"x"}}]})",
       "filter.must[0].match: unknown match 'like'; expected one of value, any, except, text, text_any, phrase, "
       "prefix"},
      {R"({"must":[{"key":"a","match":{"any":["x",1]}}]})", "filter.must[0].match.any[1]: mixes strings and integers"},
      {R"({"must":[{"key":"a","match":{"except":[1,1.5]}}]})", "filter.must[0].match.except[1]: expected an integer"},
      {R"({"must":[{"key":"a","match":{"any":[true]}}]})",
       "filter.must[0].match.any[0]: expected a string or an integer"},
      {R"({"must":[{"key":"a","match":{"any":"x"}}]})",
       "filter.must[0].match.any: expected an array of strings or of integers"},
      {R"({"must":[{"key":"a","match":{"text":5}}]})", "filter.must[0].match.text: expected a string"},
      {R"({"must":[{"key":"","match":{"value":1}}]})", "filter.must[0].key: empty key"},
      {R"({"must":[{"key":5,"match":{"value":1}}]})", "filter.must[0].key: expected a string"},
      {R"({"must":[{"key":"a..b","match":{"value":1}}]})",
       "filter.must[0].key: invalid key 'a..b' at character 2: expected a key name"},
      {R"({"must":[{"key":"a[x]","match":{"value":1}}]})",
       "filter.must[0].key: invalid key 'a[x]' at character 1: expected [] or [index]"},
      {R"({"must":[{"key":"a.","match":{"value":1}}]})",
       "filter.must[0].key: invalid key 'a.' at character 2: expected a key name"},
      {R"({"must":[{"key":"a"}]})",
       "filter.must[0]: a field condition needs one of match, range, values_count, is_empty, is_null"},
      {R"({"must":[{"key":"a","match":{"value":1},"colour":"red"}]})",
       "filter.must[0]: unknown field 'colour' in a field condition"},
      {R"({"must":[{"key":"a","geo_radius":{}}]})", "filter.must[0].geo_radius: geo conditions are not supported"},
      {R"({"must":[{"key":"a","is_empty":"yes"}]})", "filter.must[0].is_empty: expected a bool"},
      {R"({"must":[{"key":"a","values_count":{"gt":-1}}]})",
       "filter.must[0].values_count.gt: expected a non-negative integer"},
      {R"({"must":[{"key":"a","values_count":{"gt":1.5}}]})",
       "filter.must[0].values_count.gt: expected a non-negative integer"},
      {R"({"should":[{"is_empty":{"key":"a","extra":1}}]})",
       "filter.should[0].is_empty: unknown field 'extra'; expected only key"},
      {R"({"should":[{"is_null":"a"}]})", "filter.should[0].is_null: expected an object with a key"},
      {R"({"must_not":[{"has_id":[1,-2]}]})",
       "filter.must_not[0].has_id[1]: point id -2 is negative; ids are unsigned integers or UUIDs"},
      {R"({"must_not":[{"has_id":["12"]}]})",
       "filter.must_not[0].has_id[0]: point id '12' is not a UUID (expected 8-4-4-4-12 hex digits)"},
      {R"({"must_not":[{"has_id":1}]})", "filter.must_not[0].has_id: expected an array of point ids"},
      {R"({"must":[{"has_vector":"v"}]})", "filter.must[0]: has_vector conditions are not supported"},
      {R"({"must":[{"foo":1}]})",
       "filter.must[0]: unknown condition field 'foo'; expected a field condition (with \"key\"), is_empty, "
       "is_null, has_id, nested, or a filter (must, should, must_not, min_should)"},
      {R"({"must":[{"should":[{"must":[{"key":"a","range":{"lt":[]}}]}]}]})",
       "filter.must[0].should[0].must[0].range.lt: expected a number"},
      {R"({"must":{"key":"a","range":{"lt":"x"}}})",
       "filter.must.range.lt: expected a number, or an RFC 3339 date-time such as \"2023-02-08T10:49:00Z\""},
      {R"({"must":{"key":"a","range":{"gt":"2023-01-01","lt":5}}})",
       "filter.must.range.lt: expected an RFC 3339 date-time string, as the other bounds"},
      {R"({"min_should":{"conditions":[],"min_count":0}})", "filter.min_should.min_count: expected an integer >= 1"},
      {R"({"min_should":{"conditions":[]}})", "filter.min_should: missing min_count"},
      {R"({"min_should":{"conditions":[{"key":"a"}],"min_count":1}})",
       "filter.min_should.conditions[0]: a field condition needs one of match, range, values_count, is_empty, "
       "is_null"},
      {R"({"must":[{"nested":{"key":"d","filter":{"must":[{"has_id":[1]}]}}}]})",
       "filter.must[0].nested.filter.must[0].has_id: has_id is not supported inside a nested filter"},
      {R"({"must":[{"nested":{"key":"d"}}]})", "filter.must[0].nested: missing filter"},
      {R"({"must":[{"nested":{"key":"d","filter":[]}}]})", "filter.must[0].nested.filter: expected a filter object"},
  };
  for (const Case& c : cases) {
    const auto f = Filter::parse(json::parse(c.filter));
    ASSERT_FALSE(f.is_ok()) << c.filter;
    EXPECT_EQ(f.status().code(), StatusCode::kInvalidArgument) << c.filter;
    EXPECT_EQ(f.status().message(), c.message) << c.filter;
  }
}

TEST(Filter, RejectsFiltersNestedTooDeeply) {
  json f = json::object();
  for (int i = 0; i < 100; ++i) f = json{{"must", json::array({f})}};
  const auto r = Filter::parse(f);
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("nest deeper than"), std::string::npos) << r.status().message();
  json ok = json::object();
  for (int i = 0; i < 30; ++i)
    ok = json{{"must", json::array({ok, json::parse(R"({"key":"a","match":{"value":1}})")})}};
  const auto r2 = Filter::parse(ok);
  ASSERT_TRUE(r2.is_ok()) << r2.status().to_string();
  const json a1 = {{"a", 1}};
  const json a2 = {{"a", 2}};
  EXPECT_TRUE(r2->matches(PointId::number(0), &a1));
  EXPECT_FALSE(r2->matches(PointId::number(0), &a2));
}

// ---- randomized comparison against a reference evaluator ----------------------------------------

/// A direct, unoptimised reading of the documented semantics, written against the JSON filter:
/// it collects the values a key reaches into a vector, then tests them.
namespace reference {

struct Token {
  enum Kind { kKey, kEach, kIndex } kind;
  std::string key;
  std::size_t index = 0;
};

/// Only the key forms the generator produces: name(.name)* with [] or [n] suffixes.
std::vector<Token> tokens(const std::string& key) {
  std::vector<Token> out;
  std::string name;
  for (std::size_t i = 0; i < key.size(); ++i) {
    const char c = key[i];
    if (c == '.' || c == '[') {
      if (!name.empty()) out.push_back({Token::kKey, name});
      name.clear();
      if (c == '[') {
        const std::size_t close = key.find(']', i);
        if (close == i + 1) {
          out.push_back({Token::kEach, ""});
        } else {
          out.push_back({Token::kIndex, "", std::stoul(key.substr(i + 1, close - i - 1))});
        }
        i = close;
      }
    } else {
      name += c;
    }
  }
  if (!name.empty()) out.push_back({Token::kKey, name});
  return out;
}

void collect(const json& v, const std::vector<Token>& path, std::size_t at, std::vector<json>& out) {
  if (at == path.size()) {
    out.push_back(v);
    return;
  }
  const Token& t = path[at];
  if (t.kind == Token::kKey) {
    if (v.is_object() && v.contains(t.key)) collect(v.at(t.key), path, at + 1, out);
    if (v.is_array()) {
      for (const json& e : v) collect(e, path, at, out);
    }
  } else if (v.is_array()) {
    if (t.kind == Token::kEach) {
      for (const json& e : v) collect(e, path, at + 1, out);
    } else if (t.index < v.size()) {
      collect(v[t.index], path, at + 1, out);
    }
  }
}

std::vector<json> values(const json& payload, const std::string& key) {
  std::vector<json> out;
  collect(payload, tokens(key), 0, out);
  return out;
}

bool is_int(const json& v) { return v.is_number_integer(); }
bool same_int(const json& a, const json& b) { return is_int(a) && is_int(b) && a.dump() == b.dump(); }

bool in_list(const json& list, const json& x) {
  for (const json& e : list) {
    if (e.is_string() ? (x.is_string() && x == e) : same_int(x, e)) return true;
  }
  return false;
}

/// One value (not an array of the payload) against a "match" or "range" clause.
bool passes(const std::string& clause, const json& spec, const json& x) {
  if (clause == "range") {
    if (!x.is_number()) return false;
    const double v = x.get<double>();
    if (spec.contains("gt") && !(v > spec["gt"].get<double>())) return false;
    if (spec.contains("gte") && !(v >= spec["gte"].get<double>())) return false;
    if (spec.contains("lt") && !(v < spec["lt"].get<double>())) return false;
    if (spec.contains("lte") && !(v <= spec["lte"].get<double>())) return false;
    return true;
  }
  if (spec.contains("value")) {
    const json& want = spec["value"];
    if (want.is_string()) return x.is_string() && x == want;
    if (want.is_boolean()) return x.is_boolean() && x == want;
    return same_int(x, want);
  }
  if (spec.contains("any")) return in_list(spec["any"], x);
  if (spec.contains("except")) {
    if (x.is_null()) return false;
    const json& list = spec["except"];
    const bool strings = list.empty() || list[0].is_string();
    if (strings ? !x.is_string() : !is_int(x)) return true;
    return !in_list(list, x);
  }
  if (!x.is_string()) return false;
  const std::string s = x.get<std::string>();
  if (spec.contains("text")) return s.find(spec["text"].get<std::string>()) != std::string::npos;
  if (spec.contains("prefix")) return s.rfind(spec["prefix"].get<std::string>(), 0) == 0;
  if (spec.contains("text_any")) {
    std::string word;
    const std::string text = spec["text_any"].get<std::string>() + " ";
    for (const char c : text) {
      if (c != ' ') {
        word += c;
      } else if (!word.empty()) {
        if (s.find(word) != std::string::npos) return true;
        word.clear();
      }
    }
    return false;
  }
  ADD_FAILURE() << "reference: unexpected match " << spec.dump();
  return false;
}

bool field(const json& c, const json& payload) {
  const std::vector<json> vals = values(payload, c["key"].get<std::string>());
  for (const auto& [clause, spec] : c.items()) {
    if (clause == "key") continue;
    bool ok = false;
    if (clause == "match" || clause == "range") {
      for (const json& v : vals) {
        if (v.is_array()) {
          for (const json& e : v) ok = ok || passes(clause, spec, e);
        } else {
          ok = ok || passes(clause, spec, v);
        }
      }
    } else if (clause == "values_count") {
      std::uint64_t n = 0;
      for (const json& v : vals) n += v.is_array() ? v.size() : v.is_null() ? 0 : 1;
      ok = true;
      if (spec.contains("gt")) ok = ok && n > spec["gt"].get<std::uint64_t>();
      if (spec.contains("gte")) ok = ok && n >= spec["gte"].get<std::uint64_t>();
      if (spec.contains("lt")) ok = ok && n < spec["lt"].get<std::uint64_t>();
      if (spec.contains("lte")) ok = ok && n <= spec["lte"].get<std::uint64_t>();
    } else if (clause == "is_empty") {
      const bool want = spec.get<bool>();
      if (vals.empty()) ok = want;
      for (const json& v : vals) ok = ok || ((v.is_null() || v == json::array()) == want);
    } else if (clause == "is_null") {
      const bool want = spec.get<bool>();
      if (vals.empty()) ok = !want;
      for (const json& v : vals) {
        bool null = v.is_null();
        if (v.is_array()) {
          for (const json& e : v) null = null || e.is_null();
        }
        ok = ok || (null == want);
      }
    } else {
      ADD_FAILURE() << "reference: unexpected clause " << clause;
    }
    if (!ok) return false;
  }
  return true;
}

bool filter(const json& f, const json& payload, std::uint64_t id);

bool condition(const json& c, const json& payload, std::uint64_t id) {
  if (c.contains("key")) return field(c, payload);
  if (c.contains("is_empty")) {
    for (const json& v : values(payload, c["is_empty"]["key"].get<std::string>())) {
      if (!(v.is_null() || v == json::array())) return false;
    }
    return true;
  }
  if (c.contains("is_null")) {
    for (const json& v : values(payload, c["is_null"]["key"].get<std::string>())) {
      if (v.is_null()) return true;
    }
    return false;
  }
  if (c.contains("has_id")) {
    for (const json& v : c["has_id"]) {
      if (v.is_number() && v.get<std::uint64_t>() == id) return true;
    }
    return false;
  }
  if (c.contains("nested")) {
    std::string key = c["nested"]["key"].get<std::string>();
    if (key.size() < 2 || key.substr(key.size() - 2) != "[]") key += "[]";
    for (const json& v : values(payload, key)) {
      if (v.is_object() && filter(c["nested"]["filter"], v, id)) return true;
    }
    return false;
  }
  return filter(c, payload, id);
}

std::vector<json> as_list(const json& f, const char* name) {
  if (!f.contains(name) || f[name].is_null()) return {};
  if (f[name].is_object()) return {f[name]};
  return f[name].get<std::vector<json>>();
}

bool filter(const json& f, const json& payload, std::uint64_t id) {
  for (const json& c : as_list(f, "must")) {
    if (!condition(c, payload, id)) return false;
  }
  for (const json& c : as_list(f, "must_not")) {
    if (condition(c, payload, id)) return false;
  }
  const std::vector<json> should = as_list(f, "should");
  if (!should.empty() &&
      std::none_of(should.begin(), should.end(), [&](const json& c) { return condition(c, payload, id); })) {
    return false;
  }
  if (f.contains("min_should")) {
    std::uint64_t hits = 0;
    for (const json& c : f["min_should"]["conditions"]) hits += condition(c, payload, id) ? 1 : 0;
    if (hits < f["min_should"]["min_count"].get<std::uint64_t>()) return false;
  }
  return true;
}

}  // namespace reference

class RandomJson {
 public:
  explicit RandomJson(std::uint32_t seed) : rng_(seed) {}

  int below(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<std::size_t>(below(static_cast<int>(v.size())))];
  }

  json scalar() {
    switch (below(9)) {
      case 0:
      case 1:
      case 2:
        return below(9) - 3;  // -3..5
      case 3:
        return pick(std::vector<double>{-1.5, 0.0, 1.0, 2.5, 3.0});
      case 4:
      case 5:
        return pick(kWords);
      case 6:
        return chance(0.5);
      case 7:
        return nullptr;
      default:
        return json::parse(pick(std::vector<std::string>{"18446744073709551615", "-9223372036854775808", "4"}));
    }
  }

  json value(int depth) {
    const int kind = below(10);
    if (depth <= 0 || kind < 6) return scalar();
    if (kind < 9) {  // arrays: of scalars, of objects, occasionally nested
      json a = json::array();
      const int n = below(4);
      const bool objects = chance(0.4);
      for (int i = 0; i < n; ++i) a.push_back(objects ? object(depth - 1) : chance(0.15) ? value(depth - 1) : scalar());
      return a;
    }
    return object(depth - 1);
  }

  json object(int depth) {
    json o = json::object();
    for (const std::string& key : kKeys) {
      if (chance(0.7)) o[key] = value(depth);
    }
    return o;
  }

  // ---- filters ----

  std::string key(bool inner) {
    static const std::vector<std::string> kTop = {
        "a",     "b",       "n",         "s",      "o.a",      "o.n", "o.s",   "o.b",           "arr",   "arr[].a",
        "arr.a", "arr[].n", "o.arr[].s", "arr[0]", "arr[1].a", "o",   "o.o.a", "arr[].arr[].n", "arr[]", "zz"};
    static const std::vector<std::string> kInner = {"a", "b", "n", "s", "o.a", "arr", "arr[].a", "zz"};
    return pick(inner ? kInner : kTop);
  }

  json word_list() {
    json l = json::array();
    for (int i = 1 + below(3); i > 0; --i) l.push_back(pick(kWords));
    return l;
  }
  json int_list() {
    json l = json::array();
    for (int i = 1 + below(3); i > 0; --i) l.push_back(below(9) - 3);
    return l;
  }

  json bounds(bool integers) {
    // One or two bounds: a lower one, an upper one, or both.
    auto bound = [&] {
      if (integers) return json(below(4));
      return chance(0.5) ? json(below(9) - 3) : json(pick(std::vector<double>{-1.5, 0.5, 1.0, 2.5}));
    };
    json b = json::object();
    const int which = below(3);
    json low = bound();
    json high = bound();
    if (high.get<double>() < low.get<double>()) std::swap(low, high);  // mostly satisfiable
    if (which != 1) b[chance(0.5) ? "gt" : "gte"] = low;
    if (which != 0) b[chance(0.5) ? "lt" : "lte"] = (which == 1 && chance(0.5)) ? low : high;
    return b;
  }

  json match() {
    switch (below(9)) {
      case 0:
        return {{"value", pick(kWords)}};
      case 1:
        return {{"value", below(9) - 3}};
      case 2:
        return {{"value", chance(0.5)}};
      case 3:
        return {{"any", chance(0.5) ? word_list() : int_list()}};
      case 4:
        return {{"except", chance(0.5) ? word_list() : int_list()}};
      case 5:
        return {{"text", pick(std::vector<std::string>{"x", "y", "o w", "hello", "z"})}};
      case 6:
        return {{"text_any", pick(std::vector<std::string>{"x q", "world", "  yz ", "q"})}};
      case 7:
        return {{"prefix", pick(std::vector<std::string>{"x", "he", "", "y"})}};
      default:
        return {{"value", 4}};
    }
  }

  json condition(int depth, bool inner) {
    const int kind = below(depth > 0 ? 15 : 13);
    json c;
    switch (kind) {
      case 0:
      case 1:
      case 2:
      case 3:
        c = {{"key", key(inner)}, {"match", match()}};
        break;
      case 4:
      case 5:
        c = {{"key", key(inner)}, {"range", bounds(false)}};
        break;
      case 6:
        c = {{"key", key(inner)}, {"values_count", bounds(true)}};
        break;
      case 7:
        c = {{"is_empty", {{"key", key(inner)}}}};
        break;
      case 8:
        c = {{"is_null", {{"key", key(inner)}}}};
        break;
      case 9:
        c = {{"key", key(inner)}, {chance(0.5) ? "is_empty" : "is_null", chance(0.5)}};
        break;
      case 10:
        c = {{"key", key(inner)}, {"match", match()}, {"range", bounds(false)}};
        break;
      case 11:
        if (!inner) {
          json ids = json::array();
          for (int i = below(40); i > 0; --i) ids.push_back(below(static_cast<int>(kPoints) + 10));
          c = {{"has_id", ids}};
          break;
        }
        [[fallthrough]];
      case 12:
        c = {{"key", key(inner)}, {"match", {{"any", word_list()}}}};
        break;
      case 13:
        c = filter(depth - 1, inner);
        break;
      default:
        c = {{"nested",
              {{"key", pick(std::vector<std::string>{"arr", "o.arr", "arr[]", "arr[].arr"})},
               {"filter", filter(depth - 1, /*inner=*/true)}}}};
        break;
    }
    return c;
  }

  json condition_list(int depth, bool inner, int max) {
    json l = json::array();
    for (int i = 1 + below(max); i > 0; --i) l.push_back(condition(depth, inner));
    if (l.size() == 1 && chance(0.3)) return l[0];  // the single-object form
    return l;
  }

  json filter(int depth, bool inner) {
    json f = json::object();
    if (chance(0.6)) f["must"] = condition_list(depth, inner, 2);
    if (chance(0.4)) f["should"] = condition_list(depth, inner, 3);
    if (chance(0.3)) f["must_not"] = condition_list(depth, inner, 1);
    if (chance(0.1)) {
      json conditions = json::array();
      for (int i = 1 + below(3); i > 0; --i) conditions.push_back(condition(depth, inner));
      f["min_should"] = {{"conditions", conditions}, {"min_count", 1 + below(static_cast<int>(conditions.size()))}};
    }
    if (f.empty() && chance(0.9)) f["must"] = condition_list(depth, inner, 1);
    return f;
  }

  static constexpr std::size_t kPoints = 2000;

 private:
  const std::vector<std::string> kKeys = {"a", "b", "n", "s", "o", "arr"};
  const std::vector<std::string> kWords = {"x", "y", "xy", "yz", "", "1", "hello world"};
  std::mt19937 rng_;
};

TEST(Filter, RandomFiltersAgreeWithReferenceEvaluator) {
  RandomJson gen(20240611);
  std::vector<json> payloads;
  for (std::size_t i = 0; i < RandomJson::kPoints; ++i) {
    payloads.push_back(gen.chance(0.03) ? json(nullptr) : gen.object(3));
  }
  constexpr int kFilters = 200;
  int selective = 0;  // filters that match some points but not all
  std::size_t total_matches = 0;
  for (int fi = 0; fi < kFilters; ++fi) {
    const json spec = gen.filter(2, /*inner=*/false);
    const auto parsed = Filter::parse(spec);
    ASSERT_TRUE(parsed.is_ok()) << spec.dump() << " -> " << parsed.status().to_string();
    const Filter& f = *parsed;
    const std::vector<PointId>* ids = f.required_ids();
    std::size_t matched = 0;
    for (std::size_t i = 0; i < payloads.size(); ++i) {
      const json* payload = payloads[i].is_null() ? nullptr : &payloads[i];
      const bool got = f.matches(PointId::number(i), payload);
      const bool want = reference::filter(spec, payload ? *payload : json::object(), i);
      ASSERT_EQ(got, want) << "filter " << fi << ": " << spec.dump() << "\npayload " << i << ": " << payloads[i].dump();
      if (got && ids != nullptr) {
        ASSERT_TRUE(std::binary_search(ids->begin(), ids->end(), PointId::number(i)))
            << "required_ids misses a matching point: " << spec.dump();
      }
      matched += got ? 1 : 0;
    }
    if (f.matches_all()) {
      EXPECT_EQ(matched, payloads.size()) << spec.dump();
    }
    selective += (matched > 0 && matched < payloads.size()) ? 1 : 0;
    total_matches += matched;
  }
  // The comparison is only meaningful when the random filters actually discriminate.
  EXPECT_GT(selective, kFilters / 2);
  EXPECT_GT(total_matches, RandomJson::kPoints * kFilters / 20);
  EXPECT_LT(total_matches, RandomJson::kPoints * kFilters * 19 / 20);
}

// ---- evaluation properties ----------------------------------------------------------------------

TEST(Filter, MatchesDoesNotAllocate) {
#if !VECSTASH_FILTER_TEST_COUNT_ALLOCATIONS
  GTEST_SKIP() << "allocation counting is off under sanitizers";
#else
  const Filter f = parse_ok(R"({
    "must": [{"key": "o.arr[].s", "match": {"any": ["x", "y", "z"]}},
             {"key": "arr.a", "range": {"gte": 0}, "values_count": {"lt": 5}}],
    "should": [{"nested": {"key": "arr", "filter": {"must": {"key": "n", "match": {"except": [1, 2]}}}}},
               {"is_empty": {"key": "zz"}}, {"key": "s", "match": {"text_any": "hello there"}}],
    "must_not": [{"is_null": {"key": "b"}}, {"has_id": [5, 7]}],
    "min_should": {"conditions": [{"key": "a", "is_null": false}, {"key": "n", "match": {"value": 3}}], "min_count": 1}
  })");
  RandomJson gen(7);
  std::vector<json> payloads;
  for (int i = 0; i < 500; ++i) payloads.push_back(gen.object(3));
  std::size_t matched = 0;
  const std::uint64_t before = g_allocations.load();
  for (std::size_t i = 0; i < payloads.size(); ++i) matched += f.matches(PointId::number(i), &payloads[i]) ? 1 : 0;
  const std::uint64_t after = g_allocations.load();
  EXPECT_EQ(after - before, 0u);
  RecordProperty("matched", static_cast<int>(matched));
#endif
}

TEST(Filter, SharedAcrossThreads) {
  const Filter f =
      parse_ok(R"({"must":[{"key":"n","range":{"gte":0}}],"must_not":[{"key":"s","match":{"value":"x"}}]})");
  RandomJson gen(99);
  std::vector<json> payloads;
  for (int i = 0; i < 2000; ++i) payloads.push_back(gen.object(2));
  std::vector<char> expected;
  for (std::size_t i = 0; i < payloads.size(); ++i) expected.push_back(f.matches(PointId::number(i), &payloads[i]));
  std::atomic<int> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, copy = f] {  // copies share the compiled program
      for (int round = 0; round < 5; ++round) {
        for (std::size_t i = 0; i < payloads.size(); ++i) {
          if (copy.matches(PointId::number(i), &payloads[i]) != static_cast<bool>(expected[i])) ++mismatches;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(std::count(expected.begin(), expected.end(), 1), 0);
  EXPECT_GT(std::count(expected.begin(), expected.end(), 0), 0);
}

}  // namespace
}  // namespace vecstash::engine
