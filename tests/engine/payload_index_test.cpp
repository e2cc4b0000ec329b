// Payload indexes: each field type against a brute-force reference, the date-time parser and the
// tokenizer, and collections with indexes answering exactly as the same collection without them
// (count, filtered search, scroll, delete by filter), through writes, payload changes, compaction,
// index removal and restarts.
#include "payload_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "testing/random_data.h"
#include "testing/temp_dir.h"
#include "vecstash/engine/engine.h"
#include "vecstash/engine/filter.h"

namespace vecstash::engine {
namespace {

using nlohmann::json;
using testing::Matrix;
using testing::TempDir;

const char* const kWords[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"};

// Varied payloads: single values, arrays, missing keys, wrong types, nested objects.
json random_payload(std::mt19937_64& rng, std::size_t i) {
  json p = json::object();
  const auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
  if (pick(10) < 9) p["color"] = std::string(kWords[pick(8)]);
  if (pick(10) == 0) p["color"] = json::array({kWords[pick(8)], kWords[pick(8)]});
  if (pick(20) == 0) p["color"] = 5;  // a number where strings are expected
  if (pick(10) < 8) p["year"] = 1990 + static_cast<int>(pick(35));
  if (pick(30) == 0) p["year"] = 2001.5;  // a float in an integer field
  if (pick(10) < 8) p["score"] = static_cast<double>(pick(1000)) / 10.0;
  if (pick(10) < 7) p["ok"] = pick(2) == 0;
  if (pick(10) < 6) {
    char day[32];
    std::snprintf(day, sizeof day, "2023-%02zu-%02zuT%02zu:00:00Z", 1 + pick(12), 1 + pick(28), pick(24));
    p["when"] = day;
  }
  if (pick(10) < 7) {
    p["title"] = std::string(kWords[pick(8)]) + " and " + kWords[pick(8)] + ", part " + std::to_string(i % 13);
  }
  if (pick(10) < 5) p["meta"] = {{"source", kWords[pick(4)]}, {"tags", json::array({kWords[pick(8)]})}};
  if (pick(4) == 0) {
    char uuid[40];
    std::snprintf(uuid, sizeof uuid, "%08zx-0000-4000-8000-%012zx", pick(3), pick(5));
    p["ref"] = pick(10) == 0 ? json("not-a-uuid") : json(uuid);
  }
  return p;
}

// Filters over the indexed fields, alone and combined (must, should, must_not, min_should, nested).
std::vector<json> filters() {
  return {
      json::parse(R"({"must":[{"key":"color","match":{"value":"beta"}}]})"),
      json::parse(R"({"must":[{"key":"color","match":{"any":["beta","eta","nope"]}}]})"),
      json::parse(R"({"must":[{"key":"color","match":{"except":["beta","eta"]}}]})"),
      json::parse(R"({"must":[{"key":"year","match":{"value":2001}}]})"),
      json::parse(R"({"must":[{"key":"year","match":{"any":[1995,2010,2020]}}]})"),
      json::parse(R"({"must":[{"key":"year","range":{"gte":2000,"lt":2005}}]})"),
      json::parse(R"({"must":[{"key":"year","range":{"gt":2001.2}}]})"),
      json::parse(R"({"must":[{"key":"score","range":{"gt":10,"lte":35.5}}]})"),
      json::parse(R"({"must":[{"key":"score","range":{"gt":99.9}}]})"),
      json::parse(R"({"must":[{"key":"ok","match":{"value":true}}]})"),
      json::parse(R"({"must":[{"key":"when","range":{"gte":"2023-03-01T00:00:00Z","lt":"2023-06-01"}}]})"),
      json::parse(R"({"must":[{"key":"when","range":{"gt":"2023-07-04T05:00:00+02:00"}}]})"),
      json::parse(R"({"must":[{"key":"title","match":{"text":"Alpha GAMMA"}}]})"),
      json::parse(R"({"must":[{"key":"title","match":{"text_any":"zeta theta"}}]})"),
      json::parse(R"({"must":[{"key":"title","match":{"phrase":"and beta"}}]})"),
      json::parse(R"({"must":[{"key":"meta.source","match":{"value":"gamma"}}]})"),
      json::parse(R"({"must":[{"key":"meta.tags[]","match":{"value":"delta"}}]})"),
      json::parse(R"({"must":[{"key":"ref","match":{"value":"00000001-0000-4000-8000-000000000002"}}]})"),
      json::parse(R"({"must":[{"key":"color","match":{"value":"beta"}},{"key":"year","range":{"lt":2000}}]})"),
      json::parse(R"({"should":[{"key":"color","match":{"value":"beta"}},{"key":"ok","match":{"value":false}}]})"),
      json::parse(
          R"({"must":[{"key":"color","match":{"value":"beta"}}],"must_not":[{"key":"ok","match":{"value":true}}]})"),
      json::parse(R"({"must_not":[{"key":"color","match":{"value":"beta"}}]})"),
      json::parse(
          R"({"must":[{"key":"year","range":{"gte":2000}}],"should":[{"key":"meta.source","match":{"value":"alpha"}},{"is_empty":{"key":"meta"}}]})"),
      json::parse(
          R"({"min_should":{"conditions":[{"key":"color","match":{"value":"beta"}},{"key":"ok","match":{"value":true}},{"key":"year","range":{"lt":1995}}],"min_count":2}})"),
      json::parse(
          R"({"must":[{"key":"color","match":{"value":"beta"}},{"has_id":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]}]})"),
      json::parse(R"({"must":[{"key":"color","match":{"value":"beta"}},{"key":"unindexed","match":{"value":1}}]})"),
  };
}

const std::vector<std::pair<std::string, std::string>> kIndexes = {
    {"color", "keyword"}, {"year", "integer"},        {"score", "float"},         {"ok", "bool"}, {"when", "datetime"},
    {"title", "text"},    {"meta.source", "keyword"}, {"meta.tags[]", "keyword"}, {"ref", "uuid"}};

constexpr std::size_t kDim = 8;

CollectionConfig config() {
  CollectionConfig c;
  c.dim = kDim;
  c.metric = Metric::kL2;
  c.codec.kind = CodeKind::kI8;
  c.calibration_sample = 200;
  return c;
}

// Loads the same points (and payload changes, deletes) into every collection given.
void load(std::vector<Collection*> cs, std::size_t n, std::uint64_t seed, std::size_t first_id = 0) {
  std::mt19937_64 rng(seed);
  const Matrix base = testing::clustered_rows(n, kDim, seed, 8, 0.5f, 0.6f);
  std::vector<json> payloads(n);
  std::vector<PointInput> pts(n);
  for (std::size_t i = 0; i < n; ++i) {
    payloads[i] = random_payload(rng, i);
    pts[i] = {PointId::number(first_id + i), {base.row(i), kDim}, payloads[i]};
  }
  for (Collection* c : cs) {
    for (std::size_t b = 0; b < n; b += 250) {
      ASSERT_TRUE(c->upsert({pts.data() + b, std::min<std::size_t>(250, n - b)}).is_ok());
    }
  }
  // Payload changes (merge and overwrite) and deletes.
  std::vector<PointId> changed, gone;
  for (std::size_t i = 0; i < n; i += 17) changed.push_back(PointId::number(first_id + i));
  for (std::size_t i = 5; i < n; i += 23) gone.push_back(PointId::number(first_id + i));
  const json merge = {{"color", "eta"}, {"year", 2002}};
  const json replace = {{"title", "Zeta zeta"}, {"ok", false}};
  for (Collection* c : cs) {
    ASSERT_TRUE(c->set_payload(changed, merge, false).is_ok());
    ASSERT_TRUE(c->set_payload({changed.data(), changed.size() / 2}, replace, true).is_ok());
    ASSERT_TRUE(c->erase(gone).is_ok());
  }
}

std::vector<PointId> ids_of(const std::vector<ScoredPoint>& r) {
  std::vector<PointId> out;
  for (const auto& p : r) out.push_back(p.id);
  return out;
}

// Every filter: the same count, filtered search and scroll on both collections.
void expect_same_answers(const Collection& indexed, const Collection& plain, const std::string& when) {
  const Matrix queries = testing::clustered_rows(4, kDim, 321, 8, 0.5f, 0.6f);
  for (const json& fj : filters()) {
    auto f = Filter::parse(fj);
    ASSERT_TRUE(f.is_ok()) << fj.dump();
    const std::size_t n = plain.count(&*f).value();
    EXPECT_EQ(indexed.count(&*f).value(), n) << when << ": " << fj.dump();
    SearchRequest req;
    req.queries = {queries.data.data(), queries.data.size()};
    req.nq = queries.rows;
    req.limit = 15;
    req.filter = &*f;
    req.exact = true;
    auto a = indexed.search(req);
    auto b = plain.search(req);
    ASSERT_TRUE(a.is_ok() && b.is_ok()) << fj.dump();
    for (std::size_t q = 0; q < queries.rows; ++q) {
      EXPECT_EQ(ids_of((*a)[q]), ids_of((*b)[q])) << when << ": " << fj.dump();
      EXPECT_EQ((*a)[q].size(), std::min<std::size_t>(15, n));
    }
    ScrollRequest sr;
    sr.limit = 40;
    sr.filter = &*f;
    auto sa = indexed.scroll(sr);
    auto sb = plain.scroll(sr);
    ASSERT_TRUE(sa.is_ok() && sb.is_ok());
    ASSERT_EQ(sa->points.size(), sb->points.size()) << fj.dump();
    for (std::size_t i = 0; i < sa->points.size(); ++i) {
      EXPECT_EQ(sa->points[i].id, sb->points[i].id);
      EXPECT_EQ(sa->points[i].payload, sb->points[i].payload);
    }
  }
}

std::unique_ptr<Engine> open_engine(const std::filesystem::path& dir) {
  EngineOptions o;
  o.threads = 2;
  auto e = Engine::open(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

TEST(PayloadIndexes, AnswerAsTheScanDoesThroughWritesRestartsAndCompaction) {
  TempDir dir;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    auto indexed = engine->create_collection("indexed", config());
    auto plain = engine->create_collection("plain", config());
    ASSERT_TRUE(indexed.is_ok() && plain.is_ok());
    load({indexed->get(), plain->get()}, 1500, 1);
    for (const auto& [field, type] : kIndexes) {
      ASSERT_TRUE((*indexed)->create_payload_index(field, type).is_ok()) << field;
    }
    // The text index changes what match text means (tokens instead of substrings): the plain
    // collection gets the same text index so both agree.
    ASSERT_TRUE((*plain)->create_payload_index("title", "text").is_ok());
    expect_same_answers(**indexed, **plain, "indexes built");
    // Full-text matches on the text index compare tokens: every token of the query among the title's.
    ScrollRequest all;
    all.limit = 100000;
    auto everything = (*plain)->scroll(all);
    ASSERT_TRUE(everything.is_ok());
    for (const auto& [query, any] :
         std::vector<std::pair<std::string, bool>>{{"Alpha GAMMA", false}, {"zeta theta", true}}) {
      const std::vector<std::string> want = text_tokens(query, true);
      std::size_t expected = 0;
      for (const Record& r : everything->points) {
        if (!r.payload || !r.payload->contains("title") || !(*r.payload)["title"].is_string()) continue;
        const auto have = text_tokens((*r.payload)["title"].get<std::string>(), true);
        auto present = [&](const std::string& t) { return std::binary_search(have.begin(), have.end(), t); };
        expected +=
            (any ? std::any_of(want.begin(), want.end(), present) : std::all_of(want.begin(), want.end(), present)) ? 1
                                                                                                                    : 0;
      }
      auto f = Filter::parse(
          json{{"must", json::array({json{{"key", "title"}, {"match", {{any ? "text_any" : "text", query}}}}})}});
      ASSERT_TRUE(f.is_ok());
      EXPECT_EQ((*indexed)->count(&*f).value(), expected) << query;
      EXPECT_GT(expected, 0u) << query;
    }
    // Writes after the indexes exist: new points, replacements, payload changes, deletes.
    load({indexed->get(), plain->get()}, 900, 2, 1000);
    expect_same_answers(**indexed, **plain, "after more writes");
    const auto info = (*indexed)->payload_indexes();
    ASSERT_EQ(info.size(), kIndexes.size());
    for (const auto& i : info) {
      auto f = Filter::parse(json{{"must", json::array({json{{"is_empty", {{"key", i.field}}}}})}});
      ASSERT_TRUE(f.is_ok());
      const std::size_t empty = (*plain)->count(&*f).value();
      EXPECT_LE(i.points, (*indexed)->count() - empty + 0) << i.field << " counts only live points with values";
      EXPECT_GT(i.points, 0u) << i.field;
    }
  }
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    auto indexed = engine->collection("indexed");
    auto plain = engine->collection("plain");
    ASSERT_TRUE(indexed.is_ok() && plain.is_ok());
    EXPECT_EQ((*indexed)->payload_indexes().size(), kIndexes.size());
    expect_same_answers(**indexed, **plain, "reopened");
    ASSERT_TRUE((*indexed)->compact().is_ok());
    ASSERT_TRUE((*plain)->compact().is_ok());
    expect_same_answers(**indexed, **plain, "compacted");
    ASSERT_TRUE((*indexed)->drop_payload_index("color").is_ok());
    EXPECT_EQ((*indexed)->drop_payload_index("color").code(), StatusCode::kNotFound);
    expect_same_answers(**indexed, **plain, "color index dropped");
  }
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto indexed = engine->collection("indexed");
  auto plain = engine->collection("plain");
  ASSERT_TRUE(indexed.is_ok() && plain.is_ok());
  EXPECT_EQ((*indexed)->payload_indexes().size(), kIndexes.size() - 1);
  expect_same_answers(**indexed, **plain, "reopened after the drop and compaction");
}

TEST(PayloadIndexes, BadDefinitionsAreRejected) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("c", config());
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ((*c)->create_payload_index("a", "geo").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->create_payload_index("a[", "keyword").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*c)->create_payload_index("", "keyword").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE((*c)->payload_indexes().empty());
  ASSERT_TRUE((*c)->create_payload_index("a", "keyword").is_ok());
  ASSERT_TRUE((*c)->create_payload_index("a", "keyword").is_ok()) << "creating it again changes nothing";
  ASSERT_TRUE((*c)->create_payload_index("a", "integer").is_ok()) << "another type replaces it";
  ASSERT_EQ((*c)->payload_indexes().size(), 1u);
  EXPECT_EQ((*c)->payload_indexes()[0].type, "integer");
}

// ---- the pieces --------------------------------------------------------------------------------------

TEST(PayloadIndexParts, DatetimesAsQdrantAcceptsThem) {
  EXPECT_EQ(parse_datetime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_datetime("1970-01-01"), 0);
  EXPECT_EQ(parse_datetime("1970-01-02 00:00:01"), 86401000000);
  EXPECT_EQ(parse_datetime("2023-02-08T10:49:00Z"), 1675853340000000);
  EXPECT_EQ(parse_datetime("2023-02-08T11:49:00+01:00"), 1675853340000000);
  EXPECT_EQ(parse_datetime("2023-02-08T10:49:00.123456Z"), 1675853340123456);
  EXPECT_EQ(parse_datetime("2023-02-08T10:49:00.1234567Z"), 1675853340123456) << "sub-microseconds dropped";
  EXPECT_EQ(parse_datetime("1969-12-31T23:59:59Z"), -1000000);
  EXPECT_EQ(parse_datetime("2024-02-29T00:00:00Z"), 1709164800000000);
  for (const char* bad : {"", "2023", "2023-13-01", "2023-02-30", "2023-02-29", "2023-02-08T25:00:00Z",
                          "2023-02-08T10:49:00X", "2023-02-08T10:49:00.Z", "08/02/2023", "2023-02-08T10"}) {
    EXPECT_FALSE(parse_datetime(bad).has_value()) << bad;
  }
}

TEST(PayloadIndexParts, TextTokens) {
  EXPECT_EQ(text_tokens("Hello, World! hello-again 42x", false),
            (std::vector<std::string>{"hello", "world", "hello", "again", "42x"}));
  EXPECT_EQ(text_tokens("b a b", true), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(text_tokens("Grüße aus Köln", true), (std::vector<std::string>{"aus", "grüße", "köln"}));
  EXPECT_TRUE(text_tokens(" ,;", true).empty());
}

TEST(PayloadIndexParts, FieldIndexMatchesABruteForceLookupAndSurvivesSerialisationAndRenumbering) {
  std::mt19937_64 rng(9);
  std::vector<json> payloads(2000);
  for (std::size_t i = 0; i < payloads.size(); ++i) payloads[i] = random_payload(rng, i);
  FieldIndex years("year", FieldSchema::kInteger);
  FieldIndex colors("color", FieldSchema::kKeyword);
  for (std::uint32_t r = 0; r < payloads.size(); ++r) {
    years.set(r, payloads[r]);
    colors.set(r, payloads[r]);
  }
  // Rewrite some rows (their old values must go) and forget others.
  for (std::uint32_t r = 0; r < payloads.size(); r += 7) {
    payloads[r] = random_payload(rng, r);
    years.set(r, payloads[r]);
    colors.set(r, payloads[r]);
  }
  auto brute = [&](const std::function<bool(const json&)>& test) {
    RowList rows;
    for (std::uint32_t r = 0; r < payloads.size(); ++r) {
      if (test(payloads[r])) rows.push_back(r);
    }
    return rows;
  };
  auto check = [&](const FieldIndex& y, const FieldIndex& c, const std::string& when) {
    const auto beta = c.match_strings(std::vector<std::string>{"beta"});
    ASSERT_TRUE(beta.has_value());
    EXPECT_EQ(*beta, brute([](const json& p) {
      if (!p.contains("color")) return false;
      const json& v = p["color"];
      if (v.is_array()) return std::find(v.begin(), v.end(), json("beta")) != v.end();
      return v == "beta";
    })) << when;
    // A range over the integer index: the integers in range, plus the rows with floats (to check).
    const auto range = y.range(-INFINITY, 2000, 2005, INFINITY);
    ASSERT_TRUE(range.has_value());
    const RowList exact = brute([](const json& p) {
      return p.contains("year") && p["year"].is_number_integer() && p["year"].get<int>() >= 2000 &&
             p["year"].get<int>() < 2005;
    });
    EXPECT_TRUE(std::includes(range->begin(), range->end(), exact.begin(), exact.end())) << when;
    EXPECT_EQ(range->size(),
              exact.size() + y.uncovered().size() -
                  std::count_if(y.uncovered().begin(), y.uncovered().end(),
                                [&](std::uint32_t r) { return std::binary_search(exact.begin(), exact.end(), r); }))
        << when;
    EXPECT_FALSE(y.match_strings(std::vector<std::string>{"x"}).has_value()) << "an integer index takes no strings";
  };
  check(years, colors, "built");
  std::vector<std::uint8_t> blob_y, blob_c;
  years.serialize(&blob_y);
  colors.serialize(&blob_c);
  auto y2 = FieldIndex::deserialize(blob_y);
  auto c2 = FieldIndex::deserialize(blob_c);
  ASSERT_TRUE(y2.is_ok() && c2.is_ok());
  check(*y2, *c2, "deserialised");
  blob_c[blob_c.size() / 2] ^= 0x40;
  EXPECT_EQ(FieldIndex::deserialize(blob_c).status().code(), StatusCode::kCorruption);
  // Drop every third row and renumber the others densely.
  std::vector<std::uint32_t> old_to_new(payloads.size());
  std::vector<json> kept;
  for (std::uint32_t r = 0; r < payloads.size(); ++r) {
    old_to_new[r] = r % 3 == 0 ? UINT32_MAX : static_cast<std::uint32_t>(kept.size());
    if (r % 3 != 0) kept.push_back(payloads[r]);
  }
  y2->renumber(old_to_new);
  c2->renumber(old_to_new);
  payloads = kept;
  check(*y2, *c2, "renumbered");
}

TEST(PayloadIndexParts, PlannerTakesRowsFromIndexesAndSaysWhenTheyAreExact) {
  std::mt19937_64 rng(4);
  std::vector<json> payloads(500);
  PayloadIndexes indexes;
  indexes.add("color", FieldSchema::kKeyword);
  indexes.add("year", FieldSchema::kInteger);
  indexes.add("ref", FieldSchema::kUuid);
  for (std::uint32_t r = 0; r < payloads.size(); ++r) {
    payloads[r] = random_payload(rng, r);
    indexes.set(r, payloads[r]);
  }
  const auto row_of = [](const PointId& id) -> std::optional<std::uint32_t> {
    return id.lo < 500 ? std::optional<std::uint32_t>(static_cast<std::uint32_t>(id.lo)) : std::nullopt;
  };
  auto plan = [&](const char* text) {
    auto f = Filter::parse(json::parse(text));
    EXPECT_TRUE(f.is_ok()) << text;
    return f->candidates(indexes, row_of);
  };
  auto matching = [&](const char* text) {
    auto f = Filter::parse(json::parse(text));
    RowList rows;
    for (std::uint32_t r = 0; r < payloads.size(); ++r) {
      if (f->matches(PointId::number(r), &payloads[r])) rows.push_back(r);
    }
    return rows;
  };
  for (const char* exact :
       {R"({"must":[{"key":"color","match":{"value":"beta"}}]})",
        R"({"must":[{"key":"color","match":{"any":["beta","zeta"]}},{"key":"year","match":{"value":2001}}]})",
        R"({"should":[{"key":"color","match":{"value":"beta"}},{"has_id":[1,2,3]}]})",
        R"({"must":[{"key":"color","match":{"value":"beta"}}],"must_not":[{"key":"year","match":{"value":2001}}]})"}) {
    const auto c = plan(exact);
    ASSERT_TRUE(c.has_value()) << exact;
    EXPECT_TRUE(c->exact) << exact;
    EXPECT_EQ(c->rows, matching(exact)) << exact;
  }
  // Supersets that need checking: a float in the integer field, a non-UUID string in the uuid field,
  // a condition on a key without an index.
  for (const char* superset :
       {R"({"must":[{"key":"year","range":{"gte":2000,"lte":2003}}]})",
        R"({"must":[{"key":"ref","match":{"value":"00000001-0000-4000-8000-000000000002"}}]})",
        R"({"must":[{"key":"color","match":{"value":"beta"}},{"key":"other","match":{"value":1}}]})"}) {
    const auto c = plan(superset);
    ASSERT_TRUE(c.has_value()) << superset;
    EXPECT_FALSE(c->exact) << superset;
    const RowList want = matching(superset);
    EXPECT_TRUE(std::includes(c->rows.begin(), c->rows.end(), want.begin(), want.end())) << superset;
  }
  // Nothing to narrow with.
  for (const char* none :
       {R"({"must_not":[{"key":"color","match":{"value":"beta"}}]})",
        R"({"must":[{"key":"other","match":{"value":1}}]})",
        R"({"should":[{"key":"color","match":{"value":"beta"}},{"key":"other","match":{"value":1}}]})"}) {
    EXPECT_FALSE(plan(none).has_value()) << none;
  }
}

}  // namespace
}  // namespace vecstash::engine
