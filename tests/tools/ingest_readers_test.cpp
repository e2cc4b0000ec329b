// The vector file readers of `vecstash ingest` / `vecstash query`: good files of every format and the
// bad inputs each reader must refuse with a clear message (headers, dtypes, ragged rows, bad JSON).
#include "ingest_readers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "benchmarks/vecs_io.h"
#include "testing/temp_dir.h"

namespace vecstash::tools {
namespace {

using testing::TempDir;

class IngestReadersTest : public ::testing::Test {
 protected:
  std::filesystem::path write(const std::string& name, const std::string& bytes) {
    const auto p = dir_.path() / name;
    std::filesystem::create_directories(dir_.path());
    std::ofstream out(p, std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  /// A .npy file: `dict` is the header text (padded as numpy does), then the raw data bytes.
  static std::string npy(const std::string& dict, const void* data, std::size_t bytes, int major = 1) {
    const std::size_t prefix = major == 1 ? 10 : 12;
    std::string header = dict;
    while ((prefix + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    const std::size_t len = header.size();
    out += static_cast<char>(len & 0xFF);
    out += static_cast<char>((len >> 8) & 0xFF);
    if (major > 1) {
      out += static_cast<char>((len >> 16) & 0xFF);
      out += static_cast<char>((len >> 24) & 0xFF);
    }
    out += header;
    out.append(static_cast<const char*>(data), bytes);
    return out;
  }

  static std::string f4_dict(std::size_t rows, std::size_t cols) {
    return "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " + std::to_string(cols) +
           "), }";
  }

  static void expect_error(const Result<VectorFile>& r, StatusCode code, const std::string& fragment) {
    ASSERT_FALSE(r.is_ok());
    EXPECT_EQ(r.status().code(), code) << r.status().to_string();
    EXPECT_NE(r.status().message().find(fragment), std::string::npos)
        << "message '" << r.status().message() << "' lacks '" << fragment << "'";
  }

  TempDir dir_{"vecstash-readers-test"};
};

// ---- names and formats ---------------------------------------------------------------------------

TEST_F(IngestReadersTest, FormatFromName) {
  EXPECT_EQ(*format_from_name("a/b.fvecs"), VectorFormat::kFvecs);
  EXPECT_EQ(*format_from_name("b.fvecs.gz"), VectorFormat::kFvecs);
  EXPECT_EQ(*format_from_name("b.bvecs"), VectorFormat::kBvecs);
  EXPECT_EQ(*format_from_name("b.bvecs.gz"), VectorFormat::kBvecs);
  EXPECT_EQ(*format_from_name("x.npy"), VectorFormat::kNpy);
  EXPECT_EQ(*format_from_name("x.jsonl"), VectorFormat::kJsonl);
  EXPECT_EQ(*format_from_name("x.ndjson"), VectorFormat::kJsonl);
  EXPECT_FALSE(format_from_name("x.txt").is_ok());
  EXPECT_FALSE(format_from_name("x").is_ok());
  const auto gz = format_from_name("x.npy.gz");
  ASSERT_FALSE(gz.is_ok());
  EXPECT_NE(gz.status().message().find("decompress"), std::string::npos);
}

TEST_F(IngestReadersTest, ParseFormat) {
  for (const char* name : {"auto", "fvecs", "bvecs", "npy", "jsonl"}) {
    auto f = parse_vector_format(name);
    ASSERT_TRUE(f.is_ok()) << name;
    EXPECT_EQ(to_string(*f), name);
  }
  EXPECT_FALSE(parse_vector_format("csv").is_ok());
  EXPECT_FALSE(parse_vector_format("").is_ok());
}

TEST_F(IngestReadersTest, MissingFileIsNotFound) {
  for (const char* name : {"none.fvecs", "none.npy", "none.jsonl"}) {
    expect_error(read_vector_file(dir_.path() / name), StatusCode::kNotFound, "not found");
  }
}

// ---- fvecs / bvecs (through benchmarks/vecs_io) --------------------------------------------------

TEST_F(IngestReadersTest, FvecsAndBvecs) {
  std::filesystem::create_directories(dir_.path());
  const std::vector<float> v = {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, -0.5f};
  ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "a.fvecs", {v.data(), 2, 3}).is_ok());
  ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "a.fvecs.gz", {v.data(), 2, 3}).is_ok());
  for (const char* name : {"a.fvecs", "a.fvecs.gz"}) {
    auto f = read_vector_file(dir_.path() / name);
    ASSERT_TRUE(f.is_ok()) << f.status().to_string();
    EXPECT_EQ(f->format, VectorFormat::kFvecs);
    EXPECT_EQ(f->rows, 2u);
    EXPECT_EQ(f->dim, 3u);
    EXPECT_EQ(f->values, v);
    EXPECT_TRUE(f->ids.empty());
    EXPECT_TRUE(f->payloads.empty());
  }
  ReadOptions one;
  one.max_rows = 1;
  auto first = read_vector_file(dir_.path() / "a.fvecs", one);
  ASSERT_TRUE(first.is_ok());
  EXPECT_EQ(first->rows, 1u);

  const std::vector<std::uint8_t> b = {0, 7, 255, 1};
  ASSERT_TRUE(bench::write_vecs<std::uint8_t>(dir_.path() / "b.bvecs", {b.data(), 2, 2}).is_ok());
  auto bf = read_vector_file(dir_.path() / "b.bvecs");
  ASSERT_TRUE(bf.is_ok()) << bf.status().to_string();
  EXPECT_EQ(bf->values, (std::vector<float>{0.f, 7.f, 255.f, 1.f}));

  // An explicit format wins over the name.
  std::filesystem::copy_file(dir_.path() / "a.fvecs", dir_.path() / "vectors.bin");
  ReadOptions fv;
  fv.format = VectorFormat::kFvecs;
  auto named = read_vector_file(dir_.path() / "vectors.bin", fv);
  ASSERT_TRUE(named.is_ok()) << named.status().to_string();
  EXPECT_EQ(named->values, v);
  EXPECT_FALSE(read_vector_file(dir_.path() / "vectors.bin").is_ok());  // auto: unknown name
}

TEST_F(IngestReadersTest, FvecsRaggedRowsAndBadHeader) {
  std::string bytes;
  auto row = [&bytes](std::int32_t dim) {
    bytes.append(reinterpret_cast<const char*>(&dim), 4);
    for (std::int32_t i = 0; i < dim; ++i) {
      const float x = 1.0f;
      bytes.append(reinterpret_cast<const char*>(&x), 4);
    }
  };
  row(3);
  row(4);
  expect_error(read_vector_file(write("ragged.fvecs", bytes)), StatusCode::kCorruption, "dimension changes at row 1");

  const std::int32_t bad = -5;
  expect_error(read_vector_file(write("bad.fvecs", std::string(reinterpret_cast<const char*>(&bad), 4))),
               StatusCode::kCorruption, "invalid dimension");
  expect_error(read_vector_file(write("empty.fvecs", "")), StatusCode::kCorruption, "no vectors");
}

TEST_F(IngestReadersTest, FvecsNonFiniteValues) {
  std::filesystem::create_directories(dir_.path());
  const std::vector<float> v = {1.0f, std::numeric_limits<float>::quiet_NaN()};
  ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "nan.fvecs", {v.data(), 1, 2}).is_ok());
  expect_error(read_vector_file(dir_.path() / "nan.fvecs"), StatusCode::kInvalidArgument, "row 0, value 1");
}

// ---- npy -----------------------------------------------------------------------------------------

TEST_F(IngestReadersTest, NpyFloat32AndFloat64) {
  const std::vector<float> f = {0.5f, 1.0f, -2.0f, 3.5f, 4.0f, 5.0f};
  auto a = read_vector_file(write("a.npy", npy(f4_dict(3, 2), f.data(), f.size() * 4)));
  ASSERT_TRUE(a.is_ok()) << a.status().to_string();
  EXPECT_EQ(a->format, VectorFormat::kNpy);
  EXPECT_EQ(a->rows, 3u);
  EXPECT_EQ(a->dim, 2u);
  EXPECT_EQ(a->values, f);

  const std::vector<double> d = {0.5, 1.0, -2.0, 3.5};
  auto b = read_npy(write("b.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2)}", d.data(), 32)));
  ASSERT_TRUE(b.is_ok()) << b.status().to_string();
  EXPECT_EQ(b->values, (std::vector<float>{0.5f, 1.0f, -2.0f, 3.5f}));

  // Version 2 header, double quotes, keys in another order, max_rows.
  auto c = read_npy(write("c.npy", npy("{\"shape\": (3, 2), \"fortran_order\": False, \"descr\": \"<f4\"}", f.data(),
                                       f.size() * 4, 2)),
                    2);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->rows, 2u);
  EXPECT_EQ(c->values, (std::vector<float>{0.5f, 1.0f, -2.0f, 3.5f}));
}

TEST_F(IngestReadersTest, NpyBadHeaders) {
  const std::vector<float> f(4, 1.0f);
  expect_error(read_npy(write("magic.npy", "NUMPY not really")), StatusCode::kCorruption, "not a .npy file");
  expect_error(read_npy(write("short.npy", "\x93NUM")), StatusCode::kCorruption, "not a .npy file");
  std::string v9 = npy(f4_dict(2, 2), f.data(), 16);
  v9[6] = 9;
  expect_error(read_npy(write("v9.npy", v9)), StatusCode::kCorruption, "version 9");
  expect_error(
      read_npy(write("dict.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': [2, 2]}", f.data(), 16))),
      StatusCode::kCorruption, "malformed .npy header");
  expect_error(read_npy(write("nokey.npy", npy("{'descr': '<f4', 'shape': (2, 2)}", f.data(), 16))),
               StatusCode::kCorruption, "fortran_order");
  expect_error(
      read_npy(write("junk.npy", npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 2)}", f.data(), 16))),
      StatusCode::kCorruption, "True or False");
  expect_error(read_npy(write("open.npy", npy("{'descr': '<f4", f.data(), 16))), StatusCode::kCorruption,
               "malformed .npy header");
  // A header length that runs past the end of the file.
  std::string longer = npy(f4_dict(2, 2), f.data(), 16);
  longer[8] = '\xFF';
  longer[9] = '\x7F';
  expect_error(read_npy(write("len.npy", longer)), StatusCode::kCorruption, "does not fit");
}

TEST_F(IngestReadersTest, NpyWrongDtypeOrderOrShape) {
  const std::vector<std::int32_t> i(4, 1);
  expect_error(
      read_npy(write("i4.npy", npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 2), }", i.data(), 16))),
      StatusCode::kInvalidArgument, "dtype '<i4' is not supported");
  expect_error(
      read_npy(write("f2.npy", npy("{'descr': '<f2', 'fortran_order': False, 'shape': (2, 2), }", i.data(), 8))),
      StatusCode::kInvalidArgument, "dtype '<f2' is not supported");
  expect_error(
      read_npy(write("be.npy", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", i.data(), 16))),
      StatusCode::kInvalidArgument, "big-endian");
  expect_error(read_npy(write("rec.npy",
                              npy("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", i.data(), 16))),
               StatusCode::kInvalidArgument, "structured");
  expect_error(
      read_npy(write("fo.npy", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", i.data(), 16))),
      StatusCode::kInvalidArgument, "Fortran");
  expect_error(
      read_npy(write("1d.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", i.data(), 16))),
      StatusCode::kInvalidArgument, "shape (4,)");
  expect_error(
      read_npy(write("3d.npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2, 2), }", i.data(), 16))),
      StatusCode::kInvalidArgument, "2-D");
  expect_error(read_npy(write("0c.npy", npy(f4_dict(2, 0), i.data(), 0))), StatusCode::kInvalidArgument, "dimension 0");
  expect_error(read_npy(write("0r.npy", npy(f4_dict(0, 3), i.data(), 0))), StatusCode::kInvalidArgument, "no vectors");
}

TEST_F(IngestReadersTest, NpyTruncatedTrailingAndNonFinite) {
  const std::vector<float> f = {1.f, 2.f, 3.f, 4.f, 5.f};
  expect_error(read_npy(write("trunc.npy", npy(f4_dict(2, 2), f.data(), 12))), StatusCode::kCorruption, "truncated");
  expect_error(read_npy(write("trail.npy", npy(f4_dict(2, 2), f.data(), 20))), StatusCode::kCorruption, "trailing");

  const std::vector<float> inf = {1.f, std::numeric_limits<float>::infinity(), 3.f, 4.f};
  expect_error(read_npy(write("inf.npy", npy(f4_dict(2, 2), inf.data(), 16))), StatusCode::kInvalidArgument,
               "row 0, value 1");
  const std::vector<double> big = {1.0, 2.0, 1e300, 4.0};
  expect_error(
      read_npy(write("big.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", big.data(), 32))),
      StatusCode::kInvalidArgument, "row 1, value 0");
}

// ---- JSONL ---------------------------------------------------------------------------------------

TEST_F(IngestReadersTest, JsonlIdsPayloadsAndBlankLines) {
  const auto p = write("a.jsonl",
                       "{\"id\": 7, \"vector\": [1, 2.5, -3], \"payload\": {\"t\": \"x\"}}\r\n"
                       "\n"
                       "   \n"
                       "{\"vector\": [0, 0, 1e-3]}\n"
                       "{\"id\": \"5c56c793-69f3-4fbf-87e6-c4bf54c28c26\", \"vector\": [4, 5, 6], \"payload\": null}");
  auto f = read_vector_file(p);
  ASSERT_TRUE(f.is_ok()) << f.status().to_string();
  EXPECT_EQ(f->format, VectorFormat::kJsonl);
  ASSERT_EQ(f->rows, 3u);
  EXPECT_EQ(f->dim, 3u);
  EXPECT_EQ(f->values, (std::vector<float>{1.f, 2.5f, -3.f, 0.f, 0.f, 1e-3f, 4.f, 5.f, 6.f}));
  ASSERT_EQ(f->ids.size(), 3u);
  EXPECT_EQ(f->ids[0], 7);
  EXPECT_TRUE(f->ids[1].is_null());
  EXPECT_EQ(f->ids[2], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  ASSERT_EQ(f->payloads.size(), 3u);
  EXPECT_EQ(f->payloads[0]["t"], "x");
  EXPECT_TRUE(f->payloads[1].is_null());

  auto two = read_jsonl(p, 2);
  ASSERT_TRUE(two.is_ok());
  EXPECT_EQ(two->rows, 2u);

  auto plain = read_jsonl(write("plain.jsonl", "{\"vector\": [1]}\n{\"vector\": [2]}\n"));
  ASSERT_TRUE(plain.is_ok()) << plain.status().to_string();
  EXPECT_TRUE(plain->ids.empty());
  EXPECT_TRUE(plain->payloads.empty());
}

TEST_F(IngestReadersTest, JsonlRaggedLines) {
  expect_error(read_jsonl(write("r.jsonl", "{\"vector\": [1, 2, 3]}\n\n{\"vector\": [1, 2]}\n")),
               StatusCode::kInvalidArgument, "r.jsonl:3: the vector has 2 values, but the one on line 1 has 3");
}

TEST_F(IngestReadersTest, JsonlBadJson) {
  expect_error(read_jsonl(write("j.jsonl", "{\"vector\": [1]}\n{\"vector\": [1,}\n")), StatusCode::kInvalidArgument,
               "j.jsonl:2: not valid JSON");
  expect_error(read_jsonl(write("arr.jsonl", "[1, 2, 3]\n")), StatusCode::kInvalidArgument, "expected an object");
  expect_error(read_jsonl(write("key.jsonl", "{\"vec\": [1]}\n")), StatusCode::kInvalidArgument, "unknown key 'vec'");
  expect_error(read_jsonl(write("nov.jsonl", "{\"id\": 1}\n")), StatusCode::kInvalidArgument, "no \"vector\"");
  expect_error(read_jsonl(write("emptyv.jsonl", "{\"vector\": []}\n")), StatusCode::kInvalidArgument, "non-empty");
  expect_error(read_jsonl(write("str.jsonl", "{\"vector\": [1, \"2\"]}\n")), StatusCode::kInvalidArgument,
               "value 1 is \"2\", not a number");
  expect_error(read_jsonl(write("neg.jsonl", "{\"id\": -1, \"vector\": [1]}\n")), StatusCode::kInvalidArgument,
               "negative");
  expect_error(read_jsonl(write("fid.jsonl", "{\"id\": 1.5, \"vector\": [1]}\n")), StatusCode::kInvalidArgument,
               "id 1.5 must be");
  expect_error(read_jsonl(write("pl.jsonl", "{\"vector\": [1], \"payload\": [1]}\n")), StatusCode::kInvalidArgument,
               "payload must be a JSON object");
  expect_error(read_jsonl(write("big.jsonl", "{\"vector\": [1e39]}\n")), StatusCode::kInvalidArgument,
               "line 1, value 0");
  expect_error(read_jsonl(write("none.jsonl", "\n  \n")), StatusCode::kInvalidArgument, "no vectors");
}

// ---- dimension check -----------------------------------------------------------------------------

TEST_F(IngestReadersTest, DimensionMismatch) {
  auto f = read_jsonl(write("d.jsonl", "{\"vector\": [1, 2, 3]}\n"));
  ASSERT_TRUE(f.is_ok());
  EXPECT_TRUE(check_dimension(*f, 3, "collection 'c'").is_ok());
  const Status s = check_dimension(*f, 4, "collection 'c'");
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("have 3 values, collection 'c' has dimension 4"), std::string::npos) << s.message();
}

// ---- id lists and writing (vecstash anchors / model) ----------------------------------------------

TEST_F(IngestReadersTest, IdLists) {
  auto ids = parse_id_list(
      "1,2, 3\n# a comment, 4\n5c56c793-69f3-4fbf-87e6-c4bf54c28c26\n"
      "5C56C79369F34FBF87E6C4BF54C28C26 18446744073709551615\n",
      "--ids");
  ASSERT_TRUE(ids.is_ok()) << ids.status().to_string();
  ASSERT_EQ(ids->size(), 6u);
  EXPECT_EQ((*ids)[0], 1);
  EXPECT_EQ((*ids)[2], 3);
  EXPECT_EQ((*ids)[3], "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  EXPECT_EQ((*ids)[4], "5C56C79369F34FBF87E6C4BF54C28C26");  // the server normalises UUIDs
  EXPECT_EQ((*ids)[5], std::numeric_limits<std::uint64_t>::max());
  auto bad = [](std::string_view text, const std::string& fragment) {
    auto r = parse_id_list(text, "ids.txt");
    ASSERT_FALSE(r.is_ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(fragment), std::string::npos) << r.status().message();
  };
  bad("1\n2\n-3\n", "ids.txt, line 3: '-3' is not a point id");
  bad("18446744073709551616", "does not fit");
  bad("1.5", "not a point id");
  bad("5c56c793-69f3-4fbf-87e6-c4bf54c28c2", "not a point id");
  bad("abc", "not a point id");
  bad("", "no ids");
  bad("# only a comment\n", "no ids");

  auto file = read_id_file(write("ids.txt", "7\n8\n"));
  ASSERT_TRUE(file.is_ok());
  EXPECT_EQ(*file, (std::vector<nlohmann::json>{7, 8}));
  EXPECT_EQ(read_id_file(dir_.path() / "missing.txt").status().code(), StatusCode::kNotFound);
}

TEST_F(IngestReadersTest, WriteVectorFilesRoundTrip) {
  std::filesystem::create_directories(dir_.path());
  const std::vector<float> v = {1.f, -2.5f, 3.25f, 0.f, 1e-3f, 6.f};
  for (const char* name : {"out.fvecs", "out.npy"}) {
    const auto p = dir_.path() / name;
    ASSERT_TRUE(write_vector_file(p, v.data(), 3, 2).is_ok()) << name;
    auto f = read_vector_file(p);
    ASSERT_TRUE(f.is_ok()) << name << ": " << f.status().to_string();
    EXPECT_EQ(f->rows, 3u);
    EXPECT_EQ(f->dim, 2u);
    EXPECT_EQ(f->values, v) << name;
  }
  EXPECT_EQ(write_vector_file(dir_.path() / "out.txt", v.data(), 3, 2).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace vecstash::tools
