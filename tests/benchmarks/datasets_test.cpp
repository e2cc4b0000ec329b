#include "benchmarks/datasets.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <string>

#include "benchmarks/vecs_io.h"
#include "testing/random_data.h"

namespace vecstash::bench {
namespace {

namespace fs = std::filesystem;

// A fresh directory per test, removed afterwards.
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string(info->test_suite_name()) + "_" + info->name();
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    dir_ = fs::temp_directory_path() / ("vecstash_bench_" + std::to_string(::getpid()) + "_" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path path(const std::string& name) const { return dir_ / name; }

  static void write_bytes(const fs::path& p, const std::vector<unsigned char>& bytes) {
    std::ofstream out(p, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  static std::vector<unsigned char> read_bytes(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  static void write_text(const fs::path& p, const std::string& text) {
    std::ofstream out(p, std::ios::binary);
    out << text;
  }
  // Little-endian int32 appended to a byte buffer.
  static void put_i32(std::vector<unsigned char>& b, std::int32_t v) {
    const auto u = static_cast<std::uint32_t>(v);
    for (int i = 0; i < 4; ++i) b.push_back(static_cast<unsigned char>(u >> (8 * i)));
  }

  fs::path dir_;
};

template <typename T>
Matrix<T> random_matrix(std::size_t rows, std::size_t cols, std::uint64_t seed) {
  Matrix<T> m(rows, cols);
  std::mt19937_64 rng(seed);
  for (auto& v : m.data) {
    if constexpr (std::is_same_v<T, float>) {
      v = std::normal_distribution<float>(0.0f, 3.0f)(rng);
    } else if constexpr (std::is_same_v<T, std::int32_t>) {
      v = static_cast<std::int32_t>(rng() % 2000000) - 1000000;
    } else {
      v = static_cast<T>(rng() & 0xFF);
    }
  }
  return m;
}

// ---- round trips over format x compression x odd dimensions ----

struct RoundTripCase {
  const char* ext;
  std::size_t dim;
};

class VecsRoundTrip : public TempDirTest, public ::testing::WithParamInterface<RoundTripCase> {};

TEST_P(VecsRoundTrip, WritesAndReadsBackExactly) {
  const auto [ext, dim] = GetParam();
  const std::string e(ext);
  const fs::path p = path("data" + e);
  const std::size_t rows = 13;
  if (e.find("fvecs") != std::string::npos) {
    const auto m = random_matrix<float>(rows, dim, 7 + dim);
    ASSERT_TRUE(write_vecs(p, m.view()).is_ok());
    auto back = read_vecs<float>(p);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->rows, rows);
    EXPECT_EQ(back->cols, dim);
    EXPECT_EQ(back->data, m.data);
    auto as_float = read_float_vectors(p);
    ASSERT_TRUE(as_float.is_ok());
    EXPECT_EQ(as_float->data, m.data);
  } else if (e.find("ivecs") != std::string::npos) {
    const auto m = random_matrix<std::int32_t>(rows, dim, 11 + dim);
    ASSERT_TRUE(write_vecs(p, m.view()).is_ok());
    auto back = read_vecs<std::int32_t>(p);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->cols, dim);
    EXPECT_EQ(back->data, m.data);
  } else {
    const auto m = random_matrix<std::uint8_t>(rows, dim, 13 + dim);
    ASSERT_TRUE(write_vecs(p, m.view()).is_ok());
    auto back = read_vecs<std::uint8_t>(p);
    ASSERT_TRUE(back.is_ok()) << back.status().to_string();
    EXPECT_EQ(back->data, m.data);
    auto as_float = read_float_vectors(p);
    ASSERT_TRUE(as_float.is_ok());
    ASSERT_EQ(as_float->data.size(), m.data.size());
    for (std::size_t i = 0; i < m.data.size(); ++i) EXPECT_EQ(as_float->data[i], static_cast<float>(m.data[i]));
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, VecsRoundTrip,
                         ::testing::Values(RoundTripCase{".fvecs", 1}, RoundTripCase{".fvecs", 97},
                                           RoundTripCase{".fvecs.gz", 7}, RoundTripCase{".fvecs.gz", 384},
                                           RoundTripCase{".ivecs", 1}, RoundTripCase{".ivecs.gz", 100},
                                           RoundTripCase{".bvecs", 128}, RoundTripCase{".bvecs.gz", 7}),
                         [](const auto& info) {
                           std::string n = info.param.ext;
                           for (char& c : n) c = (c == '.') ? '_' : c;
                           return n.substr(1) + "_d" + std::to_string(info.param.dim);
                         });

class VecsIo : public TempDirTest {};

TEST_F(VecsIo, PlainFileHasTheTexmexLayout) {
  const float v[2] = {1.5f, -2.0f};
  ASSERT_TRUE(write_vecs(path("a.fvecs"), MatrixView<const float>(v, 1, 2)).is_ok());
  const auto bytes = read_bytes(path("a.fvecs"));
  ASSERT_EQ(bytes.size(), 12u);
  EXPECT_EQ(bytes[0], 2);  // int32 dimension, little-endian
  EXPECT_EQ(bytes[1] | bytes[2] | bytes[3], 0);
  float back[2];
  std::memcpy(back, bytes.data() + 4, 8);
  EXPECT_EQ(back[0], 1.5f);
  EXPECT_EQ(back[1], -2.0f);
}

TEST_F(VecsIo, GzipFileIsCompressed) {
  const auto m = random_matrix<float>(50, 16, 3);
  ASSERT_TRUE(write_vecs(path("a.fvecs.gz"), m.view()).is_ok());
  const auto bytes = read_bytes(path("a.fvecs.gz"));
  ASSERT_GE(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], 0x1f);  // gzip magic
  EXPECT_EQ(bytes[1], 0x8b);
}

TEST_F(VecsIo, MaxRowsReadsThePrefix) {
  const auto m = random_matrix<float>(20, 5, 4);
  ASSERT_TRUE(write_vecs(path("a.fvecs"), m.view()).is_ok());
  auto back = read_vecs<float>(path("a.fvecs"), 3);
  ASSERT_TRUE(back.is_ok());
  EXPECT_EQ(back->rows, 3u);
  EXPECT_EQ(back->data, std::vector<float>(m.data.begin(), m.data.begin() + 15));
  auto more = read_vecs<float>(path("a.fvecs"), 1000);  // more than there are: all rows
  ASSERT_TRUE(more.is_ok());
  EXPECT_EQ(more->rows, 20u);
}

TEST_F(VecsIo, MissingFileIsNotFound) {
  auto r = read_vecs<float>(path("nope.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("nope.fvecs"), std::string::npos);
}

TEST_F(VecsIo, EmptyFileIsCorruption) {
  write_bytes(path("e.fvecs"), {});
  auto r = read_vecs<float>(path("e.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("no vectors"), std::string::npos);
}

TEST_F(VecsIo, TruncatedRowIsCorruption) {
  const auto m = random_matrix<float>(3, 4, 5);
  ASSERT_TRUE(write_vecs(path("t.fvecs"), m.view()).is_ok());
  auto bytes = read_bytes(path("t.fvecs"));
  bytes.resize(bytes.size() - 5);  // row 2 loses 5 of its 16 value bytes
  write_bytes(path("t.fvecs"), bytes);
  auto r = read_vecs<float>(path("t.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("truncated: row 2 has 11 of 16"), std::string::npos) << r.status().message();
}

TEST_F(VecsIo, PartialDimensionHeaderIsCorruption) {
  const auto m = random_matrix<float>(2, 4, 6);
  ASSERT_TRUE(write_vecs(path("h.fvecs"), m.view()).is_ok());
  auto bytes = read_bytes(path("h.fvecs"));
  bytes.push_back(4);
  bytes.push_back(0);  // two of the four header bytes of a third row
  write_bytes(path("h.fvecs"), bytes);
  auto r = read_vecs<float>(path("h.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("row 2 has a partial dimension header"), std::string::npos);
}

TEST_F(VecsIo, DimensionChangeIsCorruption) {
  std::vector<unsigned char> b;
  put_i32(b, 2);
  for (int i = 0; i < 8; ++i) b.push_back(0);
  put_i32(b, 3);
  for (int i = 0; i < 12; ++i) b.push_back(0);
  write_bytes(path("d.fvecs"), b);
  auto r = read_vecs<float>(path("d.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
  EXPECT_NE(r.status().message().find("dimension changes at row 1: 3 (row 0 has 2)"), std::string::npos)
      << r.status().message();
}

TEST_F(VecsIo, InvalidDimensionIsCorruption) {
  for (std::int32_t dim : {0, -3, kMaxVecsDim + 1, 0x3f800000 /* the float 1.0 read as int */}) {
    std::vector<unsigned char> b;
    put_i32(b, dim);
    for (int i = 0; i < 16; ++i) b.push_back(0);
    write_bytes(path("bad.fvecs"), b);
    auto r = read_vecs<float>(path("bad.fvecs"));
    ASSERT_FALSE(r.is_ok()) << dim;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_NE(r.status().message().find("invalid dimension " + std::to_string(dim)), std::string::npos)
        << r.status().message();
  }
}

TEST_F(VecsIo, BvecsRowSizeDiffersFromFvecs) {
  // 2 rows of 4 uint8 are 16 bytes: read as fvecs the first row claims 16 value bytes, so it is truncated.
  const auto m = random_matrix<std::uint8_t>(2, 4, 8);
  ASSERT_TRUE(write_vecs(path("x.bvecs"), m.view()).is_ok());
  fs::copy_file(path("x.bvecs"), path("x.fvecs"));
  auto r = read_vecs<float>(path("x.fvecs"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
}

TEST_F(VecsIo, TruncatedGzipIsCorruption) {
  const auto m = random_matrix<float>(200, 32, 9);
  ASSERT_TRUE(write_vecs(path("t.fvecs.gz"), m.view()).is_ok());
  auto bytes = read_bytes(path("t.fvecs.gz"));
  bytes.resize(bytes.size() / 2);
  write_bytes(path("t.fvecs.gz"), bytes);
  auto r = read_vecs<float>(path("t.fvecs.gz"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().to_string();
}

TEST_F(VecsIo, DamagedGzipIsCorruption) {
  const auto m = random_matrix<float>(200, 32, 10);
  ASSERT_TRUE(write_vecs(path("c.fvecs.gz"), m.view()).is_ok());
  auto bytes = read_bytes(path("c.fvecs.gz"));
  for (std::size_t i = bytes.size() / 3; i < bytes.size() / 3 + 64; ++i) bytes[i] ^= 0x5A;
  write_bytes(path("c.fvecs.gz"), bytes);
  auto r = read_vecs<float>(path("c.fvecs.gz"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << r.status().to_string();
}

TEST_F(VecsIo, UnknownExtensionIsInvalidArgument) {
  write_text(path("x.txt"), "hello");
  auto r = read_float_vectors(path("x.txt"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
}

// ---- ids, qrels and the BEIR folder ----

class BeirFiles : public TempDirTest {};

TEST_F(BeirFiles, IdLinesAreTrimmed) {
  write_text(path("ids.txt"), "a\r\n  b \n\n c\n");
  auto ids = read_id_lines(path("ids.txt"));
  ASSERT_TRUE(ids.is_ok());
  EXPECT_EQ(*ids, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(read_id_lines(path("none.txt")).status().code(), StatusCode::kNotFound);
}

TEST_F(BeirFiles, QrelsTsvWithHeader) {
  write_text(path("q.tsv"), "query-id\tcorpus-id\tscore\n1\t10\t1\n1\t11\t2\n3\t10\t0\n");
  auto q = read_qrels_tsv(path("q.tsv"));
  ASSERT_TRUE(q.is_ok()) << q.status().to_string();
  ASSERT_EQ(q->size(), 2u);
  EXPECT_EQ(q->at("1").at("10"), 1);
  EXPECT_EQ(q->at("1").at("11"), 2);
  EXPECT_EQ(q->at("3").at("10"), 0);
}

TEST_F(BeirFiles, MalformedQrelsAreCorruption) {
  write_text(path("q.tsv"), "query-id\tcorpus-id\tscore\n1\t10\t1\n2\t20\n");
  auto q = read_qrels_tsv(path("q.tsv"));
  ASSERT_FALSE(q.is_ok());
  EXPECT_EQ(q.status().code(), StatusCode::kCorruption);
  EXPECT_NE(q.status().message().find(":3: expected 3 fields"), std::string::npos) << q.status().message();

  write_text(path("q2.tsv"), "1\t10\tx1\n");
  auto q2 = read_qrels_tsv(path("q2.tsv"));
  ASSERT_FALSE(q2.is_ok());
  EXPECT_NE(q2.status().message().find("not an integer"), std::string::npos);
}

TEST_F(BeirFiles, MapQrelsKeepsDocumentsMissingFromTheBase) {
  const QrelsById by_id = {{"q1", {{"d2", 1}, {"gone", 2}}}, {"q9", {{"d1", 1}}}};
  const Qrels q = map_qrels(by_id, {"q1", "q2"}, {"d0", "d1", "d2"});
  ASSERT_EQ(q.size(), 2u);
  ASSERT_EQ(q[0].size(), 2u);
  EXPECT_EQ(q[0][0].row, -1);  // sorted by relevance: "gone" (2) first
  EXPECT_EQ(q[0][0].relevance, 2);
  EXPECT_EQ(q[0][1].row, 2);
  EXPECT_TRUE(q[1].empty());  // q2 has no judgments; q9 is not a query row
}

// A small BEIR folder in the vecstash layout.
void make_beir(const fs::path& dir, std::size_t query_ids) {
  fs::create_directories(dir / "emb");
  const auto corpus = vecstash::testing::gaussian(5, 4, 21);
  const auto queries = vecstash::testing::gaussian(3, 4, 22);
  ASSERT_TRUE(write_vecs(dir / "emb" / "corpus.fvecs", corpus.view()).is_ok());
  ASSERT_TRUE(write_vecs(dir / "emb" / "queries_test.fvecs", queries.view()).is_ok());
  std::ofstream(dir / "emb" / "corpus_ids.txt") << "d0\nd1\nd2\nd3\nd4\n";
  std::ofstream ids(dir / "emb" / "queries_test_ids.txt");
  for (std::size_t i = 0; i < query_ids; ++i) ids << "q" << i << "\n";
  ids.close();
  std::ofstream(dir / "test.tsv") << "query-id\tcorpus-id\tscore\nq0\td3\t1\nq2\td1\t2\nq2\td4\t1\n";
}

TEST_F(BeirFiles, LoadsAFolder) {
  make_beir(dir_, 3);
  auto ds = load_beir_embeddings(dir_ / "emb", dir_ / "test.tsv");
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  EXPECT_EQ(ds->metric, Metric::kCos);
  EXPECT_EQ(ds->base.rows, 5u);
  EXPECT_EQ(ds->queries.rows, 3u);
  EXPECT_TRUE(ds->groundtruth.empty());
  ASSERT_EQ(ds->qrels.size(), 3u);
  ASSERT_EQ(ds->qrels[0].size(), 1u);
  EXPECT_EQ(ds->qrels[0][0].row, 3);
  EXPECT_TRUE(ds->qrels[1].empty());
  ASSERT_EQ(ds->qrels[2].size(), 2u);
  EXPECT_EQ(ds->qrels[2][0].row, 1);
  EXPECT_EQ(ds->qrels[2][0].relevance, 2);

  auto first2 = load_beir_embeddings(dir_ / "emb", dir_ / "test.tsv", "test", 2);
  ASSERT_TRUE(first2.is_ok()) << first2.status().to_string();
  EXPECT_EQ(first2->queries.rows, 2u);
  EXPECT_EQ(first2->qrels.size(), 2u);
}

TEST_F(BeirFiles, LocallyEmbeddedSetsUseTheCacheAndTheSharedQrels) {
  // embed_beir.py's layout: queries.fvecs + queries_ids.txt, under <cache>/scifact-minilm.
  make_beir(dir_, 3);
  const fs::path cache = dir_ / "cache" / "scifact-minilm";
  fs::create_directories(cache);
  fs::copy_file(dir_ / "emb" / "corpus.fvecs", cache / "corpus.fvecs");
  fs::copy_file(dir_ / "emb" / "corpus_ids.txt", cache / "corpus_ids.txt");
  fs::copy_file(dir_ / "emb" / "queries_test.fvecs", cache / "queries.fvecs");
  fs::copy_file(dir_ / "emb" / "queries_test_ids.txt", cache / "queries_ids.txt");
  fs::create_directories(dir_ / "data" / "scifact" / "qrels");
  fs::copy_file(dir_ / "test.tsv", dir_ / "data" / "scifact" / "qrels" / "test.tsv");
  DatasetOptions opt;
  opt.data_root = dir_ / "data";
  opt.embeddings_root = dir_ / "cache";
  auto ds = load_named_dataset("scifact-minilm", opt);
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  EXPECT_EQ(ds->name, "scifact-minilm");
  EXPECT_EQ(ds->queries.rows, 3u);
  ASSERT_EQ(ds->qrels.size(), 3u);
  EXPECT_EQ(ds->qrels[2][0].row, 1);
  // Not made yet: NotFound saying how to make it.
  auto missing = load_named_dataset("scifact-wordllama", opt);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("embed_beir.py --model wordllama"), std::string::npos)
      << missing.status().message();
}

TEST_F(BeirFiles, IdCountMismatchIsCorruption) {
  make_beir(dir_, 2);
  auto ds = load_beir_embeddings(dir_ / "emb", dir_ / "test.tsv");
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kCorruption);
}

// ---- named and generic data sets ----

class NamedSets : public TempDirTest {};

TEST_F(NamedSets, MissingDataIsNotFoundAndNamesTheSet) {
  DatasetOptions opt;
  opt.data_root = path("no-data-here");
  auto ds = load_named_dataset("sift10k", opt);
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("sift10k"), std::string::npos);
  EXPECT_NE(ds.status().message().find("no-data-here"), std::string::npos);

  fs::create_directories(path("root/sift10k"));  // the folder without its files
  opt.data_root = path("root");
  ds = load_named_dataset("sift10k", opt);
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ds.status().message().find("siftsmall_base.fvecs"), std::string::npos);
}

TEST_F(NamedSets, UnknownNameIsInvalidArgument) {
  auto ds = load_named_dataset("sift1b", {});
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(ds.status().message().find("sift10k"), std::string::npos);  // lists the known names
}

TEST_F(NamedSets, StandardSetsAreNamed) {
  const auto names = named_datasets();
  for (const auto& s : standard_datasets()) {
    EXPECT_NE(std::find(names.begin(), names.end(), s), names.end()) << s;
    EXPECT_FALSE(describe_dataset(s).empty());
  }
}

TEST_F(NamedSets, LoadsSiftLayoutWithQueryLimit) {
  fs::create_directories(path("root/sift10k"));
  const auto base = vecstash::testing::gaussian(30, 8, 31);
  const auto queries = vecstash::testing::gaussian(6, 8, 32);
  Matrix<std::int32_t> gt(6, 3);
  std::iota(gt.data.begin(), gt.data.end(), 0);
  ASSERT_TRUE(write_vecs(path("root/sift10k/siftsmall_base.fvecs"), base.view()).is_ok());
  ASSERT_TRUE(write_vecs(path("root/sift10k/siftsmall_query.fvecs"), queries.view()).is_ok());
  ASSERT_TRUE(write_vecs(path("root/sift10k/siftsmall_groundtruth.ivecs"), gt.view()).is_ok());
  DatasetOptions opt;
  opt.data_root = path("root");
  opt.max_queries = 4;
  auto ds = load_named_dataset("sift10k", opt);
  ASSERT_TRUE(ds.is_ok()) << ds.status().to_string();
  EXPECT_EQ(ds->name, "sift10k");
  EXPECT_EQ(ds->metric, Metric::kL2);
  EXPECT_EQ(ds->base.rows, 30u);
  EXPECT_EQ(ds->queries.rows, 4u);
  EXPECT_EQ(ds->groundtruth.rows, 4u);
  EXPECT_EQ(ds->groundtruth.cols, 3u);
  EXPECT_EQ(std::vector<float>(queries.data.begin(), queries.data.begin() + 32), ds->queries.data);

  // Ground truth pointing outside the base.
  gt.data[5] = 30;
  ASSERT_TRUE(write_vecs(path("root/sift10k/siftsmall_groundtruth.ivecs"), gt.view()).is_ok());
  ds = load_named_dataset("sift10k", opt);
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kCorruption);
}

TEST_F(NamedSets, SelfQueriesAreFixedSeedBaseRows) {
  fs::create_directories(path("root/minilm_fiori"));
  auto base = vecstash::testing::gaussian(40, 6, 41);
  ASSERT_TRUE(write_vecs(path("root/minilm_fiori/fiori_docs_minilm384.fvecs"), base.view()).is_ok());
  DatasetOptions opt;
  opt.data_root = path("root");
  opt.max_queries = 5;
  auto a = load_named_dataset("minilm_fiori", opt);
  auto b = load_named_dataset("minilm_fiori", opt);
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  ASSERT_TRUE(b.is_ok());
  EXPECT_EQ(a->metric, Metric::kCos);
  EXPECT_EQ(a->queries.rows, 5u);
  EXPECT_EQ(a->queries.data, b->queries.data);
  EXPECT_TRUE(a->groundtruth.empty());
  const auto rows = sample_indices(40, 5, opt.seed);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(std::vector<float>(a->queries.row(i), a->queries.row(i) + 6),
              std::vector<float>(base.row(rows[i]), base.row(rows[i]) + 6));
  }
}

TEST_F(NamedSets, GenericFilesCheckDimensions) {
  const auto base = vecstash::testing::gaussian(10, 4, 51);
  const auto queries = vecstash::testing::gaussian(2, 5, 52);
  ASSERT_TRUE(write_vecs(path("b.fvecs"), base.view()).is_ok());
  ASSERT_TRUE(write_vecs(path("q.fvecs"), queries.view()).is_ok());
  auto ds = load_files_dataset(path("b.fvecs"), path("q.fvecs"), {}, Metric::kIp);
  ASSERT_FALSE(ds.is_ok());
  EXPECT_EQ(ds.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(load_files_dataset(path("b.fvecs"), path("b.fvecs"), {}, Metric::kHamming).status().code(),
            StatusCode::kInvalidArgument);
  auto ok = load_files_dataset(path("b.fvecs"), path("b.fvecs"), {}, Metric::kL2, 3);
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->queries.rows, 3u);
}

TEST(SampleIndices, DistinctSortedDeterministic) {
  const auto a = sample_indices(1000, 100, 42);
  EXPECT_EQ(a, sample_indices(1000, 100, 42));
  EXPECT_NE(a, sample_indices(1000, 100, 43));
  ASSERT_EQ(a.size(), 100u);
  EXPECT_TRUE(std::is_sorted(a.begin(), a.end()));
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
  EXPECT_LT(a.back(), 1000u);
  const auto all = sample_indices(5, 9, 1);
  EXPECT_EQ(all, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_TRUE(sample_indices(0, 3, 1).empty());
}

}  // namespace
}  // namespace vecstash::bench
