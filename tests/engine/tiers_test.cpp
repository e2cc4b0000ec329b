// Memory tiers of a collection: originals and payloads on disk or in RAM give the same answers, the
// memory report follows the tiers, reopening reads the rows file, the RAM arrays grow without
// copying, and directories written by earlier releases are migrated on open.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "mapped_array.h"
#include "testing/random_data.h"
#include "testing/temp_dir.h"
#include "vecstash/common/blob.h"
#include "vecstash/engine/engine.h"
#include "vecstash/engine/filter.h"
#include "vecstash/storage/keys.h"
#include "vecstash/storage/row_file.h"
#include "vecstash/storage/store.h"

namespace vecstash::engine {
namespace {

using nlohmann::json;
using testing::Matrix;
using testing::TempDir;

constexpr std::size_t kDim = 24;

std::unique_ptr<Engine> open_engine(const std::filesystem::path& dir) {
  EngineOptions o;
  o.threads = 2;
  auto e = Engine::open(dir, o);
  EXPECT_TRUE(e.is_ok()) << e.status().to_string();
  return e.is_ok() ? std::move(e).value() : nullptr;
}

json payload_of(std::size_t i) {
  return json{{"group", "g" + std::to_string(i % 7)}, {"n", i}, {"text", "point number " + std::to_string(i)}};
}

// 1,200 clustered points with payloads, ids 0..1199; then 150 replaced (new vectors) and 100 deleted.
struct Loaded {
  Matrix base;  // the vectors as they stand after the replacements
  std::set<std::uint64_t> deleted;
};

Loaded load(Collection& c, std::uint64_t seed) {
  Loaded out;
  out.base = testing::clustered_rows(1200, kDim, seed, 16, 0.5f, 0.6f);
  std::vector<PointInput> pts(out.base.rows);
  std::vector<json> payloads(out.base.rows);
  for (std::size_t i = 0; i < out.base.rows; ++i) {
    payloads[i] = payload_of(i);
    pts[i] = {PointId::number(i), {out.base.row(i), kDim}, payloads[i]};
  }
  for (std::size_t b = 0; b < pts.size(); b += 100) {
    EXPECT_TRUE(c.upsert({pts.data() + b, std::min<std::size_t>(100, pts.size() - b)}).is_ok());
  }
  const Matrix fresh = testing::clustered_rows(150, kDim, seed + 1, 16, 0.5f, 0.6f);
  std::vector<PointInput> again(150);
  std::vector<json> pl(150);
  for (std::size_t i = 0; i < 150; ++i) {
    const std::size_t id = i * 8;
    std::copy_n(fresh.row(i), kDim, out.base.row(id));
    pl[i] = json{{"group", "replaced"}, {"n", id}};
    again[i] = {PointId::number(id), {out.base.row(id), kDim}, pl[i]};
  }
  EXPECT_TRUE(c.upsert(again).is_ok());
  std::vector<PointId> gone;
  for (std::size_t i = 0; i < 100; ++i) {
    gone.push_back(PointId::number(i * 11 + 3));
    out.deleted.insert(i * 11 + 3);
  }
  EXPECT_EQ(c.erase(gone).value(), 100u);
  return out;
}

std::vector<std::vector<ScoredPoint>> search_all(const Collection& c, const Matrix& q, const Filter* filter,
                                                 bool with_everything) {
  SearchRequest req;
  req.queries = {q.data.data(), q.data.size()};
  req.nq = q.rows;
  req.limit = 10;
  req.filter = filter;
  req.with_payload = with_everything;
  req.with_vector = with_everything;
  auto r = c.search(req);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<std::vector<ScoredPoint>>{};
}

void expect_same(const std::vector<std::vector<ScoredPoint>>& a, const std::vector<std::vector<ScoredPoint>>& b,
                 const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size()) << what << " query " << i;
    for (std::size_t j = 0; j < a[i].size(); ++j) {
      EXPECT_EQ(a[i][j].id, b[i][j].id) << what << " query " << i << " rank " << j;
      EXPECT_NEAR(a[i][j].score, b[i][j].score, 1e-5) << what;
      EXPECT_EQ(a[i][j].payload, b[i][j].payload) << what;
      ASSERT_EQ(a[i][j].vector.has_value(), b[i][j].vector.has_value()) << what;
      if (a[i][j].vector) {
        for (std::size_t k = 0; k < kDim; ++k) EXPECT_FLOAT_EQ((*a[i][j].vector)[k], (*b[i][j].vector)[k]) << what;
      }
    }
  }
}

CollectionConfig config(bool originals_in_ram, bool payloads_in_ram) {
  CollectionConfig c;
  c.dim = kDim;
  c.metric = Metric::kCos;
  c.codec.kind = CodeKind::kI8;
  c.calibration_sample = 300;
  c.originals_in_ram = originals_in_ram;
  c.payloads_in_ram = payloads_in_ram;
  return c;
}

TEST(Tiers, DiskAndRamTiersGiveTheSameAnswersBeforeAndAfterRestart) {
  TempDir dir;
  const Matrix queries = testing::clustered_rows(25, kDim, 99, 16, 0.5f, 0.6f);
  auto filter = Filter::parse(json::parse(R"({"must":[{"key":"group","match":{"any":["g1","g3","replaced"]}}]})"));
  ASSERT_TRUE(filter.is_ok());
  std::vector<std::vector<std::vector<ScoredPoint>>> answers;
  std::vector<std::size_t> counts;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    int which = 0;
    for (const bool originals_in_ram : {false, true}) {
      for (const bool payloads_in_ram : {false, true}) {
        auto c = engine->create_collection("t" + std::to_string(which++), config(originals_in_ram, payloads_in_ram));
        ASSERT_TRUE(c.is_ok()) << c.status().to_string();
        const Loaded loaded = load(**c, 5);
        answers.push_back(search_all(**c, queries, nullptr, true));
        answers.push_back(search_all(**c, queries, &*filter, true));
        counts.push_back((*c)->count(&*filter).value());
        const MemoryUsage m = (*c)->memory_usage();
        // The originals are in RAM only with originals_in_ram; the codes always are.
        if (originals_in_ram) {
          EXPECT_GE(m.originals, 1350u * kDim * 4) << "1,200 + 150 rows of originals";
        } else {
          EXPECT_EQ(m.originals, 0u);
        }
        EXPECT_GE(m.codes, 1350u * kDim);
        if (payloads_in_ram) {
          EXPECT_GT(m.payloads, 1100u * 20);
        } else {
          EXPECT_EQ(m.payloads, 0u);
        }
      }
    }
    for (std::size_t i = 2; i < answers.size(); ++i)
      expect_same(answers[i % 2], answers[i], "tier " + std::to_string(i));
    for (std::size_t i = 1; i < counts.size(); ++i) EXPECT_EQ(counts[0], counts[i]);
  }
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  for (int which = 0; which < 4; ++which) {
    auto c = engine->collection("t" + std::to_string(which));
    ASSERT_TRUE(c.is_ok());
    EXPECT_EQ((*c)->count(), 1100u);
    expect_same(answers[0], search_all(**c, queries, nullptr, true), "reopened, no filter");
    expect_same(answers[1], search_all(**c, queries, &*filter, true), "reopened, filtered");
  }
}

TEST(Tiers, RescoringFromDiskFindsTheFloat32Neighbours) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("r", config(false, false));
  ASSERT_TRUE(c.is_ok());
  const Loaded loaded = load(**c, 11);
  auto report = (*c)->evaluate_compression(200, 10);
  ASSERT_TRUE(report.is_ok()) << report.status().to_string();
  ASSERT_TRUE(report->recall_rescored.has_value());
  EXPECT_GE(*report->recall_rescored, 0.99) << "rescoring reads the originals from disk";
  ASSERT_TRUE(report->recall_codes.has_value());
  EXPECT_GE(*report->recall_codes, 0.85) << "int8 codes alone (integer scan, exact code scores)";
}

TEST(Tiers, CompactionAndRecalibrationKeepDiskOriginals) {
  TempDir dir;
  const Matrix queries = testing::clustered_rows(20, kDim, 77, 16, 0.5f, 0.6f);
  std::vector<std::vector<ScoredPoint>> before;
  {
    auto engine = open_engine(dir.path());
    ASSERT_TRUE(engine);
    auto c = engine->create_collection("k", config(false, false));
    ASSERT_TRUE(c.is_ok());
    load(**c, 21);
    (*c)->wait_for_recalibration();
    before = search_all(**c, queries, nullptr, true);
    ASSERT_TRUE((*c)->compact().is_ok());
    EXPECT_EQ((*c)->info().rows, 1100u);
    expect_same(before, search_all(**c, queries, nullptr, true), "after compaction");
    ASSERT_TRUE((*c)->start_recalibration().is_ok());
    (*c)->wait_for_recalibration();
    EXPECT_EQ((*c)->recalibration_progress().state, RecalibrationState::kDone);
    before = search_all(**c, queries, nullptr, true);
  }
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->collection("k");
  ASSERT_TRUE(c.is_ok());
  expect_same(before, search_all(**c, queries, nullptr, true), "recalibrated and compacted, reopened");
  // Only the files of the current generation and epoch are left.
  std::size_t files = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir.path() / "collections")) {
    if (e.is_regular_file()) ++files;
  }
  EXPECT_EQ(files, 2u) << "one rows file and one originals file";
}

TEST(Tiers, DroppedCollectionsLeaveNoFiles) {
  TempDir dir;
  auto engine = open_engine(dir.path());
  ASSERT_TRUE(engine);
  auto c = engine->create_collection("d", config(false, false));
  ASSERT_TRUE(c.is_ok());
  load(**c, 31);
  ASSERT_TRUE(engine->drop_collection("d").is_ok());
  EXPECT_TRUE(std::filesystem::is_empty(dir.path() / "collections"));
}

TEST(MappedArrayTest, GrowsWithoutLosingDataAndGivesPagesBack) {
  MappedArray<std::uint32_t> a;
  std::mt19937 rng(3);
  std::vector<std::uint32_t> ref;
  for (int step = 0; step < 200; ++step) {
    const std::size_t n = ref.size() + rng() % 50000;
    a.resize(n);
    for (std::size_t i = ref.size(); i < n; ++i) ASSERT_EQ(a[i], 0u) << "new elements are zero";
    ref.resize(n);
    for (std::size_t i = 0; i < 64 && n > 0; ++i) {
      const std::size_t at = rng() % n;
      a[at] = ref[at] = static_cast<std::uint32_t>(rng());
    }
    if (step % 50 == 49) {  // shrink, then grow again: the dropped part reads as zero
      const std::size_t m = n / 3;
      a.resize(m);
      ref.resize(m);
      a.resize(n);
      ref.resize(n);
    }
  }
  ASSERT_EQ(a.size(), ref.size());
  EXPECT_TRUE(std::equal(ref.begin(), ref.end(), a.begin()));
  EXPECT_LE(a.memory_bytes(), ref.size() * 4 + 4096);
  MappedArray<std::uint32_t> moved = std::move(a);
  EXPECT_EQ(a.size(), 0u);
  EXPECT_TRUE(std::equal(ref.begin(), ref.end(), moved.begin()));
}

// ---- the layout of earlier releases ----------------------------------------------------------------

std::string u64_be(std::uint64_t v) {
  std::string s;
  storage::append_u64_be(s, v);
  return s;
}
std::string u32_be(std::uint32_t v) {
  std::string s;
  storage::append_u32_be(s, v);
  return s;
}

// Rewrites collection `name` of `from` as an earlier release stored it (one record per point for the
// id's row, the code and the original; a v1 state record) into a new database at `to`.
void write_legacy_copy(const std::filesystem::path& from, const std::filesystem::path& to, bool calibrated) {
  auto src = storage::Store::open(from);
  ASSERT_TRUE(src.is_ok());
  auto dst = storage::Store::open(to);
  ASSERT_TRUE(dst.is_ok());
  storage::WriteBatch batch;
  std::uint32_t cid = 0;
  std::string state;
  ASSERT_TRUE((*src)
                  ->scan(storage::Column::kMeta, "",
                         [&](std::string_view k, std::string_view v) {
                           if (k.starts_with("state/")) {
                             cid = 0;
                             for (char ch : k.substr(6, 4)) cid = (cid << 8) | static_cast<unsigned char>(ch);
                             state = v;
                             return true;
                           }
                           batch.put(storage::Column::kMeta, k, v);  // config, next id, calibration
                           return true;
                         })
                  .is_ok());
  ASSERT_NE(cid, 0u);
  const auto state_bytes = std::vector<std::uint8_t>(state.begin(), state.end());
  BlobReader r(state_bytes, "state");
  std::uint16_t version = 0;
  std::uint32_t generation = 0;
  std::uint64_t epoch = 0, rows = 0;
  ASSERT_TRUE(r.open("VSST", 2, &version).is_ok());
  ASSERT_TRUE(r.u32(&generation).is_ok());
  ASSERT_TRUE(r.u64(&epoch).is_ok());
  ASSERT_TRUE(r.u64(&rows).is_ok());
  ASSERT_EQ(calibrated, generation > 0);
  if (calibrated) {
    BlobWriter w("VSST", 1);
    w.u32(generation);
    w.u64(epoch);
    const auto b = w.finish();
    batch.put(storage::Column::kMeta, "state/" + u32_be(cid), std::string(b.begin(), b.end()));
  }
  // Rows: read the rows file (id key, code, norm) and the originals file; skip dead rows.
  std::set<std::uint64_t> dead;
  std::string mark_prefix = u32_be(cid) + "D" + u64_be(epoch);
  ASSERT_TRUE((*src)
                  ->scan(storage::Column::kRowMarks, mark_prefix,
                         [&](std::string_view k, std::string_view) {
                           dead.insert(*storage::read_u64_be(k, mark_prefix.size()));
                           return true;
                         })
                  .is_ok());
  const auto cdir = from / "collections" / [&] {
    char name[9];
    std::snprintf(name, sizeof name, "%08x", cid);
    return std::string(name);
  }();
  const std::size_t cs = calibrated ? kDim : 0;  // i8 codes of a cosine collection: no norms
  auto rows_file =
      storage::RowFile::open(cdir / ("rows-g" + std::to_string(generation) + "-e" + std::to_string(epoch) + ".vsr"),
                             17 + cs, "rows c" + std::to_string(cs) + " n0");
  ASSERT_TRUE(rows_file.is_ok()) << rows_file.status().to_string();
  auto originals = storage::RowFile::open(cdir / ("originals-e" + std::to_string(epoch) + ".vsr"), kDim * 4,
                                          "f32 x" + std::to_string(kDim));
  ASSERT_TRUE(originals.is_ok()) << originals.status().to_string();
  std::vector<std::uint8_t> rec(17 + cs), vec(kDim * 4);
  for (std::uint64_t row = 0; row < rows; ++row) {
    if (dead.count(row)) continue;
    ASSERT_TRUE((*rows_file)->read(row, rec).is_ok());
    ASSERT_TRUE((*originals)->read(row, vec).is_ok());
    const std::string id_key(reinterpret_cast<const char*>(rec.data()), 17);
    // Earlier releases left rows sparse: keep the row numbers (times 2, so that migration renumbers).
    batch.put(storage::Column::kIds, u32_be(cid) + id_key, u64_be(row * 2));
    if (calibrated) {
      batch.put(storage::Column::kCodes, u32_be(cid) + u32_be(generation) + id_key,
                std::string(reinterpret_cast<const char*>(rec.data() + 17), cs));
    }
    batch.put(storage::Column::kOriginals, u32_be(cid) + id_key,
              std::string(reinterpret_cast<const char*>(vec.data()), vec.size()));
  }
  ASSERT_TRUE((*src)
                  ->scan(storage::Column::kPayloads, "",
                         [&](std::string_view k, std::string_view v) {
                           batch.put(storage::Column::kPayloads, k, v);
                           return true;
                         })
                  .is_ok());
  ASSERT_TRUE((*dst)->write(batch).is_ok());
}

TEST(Migration, EarlierLayoutsOpenWithTheSameAnswers) {
  const Matrix queries = testing::clustered_rows(20, kDim, 55, 16, 0.5f, 0.6f);
  for (const bool calibrated : {true, false}) {
    TempDir now, legacy;
    std::vector<std::vector<ScoredPoint>> before;
    {
      auto engine = open_engine(now.path());
      ASSERT_TRUE(engine);
      CollectionConfig cfg = config(false, false);
      if (!calibrated) cfg.calibration_sample = 100000;
      auto c = engine->create_collection("old", cfg);
      ASSERT_TRUE(c.is_ok());
      load(**c, 41);
      (*c)->wait_for_recalibration();
      before = search_all(**c, queries, nullptr, true);
    }
    write_legacy_copy(now.path(), legacy.path(), calibrated);
    {
      auto engine = open_engine(legacy.path());
      ASSERT_TRUE(engine);
      auto c = engine->collection("old");
      ASSERT_TRUE(c.is_ok());
      EXPECT_EQ((*c)->count(), 1100u);
      EXPECT_EQ((*c)->info().rows, 1100u) << "renumbered densely";
      expect_same(before, search_all(**c, queries, nullptr, true), calibrated ? "migrated" : "migrated, uncalibrated");
    }
    // The old records are gone, and a second open reads the new layout.
    auto store = storage::Store::open(legacy.path());
    ASSERT_TRUE(store.is_ok());
    for (auto column : {storage::Column::kIds, storage::Column::kCodes, storage::Column::kOriginals}) {
      bool any = false;
      ASSERT_TRUE(
          (*store)->scan(column, "", [&](std::string_view, std::string_view) { return !(any = true); }).is_ok());
      EXPECT_FALSE(any);
    }
    store->reset();
    auto engine = open_engine(legacy.path());
    ASSERT_TRUE(engine);
    auto c = engine->collection("old");
    ASSERT_TRUE(c.is_ok());
    expect_same(before, search_all(**c, queries, nullptr, true), "migrated, reopened");
  }
}

}  // namespace
}  // namespace vecstash::engine
