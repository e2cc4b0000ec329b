#include "vecstash/storage/store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <thread>

#include "testing/kill_writer.h"
#include "testing/temp_dir.h"
#include "vecstash/storage/keys.h"
#include "vecstash/storage/row_file.h"

namespace vecstash::storage {
namespace {

namespace fs = std::filesystem;

using testing::TempDir;

std::unique_ptr<Store> open_ok(const fs::path& p, StoreOptions o = {}) {
  auto s = Store::open(p, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(s).value() : nullptr;
}

std::string u64_key(std::uint64_t v) {
  std::string k;
  append_u64_be(k, v);
  return k;
}

TEST(Store, PersistsEveryColumnAcrossReopen) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_TRUE(store);
    for (int c = 0; c < kColumnCount; ++c)
      ASSERT_TRUE(store->put(static_cast<Column>(c), "key", std::string(column_name(static_cast<Column>(c)))).is_ok());
  }
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store);
  for (int c = 0; c < kColumnCount; ++c) {
    auto v = store->get(static_cast<Column>(c), "key");
    ASSERT_TRUE(v.is_ok());
    ASSERT_TRUE(v->has_value());
    EXPECT_EQ(**v, column_name(static_cast<Column>(c)));  // columns are separate key spaces
  }
  auto missing = store->get(Column::kCodes, "absent");
  ASSERT_TRUE(missing.is_ok());
  EXPECT_FALSE(missing->has_value());
}

TEST(Store, BatchIsAppliedAtomicallyAndSurvivesReopen) {
  TempDir dir;
  {
    auto store = open_ok(dir.path());
    ASSERT_TRUE(store->put(Column::kPayloads, u64_key(7), "old").is_ok());
    WriteBatch b;
    for (std::uint64_t i = 0; i < 100; ++i) {
      b.put(Column::kCodes, u64_key(i), std::string(16, static_cast<char>(i)));
      b.put(Column::kIds, u64_key(i), "id" + std::to_string(i));
    }
    b.erase(Column::kPayloads, u64_key(7));
    EXPECT_EQ(b.count(), 201u);
    ASSERT_TRUE(store->write(b).is_ok());
  }
  auto store = open_ok(dir.path());
  std::size_t codes = 0;
  ASSERT_TRUE(store
                  ->scan(Column::kCodes, "",
                         [&](std::string_view, std::string_view v) {
                           EXPECT_EQ(v.size(), 16u);
                           ++codes;
                           return true;
                         })
                  .is_ok());
  EXPECT_EQ(codes, 100u);
  EXPECT_FALSE(store->get(Column::kPayloads, u64_key(7))->has_value());
  EXPECT_EQ(**store->get(Column::kIds, u64_key(42)), "id42");
}

TEST(Store, ScanIsInNumericOrderWithinAPrefixAndCanStop) {
  TempDir dir;
  auto store = open_ok(dir.path(), {.durability = Durability::kRelaxed});
  std::vector<std::uint64_t> ids(500);
  std::mt19937_64 rng(5);
  for (auto& v : ids) v = rng();
  WriteBatch b;
  for (std::uint64_t id : ids) {
    std::string key;
    append_u32_be(key, 1);  // collection 1
    append_u64_be(key, id);
    b.put(Column::kCodes, key, "x");
    std::string other;
    append_u32_be(other, 2);  // collection 2 must not appear in collection 1's scan
    append_u64_be(other, id);
    b.put(Column::kCodes, other, "y");
  }
  ASSERT_TRUE(store->write(b).is_ok());
  std::string prefix;
  append_u32_be(prefix, 1);
  std::vector<std::uint64_t> seen;
  ASSERT_TRUE(store
                  ->scan(Column::kCodes, prefix,
                         [&](std::string_view k, std::string_view v) {
                           EXPECT_EQ(v, "x");
                           seen.push_back(*read_u64_be(k, 4));
                           return true;
                         })
                  .is_ok());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(seen, ids);
  std::size_t visited = 0;
  ASSERT_TRUE(
      store->scan(Column::kCodes, prefix, [&](std::string_view, std::string_view) { return ++visited < 3; }).is_ok());
  EXPECT_EQ(visited, 3u);
  // Dropping collection 1 removes its keys only.
  std::string end;
  append_u32_be(end, 2);
  ASSERT_TRUE(store->erase_range(Column::kCodes, prefix, end).is_ok());
  std::size_t left = 0;
  ASSERT_TRUE(store->scan(Column::kCodes, "", [&](std::string_view, std::string_view) { return ++left > 0; }).is_ok());
  EXPECT_EQ(left, ids.size());
}

TEST(Store, OpenErrorsNameThePath) {
  TempDir dir;
  fs::create_directories(dir.path());
  const fs::path file = dir.path() / "plain-file";
  std::ofstream(file) << "not a database";
  auto s = Store::open(file);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("plain-file"), std::string::npos);

  auto absent = Store::open(dir.path() / "nothing", {.create_if_missing = false});
  ASSERT_FALSE(absent.is_ok());
  EXPECT_EQ(absent.status().code(), StatusCode::kNotFound);

  // A second handle on an open database is refused (RocksDB's lock), not corrupting anything.
  const fs::path db = dir.path() / "db";
  auto first = open_ok(db);
  ASSERT_TRUE(first->put(Column::kMeta, "k", "v").is_ok());
  auto second = Store::open(db);
  ASSERT_FALSE(second.is_ok());
  EXPECT_NE(second.status().message().find(db.string()), std::string::npos) << second.status().message();
  EXPECT_EQ(**first->get(Column::kMeta, "k"), "v");
}

TEST(Store, ConcurrentWritersAndReaders) {
  TempDir dir;
  auto store = open_ok(dir.path(), {.durability = Durability::kRelaxed});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::uint64_t i = 0; i < 200; ++i) {
        WriteBatch b;
        b.put(Column::kCodes, u64_key(t * 1000 + i), "c");
        b.put(Column::kIds, u64_key(t * 1000 + i), "i");
        ASSERT_TRUE(store->write(b).is_ok());
        // A reader never sees one half of a batch without the other.
        auto v = store->get(Column::kIds, u64_key(t * 1000 + i));
        ASSERT_TRUE(v.is_ok() && v->has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::size_t n = 0;
  ASSERT_TRUE(store->scan(Column::kCodes, "", [&](std::string_view, std::string_view) { return ++n > 0; }).is_ok());
  EXPECT_EQ(n, 800u);
}

// A child process writes synced batches and reports each acknowledged one through a pipe; the test
// kills it with SIGKILL at varying moments and checks that every acknowledged batch is complete after
// reopening (and that no batch is half-applied).
TEST(StoreCrash, AcknowledgedWritesSurviveKill9) {
  for (int round = 0; round < 6; ++round) {
    TempDir dir;
    const auto killed = testing::run_and_kill(
        [&](int fd) {
          auto store = Store::open(dir.path());
          if (!store.is_ok()) _exit(2);
          for (std::uint64_t i = 0;; ++i) {
            WriteBatch b;
            b.put(Column::kCodes, u64_key(i), std::string(64, 'c'));
            b.put(Column::kIds, u64_key(i), std::to_string(i));
            if (!(*store)->write(b).is_ok()) _exit(3);
            if (write(fd, &i, sizeof i) != static_cast<ssize_t>(sizeof i)) _exit(4);
          }
        },
        // A different running time each round before the kill.
        std::chrono::milliseconds(5 + 30 * round));
    ASSERT_TRUE(killed.error.empty()) << "round " << round << ": " << killed.error;
    const std::uint64_t last = killed.last;

    auto store = open_ok(dir.path());
    ASSERT_TRUE(store);
    std::uint64_t codes = 0, ids = 0;
    ASSERT_TRUE(
        store->scan(Column::kCodes, "", [&](std::string_view, std::string_view) { return ++codes > 0; }).is_ok());
    ASSERT_TRUE(store->scan(Column::kIds, "", [&](std::string_view, std::string_view) { return ++ids > 0; }).is_ok());
    EXPECT_GE(codes, last + 1) << "acknowledged batches lost in round " << round;
    EXPECT_EQ(codes, ids) << "a half-applied batch in round " << round;
    for (std::uint64_t i = 0; i <= last; i += std::max<std::uint64_t>(1, last / 50)) {
      auto v = store->get(Column::kIds, u64_key(i));
      ASSERT_TRUE(v.is_ok() && v->has_value()) << "batch " << i << " of " << last;
      EXPECT_EQ(**v, std::to_string(i));
    }
  }
}

TEST(Store, RangeDeletesInABatchMultiGetAndMemory) {
  TempDir dir;
  auto store = open_ok(dir.path());
  ASSERT_TRUE(store);
  WriteBatch fill;
  for (std::uint64_t i = 0; i < 100; ++i) fill.put(Column::kRowMarks, u64_key(i), "v" + std::to_string(i));
  ASSERT_TRUE(store->write(fill).is_ok());
  WriteBatch cut;
  cut.erase_range(Column::kRowMarks, u64_key(10), u64_key(90));
  cut.put(Column::kRowMarks, u64_key(50), "back");  // after the range delete in the same batch: kept
  ASSERT_TRUE(store->write(cut).is_ok());
  std::vector<std::string> keys = {u64_key(5), u64_key(10), u64_key(50), u64_key(89), u64_key(90), u64_key(1000)};
  auto got = store->multi_get(Column::kRowMarks, keys);
  ASSERT_TRUE(got.is_ok()) << got.status().to_string();
  ASSERT_EQ(got->size(), keys.size());
  EXPECT_EQ((*got)[0], std::optional<std::string>("v5"));
  EXPECT_FALSE((*got)[1].has_value());
  EXPECT_EQ((*got)[2], std::optional<std::string>("back"));
  EXPECT_FALSE((*got)[3].has_value());
  EXPECT_EQ((*got)[4], std::optional<std::string>("v90"));
  EXPECT_FALSE((*got)[5].has_value());
  const StoreMemory m = store->memory();
  EXPECT_GT(m.memtables, 0u) << "unflushed writes are counted";
  EXPECT_LT(m.total(), std::size_t{64} << 20) << "bounded by the 32 MiB cache and its memtables";
}

// ---- RowFile -------------------------------------------------------------------------------------

TEST(RowFileTest, WritesReadsAndChecksItsHeader) {
  TempDir dir;
  fs::create_directories(dir.path());
  const fs::path path = dir.path() / "rows.vsr";
  {
    auto f = RowFile::create(path, 12, "test x3");
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    std::vector<std::uint8_t> recs(12 * 100);
    for (std::size_t i = 0; i < recs.size(); ++i) recs[i] = static_cast<std::uint8_t>(i * 7);
    ASSERT_TRUE((*f)->write(0, recs).is_ok());
    ASSERT_TRUE((*f)->write(100, {recs.data(), 12}).is_ok());
    EXPECT_EQ((*f)->write(3, {recs.data(), 5}).code(), StatusCode::kInternal) << "a partial record";
    ASSERT_TRUE((*f)->sync().is_ok());
    EXPECT_EQ((*f)->rows_on_disk(), 101u);
    std::vector<std::size_t> rows = {99, 3, 4, 5, 3, 0, 100};
    std::vector<std::uint8_t> out(rows.size() * 12);
    ASSERT_TRUE((*f)->read_rows(rows, out.data()).is_ok());
    for (std::size_t i = 0; i < rows.size(); ++i) {
      const std::size_t src = rows[i] == 100 ? 0 : rows[i];
      EXPECT_TRUE(std::equal(out.begin() + i * 12, out.begin() + (i + 1) * 12, recs.begin() + src * 12)) << i;
    }
    std::vector<std::uint8_t> past(12);
    EXPECT_EQ((*f)->read(101, past).code(), StatusCode::kCorruption) << "past the end";
    ASSERT_TRUE((*f)->truncate(50).is_ok());
    EXPECT_EQ((*f)->rows_on_disk(), 50u);
  }
  auto again = RowFile::open(path, 12, "test x3");
  ASSERT_TRUE(again.is_ok()) << again.status().to_string();
  EXPECT_EQ((*again)->rows_on_disk(), 50u);
  EXPECT_EQ(RowFile::open(path, 16, "test x3").status().code(), StatusCode::kCorruption) << "other record size";
  EXPECT_EQ(RowFile::open(path, 12, "test x4").status().code(), StatusCode::kCorruption) << "other records";
  EXPECT_EQ(RowFile::open(dir.path() / "missing", 12, "t").status().code(), StatusCode::kNotFound);
  {
    std::fstream damage(path, std::ios::in | std::ios::out | std::ios::binary);
    damage.seekp(9);
    damage.put('\x55');
  }
  EXPECT_EQ(RowFile::open(path, 12, "test x3").status().code(), StatusCode::kCorruption) << "damaged header";
  EXPECT_EQ((fs::status(path).permissions() & fs::perms::others_read), fs::perms::none) << "created 0600";
}

TEST(RowFileTest, AtomicFileWritesReplaceWholly) {
  TempDir dir;
  fs::create_directories(dir.path());
  const fs::path path = dir.path() / "snapshot";
  const std::vector<std::uint8_t> a(1000, 1), b(10, 2);
  ASSERT_TRUE(write_file_atomically(path, a).is_ok());
  ASSERT_TRUE(write_file_atomically(path, b).is_ok());
  auto read = read_whole_file(path);
  ASSERT_TRUE(read.is_ok());
  EXPECT_EQ(*read, std::string(10, '\x02'));
  EXPECT_FALSE(fs::exists(dir.path() / "snapshot.tmp"));
  EXPECT_EQ(read_whole_file(dir.path() / "none").status().code(), StatusCode::kNotFound);
}

TEST(Keys, BigEndianHelpers) {
  EXPECT_LT(u64_key(1), u64_key(256));
  EXPECT_EQ(read_u64_be(u64_key(0x0102030405060708ull)), 0x0102030405060708ull);
  EXPECT_FALSE(read_u64_be("short").has_value());
  EXPECT_EQ(prefix_end("ab"), "ac");
  EXPECT_EQ(prefix_end(std::string("a\xff", 2)), "b");
  EXPECT_EQ(prefix_end(std::string("\xff\xff", 2)), "");
}

}  // namespace
}  // namespace vecstash::storage
