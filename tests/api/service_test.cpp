// The REST service without a socket: routing, envelopes, Qdrant shapes, validation (bad input changes
// nothing), auth, limits, metrics, the compression report, anchors and cross-model queries, and the
// server settings.
#include "vecstash/api/service.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>
#include <string>

#include "testing/random_data.h"
#include "testing/temp_dir.h"
#include "vecstash/api/server_config.h"
#include "vecstash/engine/engine.h"

namespace vecstash::api {
namespace {

using json = nlohmann::json;

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override { open({}); }

  void open(ServiceOptions so) {
    service_.reset();
    engine_.reset();
    engine::EngineOptions eo;
    eo.threads = 1;
    eo.pool_threads = 1;
    eo.use_gpu = false;
    eo.sync_writes = false;
    auto e = engine::Engine::open(dir_.path() / "db", eo);
    ASSERT_TRUE(e.is_ok()) << e.status().to_string();
    engine_ = std::move(e).value();
    so.sync_writes = false;
    service_ = std::make_unique<Service>(*engine_, so);
  }

  Response call(Method m, const std::string& target, const json& body = nullptr,
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    return service_->handle(Request::make(m, target, body.is_null() ? std::string() : body.dump(), std::move(headers)));
  }
  /// The `result` of a successful call (fails the test otherwise).
  json ok(Method m, const std::string& target, const json& body = nullptr) {
    const Response r = call(m, target, body);
    EXPECT_EQ(r.status, 200) << to_string(m) << " " << target << ": " << r.body;
    const json j = json::parse(r.body);
    EXPECT_EQ(j.value("status", json()), "ok") << r.body;
    EXPECT_TRUE(j.contains("time") && j["time"].is_number());
    return j["result"];
  }
  /// An error: checks the status and the envelope, returns the message.
  std::string fails(int status, Method m, const std::string& target, const json& body = nullptr,
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    const Response r = call(m, target, body, std::move(headers));
    EXPECT_EQ(r.status, status) << to_string(m) << " " << target << ": " << r.body;
    const json j = json::parse(r.body, nullptr, false);
    EXPECT_TRUE(j.is_object() && j["status"].is_object() && j["status"]["error"].is_string()) << r.body;
    EXPECT_TRUE(j.contains("time"));
    return j.is_object() && j["status"].is_object() ? j["status"].value("error", "") : "";
  }

  void create(const std::string& name, std::size_t dim, const std::string& distance = "Cosine", json extra = {}) {
    json body = {{"vectors", {{"size", dim}, {"distance", distance}}}};
    if (extra.is_object()) body.update(extra);
    EXPECT_EQ(ok(Method::kPut, "/collections/" + name, body), true);
  }

  json points_json(const testing::Matrix& m, std::size_t first_id = 0) {
    json pts = json::array();
    for (std::size_t i = 0; i < m.rows; ++i) {
      pts.push_back(
          {{"id", first_id + i},
           {"vector", std::vector<float>(m.row(i), m.row(i) + m.cols)},
           {"payload", {{"group", static_cast<int>(i % 3)}, {"metadata", {{"source", i % 2 ? "odd" : "even"}}}}}});
    }
    return pts;
  }

  std::size_t count(const std::string& name, const json& filter = nullptr) {
    json body = json::object();
    if (!filter.is_null()) body["filter"] = filter;
    return ok(Method::kPost, "/collections/" + name + "/points/count", body)["count"].get<std::size_t>();
  }

  testing::TempDir dir_{"vecstash-api"};
  std::unique_ptr<engine::Engine> engine_;
  std::unique_ptr<Service> service_;
};

TEST_F(ServiceTest, StorageSettingsAreTakenAndReportedAsQdrantNamesThem) {
  create("disk", 8);  // vecstash's default: originals and payloads on disk
  json info = ok(Method::kGet, "/collections/disk");
  EXPECT_EQ(info["config"]["params"]["vectors"]["on_disk"], true);
  EXPECT_EQ(info["config"]["params"]["on_disk_payload"], true);
  create("ram", 8, "Cosine",
         {{"vectors", {{"size", 8}, {"distance", "Cosine"}, {"on_disk", false}}}, {"on_disk_payload", false}});
  info = ok(Method::kGet, "/collections/ram");
  EXPECT_EQ(info["config"]["params"]["vectors"]["on_disk"], false);
  EXPECT_EQ(info["config"]["params"]["on_disk_payload"], false);
  EXPECT_EQ(info["config"]["vecstash"]["originals_in_ram"], true);
  EXPECT_EQ(info["config"]["vecstash"]["payloads_in_ram"], true);
  EXPECT_TRUE(info["config"]["vecstash"]["state"]["memory_bytes"].contains("payload_index"));
  const json q = {{"scalar", {{"type", "int8"}, {"always_ram", false}}}};
  EXPECT_NE(fails(400, Method::kPut, "/collections/x",
                  json{{"vectors", {{"size", 8}, {"distance", "Cosine"}}}, {"quantization_config", q}})
                .find("always_ram false is not supported"),
            std::string::npos);
  EXPECT_NE(fails(400, Method::kPut, "/collections/x",
                  json{{"vectors", {{"size", 8}, {"distance", "Cosine"}, {"on_disk", "yes"}}}})
                .find("on_disk"),
            std::string::npos);
  EXPECT_NE(fails(400, Method::kPut, "/collections/x",
                  json{{"vectors", {{"size", 8}, {"distance", "Cosine"}, {"on_disk", false}}},
                       {"vecstash", {{"keep_originals", false}}}})
                .find("keep_originals"),
            std::string::npos);
  EXPECT_EQ(ok(Method::kGet, "/collections/x/exists")["exists"], false) << "a refused create leaves nothing";
}

TEST_F(ServiceTest, PayloadIndexesAreBuiltListedUsedAndDropped) {
  create("c", 8, "Cosine", {{"vecstash", {{"calibration_sample", 20}}}});
  ok(Method::kPut, "/collections/c/points?wait=true", json{{"points", points_json(testing::gaussian(60, 8, 3))}});
  ok(Method::kPut, "/collections/c/index", {{"field_name", "metadata.source"}, {"field_schema", "keyword"}});
  ok(Method::kPut, "/collections/c/index",
     {{"field_name", "group"}, {"field_schema", {{"type", "integer"}, {"lookup", true}}}});
  const json schema = ok(Method::kGet, "/collections/c")["payload_schema"];
  EXPECT_EQ(schema["metadata.source"]["data_type"], "keyword");
  EXPECT_EQ(schema["metadata.source"]["points"], 60);
  EXPECT_EQ(schema["group"]["data_type"], "integer");
  EXPECT_EQ(count("c", {{"must", {{{"key", "metadata.source"}, {"match", {{"value", "odd"}}}}}}}), 30u);
  EXPECT_EQ(count("c", {{"must", {{{"key", "group"}, {"range", {{"gte", 1}}}}}}}), 40u);
  EXPECT_NE(
      fails(400, Method::kPut, "/collections/c/index", {{"field_name", "g"}, {"field_schema", "geo"}}).find("geo"),
      std::string::npos);
  EXPECT_NE(fails(400, Method::kPut, "/collections/c/index", {{"field_name", "g"}, {"field_schema", "colour"}})
                .find("field_schema 'colour'"),
            std::string::npos);
  fails(400, Method::kPut, "/collections/c/index", {{"field_name", "g["}, {"field_schema", "keyword"}});
  fails(400, Method::kPut, "/collections/c/index", {{"field_schema", "keyword"}});
  fails(404, Method::kPut, "/collections/none/index", {{"field_name", "g"}, {"field_schema", "keyword"}});
  ok(Method::kDelete, "/collections/c/index/metadata.source");
  ok(Method::kDelete, "/collections/c/index/metadata.source");  // deleting nothing is not an error
  EXPECT_FALSE(ok(Method::kGet, "/collections/c")["payload_schema"].contains("metadata.source"));
  EXPECT_EQ(count("c", {{"must", {{{"key", "metadata.source"}, {"match", {{"value", "odd"}}}}}}}), 30u)
      << "filters scan payloads without the index";
}

TEST_F(ServiceTest, UpsertBodiesAreCheckedBeforeAnythingIsWritten) {
  create("c", 4);
  const std::string target = "/collections/c/points?wait=true";
  auto raw = [&](const std::string& body) {
    const Response r = service_->handle(Request::make(Method::kPut, target, body, {}));
    return std::make_pair(r.status, r.body);
  };
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1e400,2,3,4]}]})").first, 400) << "a number out of range";
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1e39,2,3,4]}]})").first, 400) << "out of the float32 range";
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1,2,3]}]})").first, 400);
  EXPECT_EQ(raw(R"({"points":[{"id":-1,"vector":[1,2,3,4]}]})").first, 400);
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1,2,3,"4"]}]})").first, 400);
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1,2,3,4],"payload":[1]}]})").first, 400);
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1,2,3,4]}],"extra":1})").first, 400);
  EXPECT_EQ(raw(R"({"points":[{"id":1,"vector":[1,2,3,4]}]}  trailing)").first, 400);
  EXPECT_EQ(raw(R"({"batch":{"ids":[1,2],"vectors":[[1,2,3,4]]}})").first, 400);
  EXPECT_EQ(raw("").first, 400);
  // Deep nesting is refused, not followed.
  std::string deep = R"({"points":[{"id":1,"vector":[1,2,3,4],"payload":{"d":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  for (int i = 0; i < 100000; ++i) deep += ']';
  deep += "}}]}";
  EXPECT_EQ(raw(deep).first, 400);
  std::string nested = R"({"points":[{"id":1,"vector":[1,2,3,4],"payload":{"d":)";
  for (int i = 0; i < 200; ++i) nested += '[';
  for (int i = 0; i < 200; ++i) nested += ']';
  nested += "}}]}";
  EXPECT_EQ(raw(nested).first, 400) << "deeper than the payload limit";
  EXPECT_EQ(count("c"), 0u);
  // Both forms, named vectors and UUIDs still go through.
  EXPECT_EQ(
      raw(R"({"points":[{"id":"5c56c793-69f3-4fbf-87e6-c4bf54c28c26","vector":[1,2,3,4],"payload":{"a":{"b":[1,2.5,"x",null,true]}}}]})")
          .first,
      200);
  EXPECT_EQ(
      raw(R"({"batch":{"ids":[7,8],"vectors":[[1,2,3,4],[4,3,2,1]],"payloads":[null,{"k":18446744073709551615}]}})")
          .first,
      200);
  EXPECT_EQ(count("c"), 3u);
  const json p = ok(Method::kPost, "/collections/c/points",
                    {{"ids", {"5c56c793-69f3-4fbf-87e6-c4bf54c28c26", 8}}, {"with_payload", true}});
  EXPECT_EQ(p[0]["payload"], json::parse(R"({"a":{"b":[1,2.5,"x",null,true]}})"));
  EXPECT_EQ(p[1]["payload"]["k"], 18446744073709551615ull);
}

TEST_F(ServiceTest, VersionProbesAndEnvelope) {
  const Response root = call(Method::kGet, "/");
  ASSERT_EQ(root.status, 200);
  const json v = json::parse(root.body);
  EXPECT_EQ(v["version"], std::string(kQdrantCompatVersion));
  EXPECT_FALSE(v.contains("result"));  // no envelope on GET /
  EXPECT_TRUE(v.contains("vecstash_version"));
  for (const char* p : {"/healthz", "/livez", "/readyz"}) {
    const Response r = call(Method::kGet, p);
    EXPECT_EQ(r.status, 200) << p;
    EXPECT_EQ(r.content_type.rfind("text/plain", 0), 0u);
  }
  EXPECT_EQ(ok(Method::kGet, "/collections")["collections"], json::array());
  fails(404, Method::kGet, "/nothing/here");
  const Response r = call(Method::kPatch, "/collections");
  EXPECT_EQ(r.status, 405);
  ASSERT_FALSE(r.headers.empty());
  EXPECT_EQ(r.headers[0].first, "Allow");
  // A POST-only path under a route with a parameter (GET points/{id}) is 405, not "bad id".
  EXPECT_EQ(call(Method::kGet, "/collections/c/points/query").status, 405);
  EXPECT_EQ(call(Method::kGet, "/collections/c/points/scroll").status, 405);
  service_->begin_shutdown();
  EXPECT_EQ(call(Method::kGet, "/readyz").status, 503);
}

TEST_F(ServiceTest, CollectionInfoHasWhatTheClientsRequire) {
  create("plain", 8, "Dot", {{"vecstash", {{"codec", {{"kind", "e4m3"}}}, {"calibration_sample", 50}}}});
  EXPECT_EQ(ok(Method::kPut, "/collections/named",
               json{{"vectors", {{"", {{"size", 8}, {"distance", "Euclid"}}}}}, {"sparse_vectors", json::object()}}),
            true);
  const json info = ok(Method::kGet, "/collections/plain");
  for (const char* k : {"status", "optimizer_status", "segments_count", "payload_schema", "points_count"}) {
    EXPECT_TRUE(info.contains(k)) << k;
  }
  EXPECT_EQ(info["status"], "green");
  const json& cfg = info["config"];
  EXPECT_EQ(cfg["params"]["vectors"], (json{{"size", 8}, {"distance", "Dot"}, {"on_disk", true}}));
  for (const char* k : {"m", "ef_construct", "full_scan_threshold"}) EXPECT_TRUE(cfg["hnsw_config"].contains(k)) << k;
  for (const char* k : {"default_segment_number", "flush_interval_sec"}) {
    EXPECT_TRUE(cfg["optimizer_config"].contains(k)) << k;
  }
  EXPECT_EQ(cfg["vecstash"]["codec"]["kind"], "e4m3");
  EXPECT_EQ(cfg["vecstash"]["calibration_sample"], 50);
  EXPECT_TRUE(cfg["quantization_config"].is_null());  // float8 has no Qdrant equivalent
  EXPECT_FALSE(cfg["params"]["vectors"].contains("vecstash"));

  const json named = ok(Method::kGet, "/collections/named");
  EXPECT_EQ(named["config"]["params"]["vectors"],
            (json{{"", {{"size", 8}, {"distance", "Euclid"}, {"on_disk", true}}}}));
  EXPECT_EQ(ok(Method::kGet, "/collections/named/exists")["exists"], true);
  EXPECT_EQ(ok(Method::kGet, "/collections/absent/exists")["exists"], false);
  const json list = ok(Method::kGet, "/collections")["collections"];
  EXPECT_EQ(list.size(), 2u);

  // Qdrant's own quantization settings map to our codecs; hnsw_config.m to an HNSW index.
  create("sq", 16, "Cosine", {{"quantization_config", {{"scalar", {{"type", "int8"}, {"quantile", 0.99}}}}}});
  const json sq = ok(Method::kGet, "/collections/sq")["config"];
  EXPECT_EQ(sq["vecstash"]["codec"]["kind"], "i8");
  EXPECT_NEAR(sq["vecstash"]["codec"]["int8_clip_percent"].get<double>(), 0.5, 1e-9);
  EXPECT_NEAR(sq["quantization_config"]["scalar"]["quantile"].get<double>(), 0.99, 1e-9);
  create("bq", 64, "Cosine",
         {{"quantization_config", {{"binary", {{"always_ram", true}}}}}, {"hnsw_config", {{"m", 16}}}});
  const json bq = ok(Method::kGet, "/collections/bq")["config"];
  EXPECT_EQ(bq["vecstash"]["codec"]["kind"], "b1");
  EXPECT_EQ(bq["vecstash"]["index"], "BHNSW16");
  EXPECT_EQ(bq["hnsw_config"]["m"], 16);
  EXPECT_EQ(bq["hnsw_config"]["ef_construct"], 40);  // FAISS's default when none is asked for
  create("hq", 16, "Dot", {{"hnsw_config", {{"m", 8}, {"ef_construct", 120}}}});
  const json hq = ok(Method::kGet, "/collections/hq")["config"];
  EXPECT_EQ(hq["vecstash"]["index"], "HNSW8");
  EXPECT_EQ(hq["vecstash"]["hnsw_ef_construction"], 120);
  EXPECT_EQ(hq["hnsw_config"]["ef_construct"], 120);
  EXPECT_TRUE(bq["quantization_config"].contains("binary"));

  EXPECT_EQ(ok(Method::kDelete, "/collections/sq"), true);
  EXPECT_EQ(ok(Method::kDelete, "/collections/sq"), false);
  fails(404, Method::kGet, "/collections/sq");
}

TEST_F(ServiceTest, BadCollectionRequestsAreRejected) {
  auto put = [&](const json& body) { return fails(400, Method::kPut, "/collections/bad", body); };
  EXPECT_NE(put(json{{"vectors", {{"size", 4}, {"distance", "Manhattan"}}}}).find("Manhattan"), std::string::npos);
  put(json{{"vectors", {{"size", 0}, {"distance", "Dot"}}}});
  put(json{{"vectors", {{"size", 70000}, {"distance", "Dot"}}}});
  put(json{{"vectors", {{"size", 4}}}});
  put(json{{"vectors", {{"a", {{"size", 4}, {"distance", "Dot"}}}, {"b", {{"size", 4}, {"distance", "Dot"}}}}}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"sparse_vectors", {{"s", json::object()}}}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"bogus", 1}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"vecstash", {{"codec", {{"kind", "i9"}}}}}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"vecstash", {{"dim", 8}}}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}, {"quantization_config", {{"product", json::object()}}}});
  put(json{{"vectors", {{"size", 4}, {"distance", "Dot"}}},
           {"quantization_config", {{"binary", json::object()}}},
           {"vecstash", {{"codec", {{"kind", "i8"}}}}}});
  fails(400, Method::kPut, "/collections/bad%20name", json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}});
  fails(404, Method::kPut, "/collections/bad%2Fname", json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}});
  EXPECT_EQ(ok(Method::kGet, "/collections")["collections"].size(), 0u);  // nothing was created
  create("dup", 4);
  fails(409, Method::kPut, "/collections/dup", json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}});
}

TEST_F(ServiceTest, QueriesMatchBruteForce) {
  const std::size_t n = 300, d = 16, k = 10;
  testing::Matrix data = testing::gaussian(n, d, 7);
  create("c", d);
  // Half as a list of points, half as a batch.
  json first = points_json(data);
  json pts = json::array(), ids = json::array(), vecs = json::array(), pays = json::array();
  for (std::size_t i = 0; i < n; ++i) {
    if (i < n / 2) {
      pts.push_back(first[i]);
    } else {
      ids.push_back(first[i]["id"]);
      vecs.push_back(first[i]["vector"]);
      pays.push_back(first[i]["payload"]);
    }
  }
  const json up = ok(Method::kPut, "/collections/c/points?wait=true", json{{"points", pts}});
  EXPECT_EQ(up["status"], "completed");
  EXPECT_TRUE(up["operation_id"].is_number_integer());
  EXPECT_EQ(ok(Method::kPut, "/collections/c/points?wait=false",
               json{{"batch", {{"ids", ids}, {"vectors", vecs}, {"payloads", pays}}}})["status"],
            "acknowledged");
  EXPECT_EQ(count("c"), n);

  testing::Matrix unit = data;
  testing::normalize_rows(unit);
  const testing::Matrix queries = testing::gaussian(5, d, 99);
  for (std::size_t qi = 0; qi < queries.rows; ++qi) {
    std::vector<float> q(queries.row(qi), queries.row(qi) + d);
    double qn = 0;
    for (float x : q) qn += double(x) * x;
    std::vector<std::pair<double, std::size_t>> exact;
    for (std::size_t i = 0; i < n; ++i) {
      double s = 0;
      for (std::size_t j = 0; j < d; ++j) s += double(unit.row(i)[j]) * q[j];
      exact.emplace_back(-s / std::sqrt(qn), i);
    }
    std::sort(exact.begin(), exact.end());

    const json res = ok(Method::kPost, "/collections/c/points/query",
                        json{{"query", q}, {"limit", k}, {"with_payload", true}})["points"];
    ASSERT_EQ(res.size(), k);
    for (std::size_t r = 0; r < k; ++r) {
      EXPECT_EQ(res[r]["id"], exact[r].second) << "query " << qi << " rank " << r;
      EXPECT_NEAR(res[r]["score"].get<double>(), -exact[r].first, 1e-4);
      EXPECT_EQ(res[r]["version"], 0);
      EXPECT_EQ(res[r]["payload"]["group"], static_cast<int>(exact[r].second % 3));
    }
    // The legacy search and {"nearest": ...} give the same answer; offset pages through it.
    const json legacy = ok(Method::kPost, "/collections/c/points/search", json{{"vector", q}, {"limit", k}});
    ASSERT_EQ(legacy.size(), k);
    EXPECT_EQ(legacy[0]["id"], res[0]["id"]);
    EXPECT_TRUE(legacy[0]["payload"].is_null());
    const json nearest = ok(Method::kPost, "/collections/c/points/query",
                            json{{"query", {{"nearest", q}}}, {"limit", 3}, {"offset", 2}})["points"];
    ASSERT_EQ(nearest.size(), 3u);
    EXPECT_EQ(nearest[0]["id"], res[2]["id"]);
    // A threshold cuts the list at that similarity.
    const double th = res[4]["score"].get<double>();
    const json cut = ok(Method::kPost, "/collections/c/points/query",
                        json{{"query", q}, {"limit", k}, {"score_threshold", th}})["points"];
    EXPECT_EQ(cut.size(), 5u);
  }

  // Filtered: only matches, k of them, in exact order among the matches.
  const json filter = {{"must", {{{"key", "metadata.source"}, {"match", {{"value", "odd"}}}}}},
                       {"must_not", {{{"key", "group"}, {"match", {{"value", 0}}}}}}};
  std::vector<float> q0(queries.row(0), queries.row(0) + d);
  const json fres = ok(Method::kPost, "/collections/c/points/query",
                       json{{"query", q0}, {"limit", k}, {"filter", filter}, {"with_payload", true}})["points"];
  ASSERT_EQ(fres.size(), k);
  for (const json& p : fres) {
    EXPECT_EQ(p["payload"]["metadata"]["source"], "odd");
    EXPECT_NE(p["payload"]["group"], 0);
  }
  EXPECT_EQ(count("c", filter), static_cast<std::size_t>(std::count_if(first.begin(), first.end(), [](const json& p) {
              return p["payload"]["metadata"]["source"] == "odd" && p["payload"]["group"] != 0;
            })));

  // Batches: one answer per query, in order.
  const json batch =
      ok(Method::kPost, "/collections/c/points/query/batch",
         json{{"searches", {{{"query", q0}, {"limit", 2}}, {{"query", q0}, {"limit", 1}, {"filter", filter}}}}});
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0]["points"].size(), 2u);
  EXPECT_EQ(batch[1]["points"][0]["id"], fres[0]["id"]);
  const json sbatch =
      ok(Method::kPost, "/collections/c/points/search/batch", json{{"searches", {{{"vector", q0}, {"limit", 2}}}}});
  ASSERT_EQ(sbatch.size(), 1u);
  EXPECT_EQ(sbatch[0].size(), 2u);

  // MMR: diversity 0 is the plain ranking; with diversity, a near-duplicate of the best hit is
  // pushed down (point 1000 is a copy of the best hit for q0).
  {
    const json plain = ok(Method::kPost, "/collections/c/points/query", json{{"query", q0}, {"limit", 5}})["points"];
    const json mmr0 = ok(Method::kPost, "/collections/c/points/query",
                         json{{"query", {{"nearest", q0}, {"mmr", {{"diversity", 0.0}, {"candidates_limit", 50}}}}},
                              {"limit", 5}})["points"];
    ASSERT_EQ(mmr0.size(), 5u);
    for (std::size_t r = 0; r < 5; ++r) EXPECT_EQ(mmr0[r]["id"], plain[r]["id"]);
    const std::size_t best = plain[0]["id"].get<std::size_t>();
    ok(Method::kPut, "/collections/c/points",
       json{{"points", {{{"id", 1000}, {"vector", std::vector<float>(data.row(best), data.row(best) + d)}}}}});
    const json dup = ok(Method::kPost, "/collections/c/points/query", json{{"query", q0}, {"limit", 2}})["points"];
    EXPECT_TRUE(dup[1]["id"] == 1000 || dup[0]["id"] == 1000);
    const json diverse = ok(Method::kPost, "/collections/c/points/query",
                            json{{"query", {{"nearest", q0}, {"mmr", {{"diversity", 0.5}}}}},
                                 {"limit", 3},
                                 {"with_vector", true}})["points"];
    ASSERT_EQ(diverse.size(), 3u);
    std::set<std::string> top2 = {diverse[0]["id"].dump(), diverse[1]["id"].dump()};
    EXPECT_FALSE(top2.count("1000") && top2.count(std::to_string(best))) << diverse.dump();
    EXPECT_EQ(diverse[0]["vector"].size(), d);
    ok(Method::kPost, "/collections/c/points/delete", json{{"points", {1000}}});
  }

  // Query by point id: that point's neighbours, itself excluded; offset pages through them.
  const json by_id = ok(Method::kPost, "/collections/c/points/query", json{{"query", 5}, {"limit", 3}})["points"];
  ASSERT_EQ(by_id.size(), 3u);
  for (const json& p : by_id) EXPECT_NE(p["id"], 5);
  const json by_id_page =
      ok(Method::kPost, "/collections/c/points/query", json{{"query", 5}, {"limit", 2}, {"offset", 1}})["points"];
  ASSERT_EQ(by_id_page.size(), 2u);
  EXPECT_EQ(by_id_page[0]["id"], by_id[1]["id"]);
  EXPECT_EQ(by_id_page[1]["id"], by_id[2]["id"]);
  EXPECT_EQ(ok(Method::kPost, "/collections/c/points/query", json{{"query", 5}, {"limit", 4096}})["points"].size(),
            n - 1);
  // No query: points in id order.
  const json in_order = ok(Method::kPost, "/collections/c/points/query", json{{"limit", 4}, {"offset", 1}})["points"];
  ASSERT_EQ(in_order.size(), 4u);
  EXPECT_EQ(in_order[0]["id"], 1);
}

TEST_F(ServiceTest, PointsRetrieveScrollDeleteAndPayload) {
  const std::size_t n = 57, d = 5;
  create("p", d, "Euclid", {{"vectors", {{"vec", {{"size", d}, {"distance", "Euclid"}}}}}});
  testing::Matrix data = testing::gaussian(n, d, 3);
  json pts = points_json(data, 1);
  for (json& p : pts) p["vector"] = json{{"vec", p["vector"]}};
  // A UUID without dashes (LangChain's uuid4().hex) is answered hyphenated.
  pts.push_back({{"id", "5c56c79369f34fbf87e6c4bf54c28c26"}, {"vector", {{"vec", std::vector<float>(d, 0.5f)}}}});
  ok(Method::kPut, "/collections/p/points", json{{"points", pts}});
  EXPECT_EQ(count("p"), n + 1);

  const json got = ok(Method::kPost, "/collections/p/points",
                      json{{"ids", {3, "5c56c793-69f3-4fbf-87e6-c4bf54c28c26", 999}}, {"with_vector", true}});
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0]["id"], 3);
  EXPECT_EQ(got[0]["payload"]["group"], 2 % 3);
  ASSERT_TRUE(got[0]["vector"].contains("vec"));
  EXPECT_NEAR(got[0]["vector"]["vec"][0].get<double>(), data.row(2)[0], 1e-6);
  EXPECT_EQ(got[1]["id"], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  // The empty vector name is not this collection's ("vec"), in queries and in legacy searches.
  fails(400, Method::kPost, "/collections/p/points/query", json{{"query", std::vector<float>(d, 0.5f)}, {"using", ""}});
  fails(400, Method::kPost, "/collections/p/points/search",
        json{{"vector", {{"name", ""}, {"vector", std::vector<float>(d, 0.5f)}}}, {"limit", 1}});
  const json by_name =
      ok(Method::kPost, "/collections/p/points/query", json{{"query", std::vector<float>(d, 0.5f)}, {"using", "vec"}});
  EXPECT_EQ(by_name["points"].size(), 10u);
  const json one = ok(Method::kGet, "/collections/p/points/5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ(one["vector"]["vec"].size(), d);
  fails(404, Method::kGet, "/collections/p/points/4242");
  fails(400, Method::kGet, "/collections/p/points/not-an-id");

  // Scroll: every id once, in order, then no next page.
  std::set<std::string> seen;
  json offset = nullptr;
  std::size_t pages = 0;
  do {
    json body = {{"limit", 10}, {"with_payload", json::array({"group"})}};
    if (!offset.is_null()) body["offset"] = offset;
    const json page = ok(Method::kPost, "/collections/p/points/scroll", body);
    for (const json& p : page["points"]) {
      EXPECT_TRUE(seen.insert(p["id"].dump()).second) << p["id"];
      if (p["payload"].contains("metadata")) ADD_FAILURE() << "payload selection ignored";
    }
    offset = page["next_page_offset"];
    ++pages;
  } while (!offset.is_null() && pages < 20);
  EXPECT_EQ(seen.size(), n + 1);
  EXPECT_EQ(pages, 6u);

  // Payload updates: merge, then overwrite; by id and by filter.
  ok(Method::kPost, "/collections/p/points/payload", json{{"payload", {{"tag", "x"}}}, {"points", {1, 2}}});
  EXPECT_EQ(count("p", json{{"must", {{{"key", "tag"}, {"match", {{"value", "x"}}}}}}}), 2u);
  ok(Method::kPut, "/collections/p/points/payload",
     json{{"payload", {{"only", true}}}, {"filter", {{"must", {{{"key", "tag"}, {"match", {{"value", "x"}}}}}}}}});
  const json over = ok(Method::kPost, "/collections/p/points", json{{"ids", {1}}});
  EXPECT_EQ(over[0]["payload"], (json{{"only", true}}));

  // Deletes: by ids (absent ones ignored), then by filter.
  ok(Method::kPost, "/collections/p/points/delete?wait=true", json{{"points", {1, 2, 3, 12345}}});
  EXPECT_EQ(count("p"), n + 1 - 3);
  const json even = {{"must", {{{"key", "metadata.source"}, {"match", {{"value", "even"}}}}}}};
  const std::size_t evens = count("p", even);
  EXPECT_GT(evens, 0u);
  ok(Method::kPost, "/collections/p/points/delete", json{{"filter", even}});
  EXPECT_EQ(count("p", even), 0u);
  EXPECT_EQ(count("p"), n + 1 - 3 - evens);
  fails(400, Method::kPost, "/collections/p/points/delete", json{{"points", {1}}, {"filter", even}});
  fails(400, Method::kPost, "/collections/p/points/delete", json::object());
}

TEST_F(ServiceTest, BadInputChangesNothing) {
  ServiceOptions so;
  so.limits.max_points_per_write = 20;
  so.limits.max_batch_queries = 2;
  so.limits.max_limit = 50;
  open(so);
  create("v", 4, "Dot");
  ok(Method::kPut, "/collections/v/points", json{{"points", {{{"id", 1}, {"vector", {1, 2, 3, 4}}}}}});
  const json before = ok(Method::kPost, "/collections/v/points/scroll", json{{"with_vector", true}});
  auto upsert_fails = [&](const json& body) { return fails(400, Method::kPut, "/collections/v/points", body); };
  // One bad point in a batch: nothing is written.
  EXPECT_NE(upsert_fails(json{{"points", {{{"id", 2}, {"vector", {1, 2, 3, 4}}}, {{"id", 3}, {"vector", {1, 2, 3}}}}}})
                .find("expected dim: 4, got 3"),
            std::string::npos);
  upsert_fails(json{{"points", {{{"id", 2}, {"vector", {1, 2, 3, 1e39}}}}}});
  upsert_fails(json{{"points", {{{"id", 2}, {"vector", {1, 2, "x", 4}}}}}});
  upsert_fails(json{{"points", {{{"id", -2}, {"vector", {1, 2, 3, 4}}}}}});
  upsert_fails(json{{"points", {{{"id", "not-a-uuid"}, {"vector", {1, 2, 3, 4}}}}}});
  upsert_fails(json{{"points", {{{"id", 2}, {"vector", {1, 2, 3, 4}}, {"payload", {1, 2}}}}}});
  upsert_fails(json{{"points", {{{"id", 2}, {"vector", {{"other", {1, 2, 3, 4}}}}}}}});
  upsert_fails(json{{"points", {{{"id", 2}, {"vector", {{"indices", {1}}, {"values", {1.0}}}}}}}});
  upsert_fails(json{{"points", {{{"id", 2}}}}});
  upsert_fails(json{{"batch", {{"ids", {2, 3}}, {"vectors", {{1, 2, 3, 4}}}}}});
  json many = json::array();
  for (int i = 0; i < 21; ++i) many.push_back({{"id", 100 + i}, {"vector", {1, 2, 3, 4}}});
  EXPECT_NE(upsert_fails(json{{"points", many}}).find("at most 20"), std::string::npos);
  // Malformed JSON and wrong body types.
  {
    const Response r = service_->handle(Request::make(Method::kPut, "/collections/v/points", "{\"points\": [", {}));
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.body.find("Json deserialize error"), std::string::npos);
    EXPECT_EQ(service_->handle(Request::make(Method::kPut, "/collections/v/points", "[1,2]", {})).status, 400);
    EXPECT_EQ(service_
                  ->handle(Request::make(Method::kPut, "/collections/v/points",
                                         "{\"points\":[{\"id\":1,\"vector\":[NaN,1,1,1]}]}", {}))
                  .status,
              400);
  }
  fails(404, Method::kPut, "/collections/none/points", json{{"points", {{{"id", 2}, {"vector", {1, 2, 3, 4}}}}}});
  EXPECT_EQ(ok(Method::kPost, "/collections/v/points/scroll", json{{"with_vector", true}}), before);
  EXPECT_EQ(count("v"), 1u);

  // Queries: limits, types, dimensions.
  auto query_fails = [&](const json& body) { return fails(400, Method::kPost, "/collections/v/points/query", body); };
  query_fails(json{{"query", {1, 2, 3}}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"limit", 0}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"limit", 51}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"limit", "ten"}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"using", "other"}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"filter", {{"must", {{{"key", "a"}, {"match", {{"nonsense", 1}}}}}}}}});
  query_fails(json{{"query", {{"nearest", {1, 2, 3, 4}}, {"mmr", {{"diversity", 1.5}}}}}});
  query_fails(json{{"query", {{"nearest", {1, 2, 3, 4}}, {"mmr", {{"lambda", 0.5}}}}}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"prefetch", {{{"query", {1, 2, 3, 4}}}}}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"params", {{"quantization", {{"oversampling", 0.5}}}}}});
  query_fails(json{{"query", {1, 2, 3, 4}}, {"unknown_field", 1}});
  fails(404, Method::kPost, "/collections/v/points/query", json{{"query", 777}});
  fails(400, Method::kPost, "/collections/v/points/query/batch",
        json{{"searches", {{{"query", {1, 2, 3, 4}}}, {{"query", {1, 2, 3, 4}}}, {{"query", {1, 2, 3, 4}}}}}});
  fails(400, Method::kPost, "/collections/v/points/search", json{{"vector", {1, 2, 3, 4}}});  // limit is required
  fails(400, Method::kPost, "/collections/v/points/scroll", json{{"limit", 0}});
  fails(400, Method::kPost, "/collections/v/points/scroll", json{{"order_by", "x"}});
}

TEST_F(ServiceTest, ApiKeys) {
  ServiceOptions so;
  so.api_key = "full-secret";
  so.read_only_api_key = "read-secret";
  open(so);
  const std::vector<std::pair<std::string, std::string>> full = {{"api-key", "full-secret"}};
  const std::vector<std::pair<std::string, std::string>> bearer = {{"Authorization", "Bearer full-secret"}};
  const std::vector<std::pair<std::string, std::string>> read = {{"API-Key", "read-secret"}};
  const json create_body = {{"vectors", {{"size", 2}, {"distance", "Dot"}}}};
  fails(401, Method::kGet, "/collections");
  fails(401, Method::kGet, "/");
  fails(401, Method::kGet, "/collections", nullptr, {{"api-key", "wrong"}});
  fails(401, Method::kGet, "/collections", nullptr, {{"api-key", "full-secre"}});
  fails(401, Method::kGet, "/collections", nullptr, {{"Authorization", "Basic full-secret"}});
  EXPECT_EQ(call(Method::kGet, "/healthz").status, 200);  // probes need no key
  EXPECT_EQ(call(Method::kPut, "/collections/k", create_body, full).status, 200);
  EXPECT_EQ(
      call(Method::kPut, "/collections/k/points", json{{"points", {{{"id", 1}, {"vector", {1, 0}}}}}}, bearer).status,
      200);
  // The read-only key reads and searches, and cannot write.
  EXPECT_EQ(call(Method::kPost, "/collections/k/points/query", json{{"query", {1, 0}}}, read).status, 200);
  EXPECT_EQ(call(Method::kPost, "/collections/k/points/count", json::object(), read).status, 200);
  EXPECT_EQ(call(Method::kGet, "/collections/k", nullptr, read).status, 200);
  EXPECT_EQ(call(Method::kGet, "/metrics", nullptr, read).status, 200);
  fails(403, Method::kPut, "/collections/k/points", json{{"points", {{{"id", 2}, {"vector", {1, 0}}}}}}, read);
  fails(403, Method::kDelete, "/collections/k", nullptr, read);
  fails(403, Method::kPost, "/collections/k/points/delete", json{{"points", {1}}}, read);
  const Response cr = call(Method::kPost, "/collections/k/points/count", json::object(), read);
  EXPECT_EQ(json::parse(cr.body)["result"]["count"], 1);
}

TEST(ConstantTimeEqual, ComparesWholeStrings) {
  EXPECT_TRUE(constant_time_equal("", ""));
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "ab"));
  EXPECT_FALSE(constant_time_equal("ab", "abc"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_FALSE(constant_time_equal(std::string("a\0b", 3), std::string("a\0c", 3)));
}

TEST(HttpStatus, OneMapping) {
  EXPECT_EQ(http_status(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status(StatusCode::kAlreadyExists), 409);
  EXPECT_EQ(http_status(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(http_status(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status(StatusCode::kCorruption), 500);
}

TEST(RequestParsing, PathAndQueryAreDecoded) {
  const Request r = Request::make(Method::kGet, "/collections/a%20b/points?wait=true&x=1%2B1&y=a+b&flag", "",
                                  {{"Content-Type", "application/json"}});
  EXPECT_EQ(r.path, "/collections/a b/points");
  ASSERT_NE(r.param("wait"), nullptr);
  EXPECT_EQ(*r.param("wait"), "true");
  EXPECT_EQ(*r.param("x"), "1+1");
  EXPECT_EQ(*r.param("y"), "a b");
  EXPECT_EQ(*r.param("flag"), "");
  ASSERT_NE(r.header("content-type"), nullptr);
  std::string out;
  EXPECT_FALSE(percent_decode("%4", false, &out));
  EXPECT_FALSE(percent_decode("%zz", false, &out));
}

TEST_F(ServiceTest, MetricsCountRequestsAndPoints) {
  create("m", 3, "Dot");
  ok(Method::kPut, "/collections/m/points",
     json{{"points", {{{"id", 1}, {"vector", {1, 0, 0}}}, {{"id", 2}, {"vector", {0, 1, 0}}}}}});
  ok(Method::kPost, "/collections/m/points/query", json{{"query", {1, 0, 0}}});
  fails(400, Method::kPost, "/collections/m/points/query", json{{"query", {1, 0}}});
  const Response r = call(Method::kGet, "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.content_type.rfind("text/plain; version=0.0.4", 0), 0u);
  const std::string& t = r.body;
  EXPECT_NE(
      t.find(
          "vecstash_http_requests_total{route=\"POST /collections/{collection_name}/points/query\",status=\"200\"} 1"),
      std::string::npos)
      << t;
  EXPECT_NE(t.find("route=\"POST /collections/{collection_name}/points/query\",status=\"400\"} 1"), std::string::npos);
  EXPECT_NE(t.find("vecstash_points_upserted_total{collection=\"m\"} 2"), std::string::npos);
  EXPECT_NE(t.find("vecstash_search_queries_total{collection=\"m\"} 1"), std::string::npos);
  EXPECT_NE(t.find("vecstash_collection_points{collection=\"m\"} 2"), std::string::npos);
  EXPECT_NE(t.find("vecstash_http_request_duration_seconds_bucket{route=\"PUT "
                   "/collections/{collection_name}/points\",le=\"+Inf\"} 1"),
            std::string::npos);
  EXPECT_EQ(prometheus_escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST_F(ServiceTest, CompressionReportAndCalibration) {
  const std::size_t n = 600, d = 32;
  create("r", d, "Cosine", {{"vecstash", {{"calibration_sample", 1000}}}});
  const testing::Matrix data = testing::anisotropic(n, d, 11);
  ok(Method::kPut, "/collections/r/points", json{{"points", points_json(data)}});
  json rep = ok(Method::kGet, "/collections/r/compression");
  EXPECT_TRUE(rep["recall_at_k"].is_null());
  EXPECT_NE(rep["note"].get<std::string>().find("not calibrated"), std::string::npos);
  const json cal = ok(Method::kPost, "/collections/r/calibration");
  EXPECT_EQ(cal["calibrated"], true);
  EXPECT_EQ(cal["code_bytes"], d);  // one byte per dimension
  fails(409, Method::kPost, "/collections/r/calibration");
  rep = ok(Method::kGet, "/collections/r/compression?sample=100&k=10");
  EXPECT_EQ(rep["sample"], 100);
  EXPECT_EQ(rep["points"], n);
  EXPECT_GT(rep["compression_ratio"].get<double>(), 2.5);
  EXPECT_GE(rep["recall_at_k"].get<double>(), 0.8);
  EXPECT_GE(rep["recall_at_k_rescored"].get<double>(), 0.99);
  EXPECT_GE(rep["recall_at_k_rescored"].get<double>(), rep["recall_at_k"].get<double>());
  fails(400, Method::kGet, "/collections/r/compression?sample=0");
  fails(400, Method::kGet, "/collections/r/compression?k=abc");
  // Recalibration runs in the background; its progress is readable.
  const json started = ok(Method::kPost, "/collections/r/recalibration");
  EXPECT_TRUE(started["state"] == "running" || started["state"] == "done") << started;
  engine_->collection("r").value()->wait_for_recalibration();
  EXPECT_EQ(ok(Method::kGet, "/collections/r/recalibration")["state"], "done");
  EXPECT_EQ(ok(Method::kGet, "/collections/r")["config"]["vecstash"]["state"]["generation"], 2);
  EXPECT_EQ(ok(Method::kPost, "/collections/r/compaction")["reclaimed_rows"], 0);
}

// ---- anchors, relative vectors and cross-model queries ---------------------------------------------

/// `rows` x `cols` with orthonormal columns (cols <= rows).
testing::Matrix orthonormal_columns(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  return testing::to_float(testing::orthonormal_rows(cols, rows, seed), rows, cols, /*transpose=*/true);
}

/// x (n x d) times the transpose of q (e x d): the rows in another model's space (n x e).
std::vector<std::vector<float>> to_model(const testing::Matrix& x, const testing::Matrix& q) {
  std::vector<std::vector<float>> out(x.rows, std::vector<float>(q.rows));
  for (std::size_t i = 0; i < x.rows; ++i) {
    for (std::size_t r = 0; r < q.rows; ++r) {
      double s = 0;
      for (std::size_t j = 0; j < x.cols; ++j) s += double(x.row(i)[j]) * q.row(r)[j];
      out[i][r] = static_cast<float>(s);
    }
  }
  return out;
}

class AnchorServiceTest : public ServiceTest {
 protected:
  static constexpr std::size_t kN = 240, kDim = 16, kModelDim = 20;

  /// Collection "c" (cosine, kN points of kDim) and the same points as a second model would embed
  /// them: rotated into kModelDim dimensions by `map_` (kModelDim x kDim, orthonormal columns).
  void load(const std::string& distance = "Cosine") {
    data_ = testing::gaussian(kN, kDim, 31);
    create("c", kDim, distance);
    ok(Method::kPut, "/collections/c/points", json{{"points", points_json(data_)}});
    map_ = orthonormal_columns(kModelDim, kDim, 32);
    model_rows_ = to_model(data_, map_);
  }

  json anchors() { return ok(Method::kGet, "/collections/c/anchors"); }

  /// The model's embeddings of the current anchors, in the anchor set's order.
  json model_vectors(const json& info) {
    json rows = json::array();
    for (const json& id : info["ids"]) rows.push_back(model_rows_[id.get<std::size_t>()]);
    return rows;
  }

  /// Hits of the engine's own search, as (id, score) JSON, to compare with the REST answer.
  json direct(const std::vector<float>& q, engine::QuerySpace space, std::size_t limit) {
    engine::SearchRequest req;
    req.queries = q;
    req.nq = 1;
    req.limit = limit;
    req.space = std::move(space);
    auto found = engine_->collection("c").value()->search(req);
    EXPECT_TRUE(found.is_ok()) << found.status().to_string();
    json out = json::array();
    if (found.is_ok()) {
      for (const auto& p : found->front()) out.push_back({p.id.to_json(), p.score});
    }
    return out;
  }
  static json hits(const json& points) {
    json out = json::array();
    for (const json& p : points) out.push_back({p["id"], p["score"]});
    return out;
  }

  testing::Matrix data_;
  testing::Matrix map_;
  std::vector<std::vector<float>> model_rows_;
};

TEST_F(AnchorServiceTest, RoutesAndBadRequestsChangeNothing) {
  load();
  EXPECT_NE(fails(404, Method::kGet, "/collections/c/anchors").find("no anchor set"), std::string::npos);
  fails(404, Method::kDelete, "/collections/c/anchors");
  fails(404, Method::kGet, "/collections/none/anchors");
  fails(404, Method::kPut, "/collections/none/anchors", json::object());
  EXPECT_EQ(ok(Method::kGet, "/collections/c/models"), (json{{"models", json::array()}}));
  fails(404, Method::kGet, "/collections/c/models/b");
  fails(404, Method::kDelete, "/collections/c/models/b");
  fails(409, Method::kPut, "/collections/c/models/b", json{{"vectors", {{1, 2}, {3, 4}}}});  // no anchors yet
  EXPECT_EQ(call(Method::kPatch, "/collections/c/anchors").status, 405);
  EXPECT_TRUE(ok(Method::kGet, "/collections/c")["config"]["vecstash"]["anchors"].is_null());

  auto set_fails = [&](const json& body, int status = 400) {
    return fails(status, Method::kPut, "/collections/c/anchors", body);
  };
  EXPECT_NE(set_fails(json{{"strategy", "nope"}}).find("unknown anchor strategy"), std::string::npos);
  set_fails(json{{"strategy", 3}});
  set_fails(json{{"count", -1}});
  set_fails(json{{"count", "12"}});
  set_fails(json{{"count", 1}});
  EXPECT_NE(set_fails(json{{"count", kN + 1}}).find("more than"), std::string::npos);
  EXPECT_NE(set_fails(json{{"bogus", 1}}).find("unknown field `bogus`"), std::string::npos);
  set_fails(json{{"seed", -3}});
  set_fails(json{{"center", "yes"}});
  EXPECT_NE(set_fails(json{{"strategy", "ids"}}).find("needs `ids`"), std::string::npos);
  set_fails(json{{"strategy", "ids"}, {"ids", {1, 1}}});
  set_fails(json{{"strategy", "ids"}, {"ids", {1, 2}}, {"count", 3}});
  set_fails(json{{"strategy", "ids"}, {"ids", {1, "x"}}});
  set_fails(json{{"strategy", "ids"}, {"ids", {1, 9999}}}, 404);
  set_fails(json{{"strategy", "kmeans"}, {"ids", {1, 2}}});
  set_fails(
      json{{"strategy", "vectors"}, {"anchors", {{{"id", 1}, {"vector", {1, 2}}}, {{"id", 2}, {"vector", {1, 2}}}}}});
  set_fails(json{{"strategy", "vectors"}, {"anchors", {{{"id", 1}}, {{"id", 2}}}}});
  set_fails(json{{"strategy", "vectors"}, {"ids", {1, 2}}});
  set_fails(json{{"relative", true}});
  set_fails(json{{"relative", {{"kind", "i9"}}}});
  set_fails(json{{"relative", {{"kind", "b1"}}}});
  set_fails(json{{"relative", {{"nope", 1}}}});
  set_fails(json{{"relative", {{"name", ""}}}});
  set_fails(json{{"relative", {{"store", "no"}}}});
  fails(404, Method::kGet, "/collections/c/anchors");  // none of them set anything
  EXPECT_TRUE(ok(Method::kGet, "/collections/c")["config"]["vecstash"]["anchors"].is_null());
  // The routes carry their own metrics label.
  EXPECT_NE(call(Method::kGet, "/metrics").body.find("route=\"PUT /collections/{collection_name}/anchors\""),
            std::string::npos);
}

TEST_F(AnchorServiceTest, EveryStrategyAndTheAnchorInfo) {
  load();
  std::uint64_t version = 0;
  json farthest_ids;
  for (const char* strategy : {"random", "kmeans", "farthest"}) {
    const json info = ok(Method::kPost, "/collections/c/anchors",
                         json{{"strategy", strategy}, {"count", 12}, {"seed", 7}, {"relative", {{"kind", "i8"}}}});
    EXPECT_EQ(info["version"], ++version) << strategy;
    EXPECT_EQ(info["strategy"], strategy);
    EXPECT_EQ(info["count"], 12);
    EXPECT_EQ(info["seed"], 7);
    EXPECT_EQ(info["center"], true);
    ASSERT_EQ(info["ids"].size(), 12u);
    std::set<std::size_t> ids;
    for (const json& id : info["ids"]) ids.insert(id.get<std::size_t>());
    EXPECT_EQ(ids.size(), 12u) << strategy << ": anchors are distinct points";
    EXPECT_LT(*ids.rbegin(), kN);
    EXPECT_EQ(info["relative"], (json{{"store", true},
                                      {"kind", "i8"},
                                      {"name", "relative"},
                                      {"rows", kN},
                                      {"bytes", info["relative"]["bytes"]}}));
    EXPECT_GT(info["relative"]["bytes"].get<std::size_t>(), 0u);
    EXPECT_EQ(info["models"], json::array());
    EXPECT_EQ(anchors(), info);  // GET after PUT
    farthest_ids = info["ids"];
  }
  // The same seed chooses the same anchors again.
  const json again =
      ok(Method::kPut, "/collections/c/anchors", json{{"strategy", "farthest"}, {"count", 12}, {"seed", 7}});
  EXPECT_EQ(again["ids"], farthest_ids);
  EXPECT_EQ(again["version"], ++version);

  // Named points; their stored (normalised) vectors are the anchors.
  const json by_ids = ok(Method::kPut, "/collections/c/anchors",
                         json{{"strategy", "ids"},
                              {"ids", {3, 5, 7, 9}},
                              {"center", false},
                              {"relative", {{"name", "rel"}, {"kind", "f32"}}}});
  EXPECT_EQ(by_ids["version"], ++version);
  EXPECT_EQ(by_ids["ids"], (json{3, 5, 7, 9}));
  EXPECT_EQ(by_ids["center"], false);
  EXPECT_EQ(by_ids["relative"]["name"], "rel");
  const json with_vectors = ok(Method::kGet, "/collections/c/anchors?with_vectors=true");
  ASSERT_EQ(with_vectors["vectors"].size(), 4u);
  testing::Matrix unit = data_;
  testing::normalize_rows(unit);
  for (std::size_t a = 0; a < 4; ++a) {
    ASSERT_EQ(with_vectors["vectors"][a].size(), kDim);
    const std::size_t id = 3 + 2 * a;
    for (std::size_t j = 0; j < kDim; ++j) {
      EXPECT_NEAR(with_vectors["vectors"][a][j].get<double>(), unit.row(id)[j], 1e-6);
    }
  }
  EXPECT_FALSE(anchors().contains("vectors"));
  fails(400, Method::kGet, "/collections/c/anchors?with_vectors=yes");

  // Uploaded items that are not points of the collection, without relative vectors.
  json items = json::array();
  for (std::size_t a = 0; a < 5; ++a) {
    items.push_back({{"id", 1000 + a}, {"vector", std::vector<float>(data_.row(a), data_.row(a) + kDim)}});
  }
  items[4]["id"] = "5c56c793-69f3-4fbf-87e6-c4bf54c28c26";
  const json uploaded = ok(Method::kPut, "/collections/c/anchors",
                           json{{"strategy", "vectors"}, {"anchors", items}, {"relative", {{"store", false}}}});
  EXPECT_EQ(uploaded["count"], 5);
  EXPECT_EQ(uploaded["ids"][0], 1000);
  EXPECT_EQ(uploaded["ids"][4], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ(uploaded["relative"]["store"], false);
  EXPECT_EQ(uploaded["relative"]["rows"], 0);
  const json summary = ok(Method::kGet, "/collections/c")["config"]["vecstash"]["anchors"];
  EXPECT_EQ(summary, (json{{"version", version + 1},
                           {"count", 5},
                           {"strategy", "vectors"},
                           {"relative", nullptr},
                           {"models", json::array()}}));
  // Without relative vectors the relative space cannot be searched.
  std::vector<float> q(data_.row(0), data_.row(0) + kDim);
  fails(409, Method::kPost, "/collections/c/points/query", json{{"query", q}, {"using", "relative"}});

  EXPECT_EQ(ok(Method::kDelete, "/collections/c/anchors"), true);
  fails(404, Method::kGet, "/collections/c/anchors");
  EXPECT_TRUE(ok(Method::kGet, "/collections/c")["config"]["vecstash"]["anchors"].is_null());
}

TEST_F(AnchorServiceTest, ModelsAndQueriesInTheirSpaces) {
  load();
  const json set = ok(Method::kPut, "/collections/c/anchors", json{{"strategy", "kmeans"}, {"count", 32}});
  ASSERT_EQ(set["count"], 32);
  const json vectors = model_vectors(set);

  // Both body forms: in the anchor set's order, and keyed by anchor id in any order.
  const json b = ok(Method::kPut, "/collections/c/models/b", json{{"vectors", vectors}});
  EXPECT_EQ(b["name"], "b");
  EXPECT_EQ(b["dim"], kModelDim);
  EXPECT_EQ(b["method"], "local");
  EXPECT_EQ(b["lambda"], 1.0);
  // The local correction's parameters, chosen by leave-one-out on the anchors.
  ASSERT_TRUE(b["local"].is_object());
  EXPECT_GE(b["local"]["neighbours"].get<int>(), 1);
  EXPECT_GT(b["local"]["temperature"].get<double>(), 0.0);
  EXPECT_GE(b["local"]["weight"].get<double>(), 0.0);
  EXPECT_GT(b["local"]["fit_cosine"].get<double>(), 0.999);
  // No hubness correction by default with 32 anchors (fewer than 40).
  EXPECT_EQ(b["hubness"], (json{{"weight", 0.0}, {"neighbours", 0}}));
  EXPECT_EQ(b["anchors_version"], set["version"]);
  EXPECT_GT(b["procrustes_fit_cosine"].get<double>(), 0.999);  // the map is exact: a rotation
  for (const char* k : {"affine_fit_cosine", "affine_orthogonality_gap"}) EXPECT_TRUE(b[k].is_number()) << k;
  json keyed = json::array();
  for (std::size_t i = set["ids"].size(); i-- > 0;) keyed.push_back({{"id", set["ids"][i]}, {"vector", vectors[i]}});
  const json b2 = ok(Method::kPut, "/collections/c/models/b2",
                     json{{"anchors", keyed},
                          {"method", "affine"},
                          {"lambda", 0.5},
                          {"local", {{"neighbours", 6}, {"temperature", 0.25}, {"weight", 0.5}}},
                          {"hubness", {{"weight", 0.75}, {"neighbours", 4}}}});
  EXPECT_EQ(b2["method"], "affine");
  EXPECT_EQ(b2["hubness"], (json{{"weight", 0.75}, {"neighbours", 4}}));
  EXPECT_EQ(b2["lambda"], 0.5);
  EXPECT_EQ(b2["local"]["neighbours"], 6);
  EXPECT_EQ(b2["local"]["temperature"], 0.25);
  EXPECT_EQ(b2["local"]["weight"], 0.5);
  // Same data, same fit: the reordering put every vector with its anchor.
  EXPECT_NEAR(b2["procrustes_fit_cosine"].get<double>(), b["procrustes_fit_cosine"].get<double>(), 1e-6);
  const json models = ok(Method::kGet, "/collections/c/models")["models"];
  ASSERT_EQ(models.size(), 2u);
  EXPECT_EQ(models[0], b);
  EXPECT_EQ(ok(Method::kGet, "/collections/c/models/b2"), b2);
  EXPECT_EQ(anchors()["models"], models);
  EXPECT_EQ(ok(Method::kGet, "/collections/c")["config"]["vecstash"]["anchors"]["models"], (json{"b", "b2"}));

  // Bad registrations change nothing.
  auto reg_fails = [&](const std::string& name, const json& body) {
    return fails(400, Method::kPut, "/collections/c/models/" + name, body);
  };
  json short_list = vectors;
  short_list.erase(short_list.size() - 1);
  EXPECT_NE(reg_fails("x", json{{"vectors", short_list}}).find("has 31 entries"), std::string::npos);
  reg_fails("x", json::object());
  reg_fails("x", json{{"vectors", vectors}, {"anchors", keyed}});
  json ragged = vectors;
  ragged[5].erase(ragged[5].size() - 1);
  EXPECT_NE(reg_fails("x", json{{"vectors", ragged}}).find("vectors[5]"), std::string::npos);
  json unknown = keyed;
  unknown[3]["id"] = 99999;
  EXPECT_NE(reg_fails("x", json{{"anchors", unknown}}).find("not an anchor"), std::string::npos);
  json twice = keyed;
  twice[3]["id"] = twice[4]["id"];
  EXPECT_NE(reg_fails("x", json{{"anchors", twice}}).find("given twice"), std::string::npos);
  reg_fails("x", json{{"vectors", vectors}, {"method", "nope"}});
  reg_fails("x", json{{"vectors", vectors}, {"lambda", "one"}});
  reg_fails("x", json{{"vectors", vectors}, {"lambda", -1}});
  reg_fails("x", json{{"vectors", vectors}, {"extra", 1}});
  reg_fails("x", json{{"vectors", vectors}, {"local", 16}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"k", 16}}}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"neighbours", 0}}}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"neighbours", 33}}}});  // more than the anchors
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"neighbours", -2}}}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"temperature", 0}}}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"weight", "all"}}}});
  reg_fails("x", json{{"vectors", vectors}, {"local", {{"weight", 5}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", 0.5}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"k", 4}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"weight", -0.5}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"weight", 2.5}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"weight", "half"}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"neighbours", 0}}}});
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"neighbours", 33}}}});  // more than the anchors
  reg_fails("x", json{{"vectors", vectors}, {"hubness", {{"neighbours", 300}}}});
  reg_fails("bad%20name", json{{"vectors", vectors}});
  reg_fails("relative", json{{"vectors", vectors}});
  EXPECT_EQ(ok(Method::kGet, "/collections/c/models")["models"], models);

  // Queries in the model's space (each method) and in the relative space: what the engine answers.
  const testing::Matrix xq = testing::gaussian(3, kDim, 33);
  const auto yq = to_model(xq, map_);
  const std::size_t k = 8;
  for (std::size_t qi = 0; qi < xq.rows; ++qi) {
    const std::vector<float> x(xq.row(qi), xq.row(qi) + kDim);
    const std::vector<float>& y = yq[qi];
    const json plain = ok(Method::kPost, "/collections/c/points/query", json{{"query", x}, {"limit", k}})["points"];
    const json by_model =
        ok(Method::kPost, "/collections/c/points/query", json{{"query", y}, {"using", "b"}, {"limit", k}})["points"];
    EXPECT_EQ(hits(by_model), direct(y, {"b", std::nullopt, false}, k));
    // The map is exact, so (without a hubness correction) the model's query finds what the
    // collection's own query finds, with its scores.
    EXPECT_EQ(by_model[0]["id"], plain[0]["id"]);
    EXPECT_NEAR(by_model[0]["score"].get<double>(), plain[0]["score"].get<double>(), 1e-3);
    // b2 has one (weight 0.75); per query it can be switched off or changed.
    auto with_hub = [&](std::optional<double> w) {
      json body{{"query", y}, {"using", "b2"}, {"limit", k}, {"params", {{"vecstash", {{"method", "procrustes"}}}}}};
      if (w) body["params"]["vecstash"]["hubness_weight"] = *w;
      return ok(Method::kPost, "/collections/c/points/query", body)["points"];
    };
    const json hub_default = with_hub(std::nullopt), hub_off = with_hub(0.0), hub_15 = with_hub(1.5);
    EXPECT_EQ(hits(hub_default), direct(y, {"b2", engine::CrossMethod::kProcrustes, false}, k));
    EXPECT_EQ(hits(hub_off), direct(y, {"b2", engine::CrossMethod::kProcrustes, false, 0.0f}, k));
    EXPECT_EQ(hits(hub_15), direct(y, {"b2", engine::CrossMethod::kProcrustes, false, 1.5f}, k));
    EXPECT_LT(hub_default[0]["score"].get<double>(), hub_off[0]["score"].get<double>() - 1e-3);
    for (auto method : {engine::CrossMethod::kRelative, engine::CrossMethod::kProcrustes, engine::CrossMethod::kAffine,
                        engine::CrossMethod::kLocal}) {
      const std::string name(engine::cross_method_name(method));
      const json res = ok(Method::kPost, "/collections/c/points/query",
                          json{{"query", {{"nearest", y}}},
                               {"using", "b"},
                               {"limit", k},
                               {"params", {{"vecstash", {{"method", name}}}}}})["points"];
      EXPECT_EQ(hits(res), direct(y, {"b", method, false}, k)) << name;
      EXPECT_EQ(res.size(), k) << name;
    }
    // The relative vector, from a query of the collection's space and from a relative query.
    const json rel = ok(Method::kPost, "/collections/c/points/query",
                        json{{"query", x}, {"using", "relative"}, {"limit", k}})["points"];
    EXPECT_EQ(hits(rel), direct(x, {"relative", std::nullopt, false}, k));
    std::vector<float> r(32);
    for (std::size_t a = 0; a < r.size(); ++a) r[a] = std::sin(float(a + qi));
    const json rel_in = ok(Method::kPost, "/collections/c/points/query",
                           json{{"query", r},
                                {"using", "relative"},
                                {"limit", k},
                                {"params", {{"vecstash", {{"relative_input", true}}}}}})["points"];
    EXPECT_EQ(hits(rel_in), direct(r, {"relative", std::nullopt, true}, k));
    // The legacy search names the space in its NamedVector; the batches mix spaces.
    const json legacy = ok(Method::kPost, "/collections/c/points/search",
                           json{{"vector", {{"name", "b"}, {"vector", y}}}, {"limit", k}});
    EXPECT_EQ(hits(legacy), hits(by_model));
    const json batch = ok(Method::kPost, "/collections/c/points/query/batch",
                          json{{"searches",
                                {{{"query", y}, {"using", "b"}, {"limit", k}},
                                 {{"query", x}, {"limit", k}},
                                 {{"query", x}, {"using", "relative"}, {"limit", k}}}}});
    ASSERT_EQ(batch.size(), 3u);
    EXPECT_EQ(hits(batch[0]["points"]), hits(by_model));
    EXPECT_EQ(hits(batch[1]["points"]), hits(plain));
    EXPECT_EQ(hits(batch[2]["points"]), hits(rel));
    const json sbatch = ok(Method::kPost, "/collections/c/points/search/batch",
                           json{{"searches", {{{"vector", {{"name", "b2"}, {"vector", y}}}, {"limit", k}}}}});
    EXPECT_EQ(hits(sbatch[0]), direct(y, {"b2", std::nullopt, false}, k));
  }
  // MMR, payloads and vectors work in a model's space too (vectors are the stored ones).
  const json mmr = ok(Method::kPost, "/collections/c/points/query",
                      json{{"query", {{"nearest", yq[0]}, {"mmr", {{"diversity", 0.5}}}}},
                           {"using", "b"},
                           {"limit", 4},
                           {"with_payload", true},
                           {"with_vector", true}})["points"];
  ASSERT_EQ(mmr.size(), 4u);
  EXPECT_EQ(mmr[0]["vector"].size(), kDim);
  EXPECT_TRUE(mmr[0]["payload"].contains("group"));

  // Bad queries.
  auto query_fails = [&](const json& body) { return fails(400, Method::kPost, "/collections/c/points/query", body); };
  const std::vector<float> y0 = yq[0];
  EXPECT_NE(query_fails(json{{"query", 5}, {"using", "b"}}).find("point id"), std::string::npos);
  EXPECT_NE(query_fails(json{{"query", {{"nearest", 5}}}, {"using", "relative"}}).find("point id"), std::string::npos);
  EXPECT_NE(query_fails(json{{"query", y0}, {"using", "zzz"}}).find("zzz"), std::string::npos);
  query_fails(json{{"query", std::vector<float>(kDim, 0.5f)}, {"using", "b"}});  // the collection's dimension
  query_fails(json{{"query", y0}, {"using", 3}});
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"method", "nope"}}}}}});
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"method", 1}}}}}});
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"other", 1}}}}}});
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"relative_input", "yes"}}}}}});
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"relative_input", true}}}}}});
  query_fails(json{{"query", y0}, {"using", "relative"}, {"params", {{"vecstash", {{"method", "affine"}}}}}});
  query_fails(json{{"query", y0}, {"using", "b2"}, {"params", {{"vecstash", {{"hubness_weight", "x"}}}}}});
  query_fails(json{{"query", y0}, {"using", "b2"}, {"params", {{"vecstash", {{"hubness_weight", 3}}}}}});
  query_fails(json{{"query", y0}, {"using", "b2"}, {"params", {{"vecstash", {{"hubness_weight", -1}}}}}});
  // b was registered without one.
  query_fails(json{{"query", y0}, {"using", "b"}, {"params", {{"vecstash", {{"hubness_weight", 0.5}}}}}});
  query_fails(json{
      {"query", y0}, {"using", "b2"}, {"params", {{"vecstash", {{"method", "relative"}, {"hubness_weight", 0.5}}}}}});
  EXPECT_NE(query_fails(
                json{{"query", std::vector<float>(kDim, 0.5f)}, {"params", {{"vecstash", {{"hubness_weight", 0.5}}}}}})
                .find("`using`"),
            std::string::npos);
  EXPECT_NE(
      query_fails(json{{"query", std::vector<float>(kDim, 0.5f)}, {"params", {{"vecstash", {{"method", "affine"}}}}}})
          .find("`using`"),
      std::string::npos);
  query_fails(json{{"query", std::vector<float>(kDim, 0.5f)}, {"params", {{"vecstash", {{"relative_input", true}}}}}});
  query_fails(json{{"query", {{"b", y0}}}});  // a model's vector without `using`
  fails(400, Method::kPost, "/collections/c/points/search",
        json{{"vector", {{"name", "zzz"}, {"vector", y0}}}, {"limit", 3}});
  fails(400, Method::kPost, "/collections/c/points/search",
        json{{"vector", {{"name", 7}, {"vector", y0}}}, {"limit", 3}});
  // {"<using>": vector} is the same as the plain vector.
  EXPECT_EQ(hits(ok(Method::kPost, "/collections/c/points/query",
                    json{{"query", {{"b", y0}}}, {"using", "b"}, {"limit", k}})["points"]),
            direct(y0, {"b", std::nullopt, false}, k));

  // The anchors survive a restart (the engine's job; checked here through the API).
  const json before = anchors();
  open({});
  const json after = anchors();
  EXPECT_EQ(after["version"], before["version"]);
  EXPECT_EQ(after["ids"], before["ids"]);
  EXPECT_EQ(after["models"], before["models"]);
  EXPECT_EQ(hits(ok(Method::kPost, "/collections/c/points/query",
                    json{{"query", y0}, {"using", "b"}, {"limit", k}})["points"]),
            direct(y0, {"b", std::nullopt, false}, k));

  // Deleting a model; replacing the anchors removes the others.
  EXPECT_EQ(ok(Method::kDelete, "/collections/c/models/b2"), true);
  fails(404, Method::kGet, "/collections/c/models/b2");
  fails(404, Method::kDelete, "/collections/c/models/b2");
  fails(400, Method::kPost, "/collections/c/points/query", json{{"query", y0}, {"using", "b2"}});
  const json few = ok(Method::kPut, "/collections/c/anchors", json{{"strategy", "random"}, {"count", 16}});
  EXPECT_EQ(ok(Method::kGet, "/collections/c/models")["models"], json::array());
  fails(400, Method::kPost, "/collections/c/points/query", json{{"query", y0}, {"using", "b"}});
  // 16 anchors for a 20-dimensional model: registered, with a warning (absent when there is none).
  EXPECT_FALSE(b.contains("warnings"));
  const json under = ok(Method::kPut, "/collections/c/models/u", json{{"vectors", model_vectors(few)}});
  ASSERT_TRUE(under["warnings"].is_array());
  ASSERT_EQ(under["warnings"].size(), 1u);
  EXPECT_NE(under["warnings"][0].get<std::string>().find("under-determined"), std::string::npos) << under;
  EXPECT_EQ(ok(Method::kDelete, "/collections/c/anchors"), true);
  fails(400, Method::kPost, "/collections/c/points/query", json{{"query", y0}, {"using", "relative"}});
}

TEST_F(AnchorServiceTest, EuclidScoresInTheRelativeSpaceAreSimilarities) {
  load("Euclid");
  ok(Method::kPut, "/collections/c/anchors", json{{"strategy", "farthest"}, {"count", 24}});
  const std::vector<float> x(data_.row(1), data_.row(1) + kDim);
  const json rel = ok(Method::kPost, "/collections/c/points/query",
                      json{{"query", x}, {"using", "relative"}, {"limit", 5}})["points"];
  ASSERT_EQ(rel.size(), 5u);
  EXPECT_EQ(rel[0]["id"], 1);  // the point itself, cosine 1 between equal relative vectors
  EXPECT_GE(rel[0]["score"].get<double>(), rel[4]["score"].get<double>());
  // MMR keeps the best hit first whatever the sense of the scores.
  const json mmr = ok(
      Method::kPost, "/collections/c/points/query",
      json{{"query", {{"nearest", x}, {"mmr", {{"diversity", 0.2}}}}}, {"using", "relative"}, {"limit", 3}})["points"];
  ASSERT_EQ(mmr.size(), 3u);
  EXPECT_EQ(mmr[0]["id"], 1);
}

TEST_F(AnchorServiceTest, WritesNeedTheFullKey) {
  ServiceOptions so;
  so.api_key = "full-secret";
  so.read_only_api_key = "read-secret";
  open(so);
  const std::vector<std::pair<std::string, std::string>> full = {{"api-key", "full-secret"}};
  const std::vector<std::pair<std::string, std::string>> read = {{"api-key", "read-secret"}};
  ASSERT_EQ(call(Method::kPut, "/collections/c", json{{"vectors", {{"size", 4}, {"distance", "Dot"}}}}, full).status,
            200);
  json pts = json::array();
  for (int i = 0; i < 10; ++i) pts.push_back({{"id", i}, {"vector", {i, 1, i % 3, 1}}});
  ASSERT_EQ(call(Method::kPut, "/collections/c/points", json{{"points", pts}}, full).status, 200);
  const json set_body = {{"strategy", "ids"}, {"ids", {1, 2, 3}}};
  fails(403, Method::kPut, "/collections/c/anchors", set_body, read);
  fails(403, Method::kPost, "/collections/c/anchors", set_body, read);
  fails(404, Method::kGet, "/collections/c/anchors", nullptr, read);
  ASSERT_EQ(call(Method::kPut, "/collections/c/anchors", set_body, full).status, 200);
  EXPECT_EQ(call(Method::kGet, "/collections/c/anchors", nullptr, read).status, 200);
  const json model_body = {{"vectors", {{1, 0}, {0, 1}, {1, 1}}}};
  fails(403, Method::kPut, "/collections/c/models/m", model_body, read);
  ASSERT_EQ(call(Method::kPut, "/collections/c/models/m", model_body, full).status, 200);
  EXPECT_EQ(call(Method::kGet, "/collections/c/models", nullptr, read).status, 200);
  EXPECT_EQ(call(Method::kGet, "/collections/c/models/m", nullptr, read).status, 200);
  EXPECT_EQ(call(Method::kPost, "/collections/c/points/query", json{{"query", {1, 0}}, {"using", "m"}}, read).status,
            200);
  fails(403, Method::kDelete, "/collections/c/models/m", nullptr, read);
  fails(403, Method::kDelete, "/collections/c/anchors", nullptr, read);
  fails(401, Method::kGet, "/collections/c/anchors");
  EXPECT_EQ(call(Method::kDelete, "/collections/c/anchors", nullptr, full).status, 200);
}

TEST(ServerConfig, FileEnvironmentAndValidation) {
  testing::TempDir dir("vecstash-config");
  std::filesystem::create_directories(dir.path());
  const std::string file = (dir.path() / "c.json").string();
  {
    std::ofstream out(file);
    out << R"({"port": 7000, "data_dir": "/tmp/x", "max_limit": 100, "sync_writes": false, "api_key": "k1"})";
  }
  ServerConfig c;
  ASSERT_TRUE(apply_config_file(file, &c).is_ok());
  EXPECT_EQ(c.port, 7000);
  EXPECT_EQ(c.data_dir, "/tmp/x");
  EXPECT_EQ(c.limits.max_limit, 100u);
  EXPECT_FALSE(c.sync_writes);
  std::map<std::string, std::string> env = {
      {"VECSTASH_PORT", "7001"}, {"VECSTASH_SYNC_WRITES", "yes"}, {"VECSTASH_READ_ONLY_API_KEY", "k2"}};
  auto getenv = [&env](const char* name) -> const char* {
    const auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  ASSERT_TRUE(apply_environment(&c, getenv).is_ok());
  EXPECT_EQ(c.port, 7001);
  EXPECT_TRUE(c.sync_writes);
  EXPECT_EQ(c.read_only_api_key, "k2");
  EXPECT_TRUE(validate(c).is_ok());
  for (const std::string& line : describe(c)) EXPECT_EQ(line.find("k1"), std::string::npos) << "keys are masked";

  env = {{"VECSTASH_PORT", "70000"}};
  EXPECT_FALSE(apply_environment(&c, getenv).is_ok());
  env = {{"VECSTASH_IO_THREADS", "two"}};
  EXPECT_FALSE(apply_environment(&c, getenv).is_ok());
  {
    std::ofstream out(file);
    out << R"({"prot": 1})";
  }
  EXPECT_FALSE(apply_config_file(file, &c).is_ok());
  {
    std::ofstream out(file);
    out << R"({"port": "1"})";
  }
  EXPECT_FALSE(apply_config_file(file, &c).is_ok());
  EXPECT_FALSE(apply_config_file((dir.path() / "missing.json").string(), &c).is_ok());
  ServerConfig same;
  same.api_key = same.read_only_api_key = "k";
  EXPECT_FALSE(validate(same).is_ok());
  same.read_only_api_key = "";
  same.log_level = "loud";
  EXPECT_FALSE(validate(same).is_ok());
}

}  // namespace
}  // namespace vecstash::api
