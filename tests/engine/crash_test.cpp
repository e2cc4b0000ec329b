// Kill -9 during a stream of acknowledged upserts: every acknowledged point must be present, with
// its vector and payload, after the engine reopens, and no batch may be half-applied. The child
// crosses calibration during the stream, so the kill also lands around the calibration switch.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "testing/kill_writer.h"
#include "testing/temp_dir.h"
#include "vecstash/engine/engine.h"
#include "vecstash/engine/filter.h"

namespace vecstash::engine {
namespace {

constexpr std::size_t kDim = 16;
constexpr std::size_t kBatch = 8;

float value_of(std::uint64_t id, std::size_t j) {
  return static_cast<float>((id * 2654435761u + j * 40503u) % 1000) / 1000.0f - 0.5f;
}

[[noreturn]] void run_writer(const std::filesystem::path& dir, int fd) {
  EngineOptions o;
  o.threads = 1;
  auto engine = Engine::open(dir, o);
  if (!engine.is_ok()) _exit(2);
  CollectionConfig cfg;
  cfg.dim = kDim;
  cfg.metric = Metric::kL2;
  cfg.codec.kind = CodeKind::kI8;
  cfg.calibration_sample = 200;
  auto c = (*engine)->create_collection("crash", cfg);
  if (!c.is_ok()) _exit(3);
  std::vector<float> rows(kBatch * kDim);
  for (std::uint64_t b = 0;; ++b) {
    std::vector<PointInput> pts(kBatch);
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::uint64_t id = b * kBatch + i;
      for (std::size_t j = 0; j < kDim; ++j) rows[i * kDim + j] = value_of(id, j);
      pts[i] = {PointId::number(id), {rows.data() + i * kDim, kDim}, nlohmann::json{{"batch", b}}};
    }
    if (!(*c)->upsert(pts).is_ok()) _exit(4);
    // Every fifth batch also deletes the first point of the batch before it.
    if (b % 5 == 4) {
      const PointId gone = PointId::number((b - 1) * kBatch);
      if (!(*c)->erase(std::span<const PointId>(&gone, 1)).is_ok()) _exit(5);
    }
    if (write(fd, &b, sizeof b) != static_cast<ssize_t>(sizeof b)) _exit(6);
  }
}

TEST(EngineCrash, AcknowledgedUpsertsSurviveKill9Repeatedly) {
  int rounds = 8;
  if (const char* env = std::getenv("VECSTASH_CRASH_ROUNDS")) rounds = std::max(1, std::atoi(env));
  std::mt19937 rng(1234);
  for (int round = 0; round < rounds; ++round) {
    testing::TempDir dir("vecstash-crash");
    // Kill at a different moment each round: early ones land around calibration (batch 25).
    const auto killed =
        testing::run_and_kill([&](int fd) { run_writer(dir.path(), fd); }, std::chrono::milliseconds(2 + rng() % 150));
    ASSERT_TRUE(killed.error.empty()) << "round " << round << ": " << killed.error;
    const std::uint64_t last = killed.last;

    auto engine = Engine::open(dir.path());
    ASSERT_TRUE(engine.is_ok()) << "round " << round << ": " << engine.status().to_string();
    auto c = (*engine)->collection("crash");
    ASSERT_TRUE(c.is_ok()) << round;
    const std::size_t n = (*c)->count();
    // Batches 0..last are acknowledged; at most one more may have landed without its ack.
    const std::size_t deleted = (last + 1) / 5;
    EXPECT_GE(n, (last + 1) * kBatch - deleted) << "acknowledged points lost in round " << round;
    EXPECT_LE(n, (last + 2) * kBatch - deleted) << "round " << round;
    std::vector<PointId> ids;
    for (std::uint64_t id = 0; id < (last + 1) * kBatch; ++id) ids.push_back(PointId::number(id));
    auto recs = (*c)->retrieve(ids, true, true);
    ASSERT_TRUE(recs.is_ok());
    // An unacknowledged batch may also have applied its delete (of an acknowledged point).
    const std::size_t maybe_deleted = (last + 1) % 5 == 4 ? 1 : 0;
    EXPECT_LE(recs->size(), (last + 1) * kBatch - deleted) << "round " << round;
    EXPECT_GE(recs->size(), (last + 1) * kBatch - deleted - maybe_deleted) << "round " << round;
    for (const auto& r : *recs) {
      const std::uint64_t id = r.id.lo;
      // The first point of batch b (b % 5 == 3) is deleted while writing batch b + 1.
      if (id / kBatch != last) {
        EXPECT_NE(id % (5 * kBatch), 3 * kBatch) << "a deleted point came back (round " << round << ")";
      }
      ASSERT_EQ(r.vector->size(), kDim);
      for (std::size_t j = 0; j < kDim; ++j) ASSERT_EQ((*r.vector)[j], value_of(id, j)) << "point " << id;
      EXPECT_EQ((*r.payload)["batch"], id / kBatch);
    }
    // Searching finds an acknowledged point exactly.
    std::vector<float> q(kDim);
    for (std::size_t j = 0; j < kDim; ++j) q[j] = value_of(1, j);
    SearchRequest req;
    req.queries = q;
    req.nq = 1;
    req.limit = 1;
    auto res = (*c)->search(req);
    ASSERT_TRUE(res.is_ok());
    ASSERT_EQ((*res)[0].size(), 1u);
    EXPECT_EQ((*res)[0][0].id.lo, 1u);
  }
}

// Payload indexes through kill -9: the writer indexes "batch" and "tag", upserts batches, and after each
// batch re-tags the batch before it (a payload change of rows the index snapshot may already hold). After
// the kill, every filter on the indexed fields must give what the payloads themselves say.
[[noreturn]] void run_indexed_writer(const std::filesystem::path& dir, int fd) {
  EngineOptions o;
  o.threads = 1;
  auto engine = Engine::open(dir, o);
  if (!engine.is_ok()) _exit(2);
  CollectionConfig cfg;
  cfg.dim = kDim;
  cfg.metric = Metric::kL2;
  cfg.codec.kind = CodeKind::kI8;
  cfg.calibration_sample = 200;
  auto c = (*engine)->create_collection("indexed", cfg);
  if (!c.is_ok()) _exit(3);
  if (!(*c)->create_payload_index("batch", "integer").is_ok()) _exit(7);
  if (!(*c)->create_payload_index("tag", "keyword").is_ok()) _exit(7);
  std::vector<float> rows(kBatch * kDim);
  for (std::uint64_t b = 0;; ++b) {
    std::vector<PointInput> pts(kBatch);
    for (std::size_t i = 0; i < kBatch; ++i) {
      const std::uint64_t id = b * kBatch + i;
      for (std::size_t j = 0; j < kDim; ++j) rows[i * kDim + j] = value_of(id, j);
      pts[i] = {PointId::number(id), {rows.data() + i * kDim, kDim}, nlohmann::json{{"batch", b}, {"tag", "new"}}};
    }
    if (!(*c)->upsert(pts).is_ok()) _exit(4);
    if (b > 0) {
      std::vector<PointId> prev;
      for (std::size_t i = 0; i < kBatch; ++i) prev.push_back(PointId::number((b - 1) * kBatch + i));
      if (!(*c)->set_payload(prev, nlohmann::json{{"tag", "old"}}, false).is_ok()) _exit(5);
    }
    // Now and then the engine's own snapshot point: a clean close would write one too.
    if (b % 20 == 19 && !(*c)->snapshot_index().is_ok()) _exit(8);
    if (write(fd, &b, sizeof b) != static_cast<ssize_t>(sizeof b)) _exit(6);
  }
}

TEST(EngineCrash, PayloadIndexesMatchThePayloadsAfterKill9) {
  int rounds = 6;
  if (const char* env = std::getenv("VECSTASH_CRASH_ROUNDS")) rounds = std::max(1, std::atoi(env));
  std::mt19937 rng(77);
  for (int round = 0; round < rounds; ++round) {
    testing::TempDir dir("vecstash-crash-index");
    const auto killed = testing::run_and_kill([&](int fd) { run_indexed_writer(dir.path(), fd); },
                                              std::chrono::milliseconds(50 + rng() % 600));
    ASSERT_TRUE(killed.error.empty()) << "round " << round << ": " << killed.error;
    auto engine = Engine::open(dir.path());
    ASSERT_TRUE(engine.is_ok()) << "round " << round << ": " << engine.status().to_string();
    auto c = (*engine)->collection("indexed");
    ASSERT_TRUE(c.is_ok()) << round;
    ASSERT_EQ((*c)->payload_indexes().size(), 2u) << round;
    ScrollRequest all;
    all.limit = 1000000;
    auto everything = (*c)->scroll(all);
    ASSERT_TRUE(everything.is_ok());
    EXPECT_GE(everything->points.size(), (killed.last + 1) * kBatch) << "acknowledged points lost in round " << round;
    std::map<std::uint64_t, std::size_t> per_batch;
    std::map<std::string, std::size_t> per_tag;
    for (const Record& r : everything->points) {
      ++per_batch[(*r.payload)["batch"].get<std::uint64_t>()];
      ++per_tag[(*r.payload)["tag"].get<std::string>()];
    }
    for (const auto& [batch, n] : per_batch) {
      auto f = Filter::parse(nlohmann::json{{"must", {{{"key", "batch"}, {"match", {{"value", batch}}}}}}});
      ASSERT_TRUE(f.is_ok());
      EXPECT_EQ((*c)->count(&*f).value(), n) << "batch " << batch << ", round " << round;
    }
    for (const char* tag : {"new", "old"}) {
      auto f = Filter::parse(nlohmann::json{{"must", {{{"key", "tag"}, {"match", {{"value", tag}}}}}}});
      ASSERT_TRUE(f.is_ok());
      EXPECT_EQ((*c)->count(&*f).value(), per_tag[tag]) << tag << ", round " << round;
    }
  }
}

}  // namespace
}  // namespace vecstash::engine
