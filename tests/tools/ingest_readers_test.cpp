// The vector file readers of `vecstash ingest` / `vecstash query`: good files of every format and the
// bad inputs each reader must refuse with a clear message (headers, dtypes, ragged rows, bad JSON);
// VectorStream in blocks of several sizes against read_vector_file, max_rows across blocks, and errors
// that only a later block reaches.
#include "ingest_readers.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <limits>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/vecs_io.h"
#include "testing/random_data.h"
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

  template <typename T>
  static void expect_error(const Result<T>& r, StatusCode code, const std::string& fragment) {
    ASSERT_FALSE(r.is_ok());
    expect_error(r.status(), code, fragment);
  }
  static void expect_error(const Status& s, StatusCode code, const std::string& fragment) {
    ASSERT_FALSE(s.is_ok());
    EXPECT_EQ(s.code(), code) << s.to_string();
    EXPECT_NE(s.message().find(fragment), std::string::npos)
        << "message '" << s.message() << "' lacks '" << fragment << "'";
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

// ---- VectorStream --------------------------------------------------------------------------------

/// Every block of a stream opened on `path`, concatenated as read_vector_file does (ids and payloads
/// null-filled for the blocks without); checks each block's shape on the way.
VectorFile read_in_blocks(const std::filesystem::path& path, std::size_t block_rows, const ReadOptions& options = {}) {
  VectorFile all;
  auto opened = VectorStream::open(path, options);
  EXPECT_TRUE(opened.is_ok()) << opened.status().to_string();
  if (!opened.is_ok()) return all;
  VectorStream& stream = **opened;
  all.format = stream.format();
  all.dim = stream.dim();
  auto append = [&all](std::vector<nlohmann::json>& to, const std::vector<nlohmann::json>& from, std::size_t rows) {
    if (from.empty() && to.empty()) return;
    to.resize(all.rows);
    if (from.empty()) {
      to.resize(all.rows + rows);
    } else {
      to.insert(to.end(), from.begin(), from.end());
    }
  };
  VectorFile block;
  for (std::size_t guard = 0; guard < 100000; ++guard) {
    EXPECT_EQ(stream.rows_read(), all.rows);
    const Status s = stream.next(block_rows, &block);
    EXPECT_TRUE(s.is_ok()) << s.to_string();
    if (!s.is_ok() || block.rows == 0) break;
    EXPECT_LE(block.rows, block_rows);
    EXPECT_EQ(block.format, stream.format());
    EXPECT_EQ(block.dim, stream.dim());
    EXPECT_EQ(block.values.size(), block.rows * block.dim);
    EXPECT_TRUE(block.ids.empty() || block.ids.size() == block.rows);
    EXPECT_TRUE(block.payloads.empty() || block.payloads.size() == block.rows);
    all.values.insert(all.values.end(), block.values.begin(), block.values.end());
    append(all.ids, block.ids, block.rows);
    append(all.payloads, block.payloads, block.rows);
    all.rows += block.rows;
  }
  // The end stays the end.
  EXPECT_TRUE(stream.next(block_rows, &block).is_ok());
  EXPECT_EQ(block.rows, 0u);
  EXPECT_EQ(stream.rows_read(), all.rows);
  return all;
}

class VectorStreamTest : public IngestReadersTest {
 protected:
  static constexpr std::size_t kRows = 37;
  static constexpr std::size_t kDim = 5;

  /// One file of each format from fixed-seed data, with the rows each holds.
  void SetUp() override {
    std::filesystem::create_directories(dir_.path());
    const auto g = testing::gaussian(kRows, kDim, /*seed=*/20240611);
    floats_ = g.data;
    ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "a.fvecs", {floats_.data(), kRows, kDim}).is_ok());
    ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "a.fvecs.gz", {floats_.data(), kRows, kDim}).is_ok());
    ASSERT_TRUE(write_vector_file(dir_.path() / "a.npy", floats_.data(), kRows, kDim).is_ok());

    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    bytes_.resize(kRows * kDim);
    for (auto& b : bytes_) b = static_cast<std::uint8_t>(byte(rng));
    ASSERT_TRUE(bench::write_vecs<std::uint8_t>(dir_.path() / "a.bvecs", {bytes_.data(), kRows, kDim}).is_ok());

    std::vector<double> wide(floats_.begin(), floats_.end());
    for (std::size_t i = 0; i < wide.size(); i += 3) wide[i] += 1e-12;  // narrowed away
    write("f8.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (37, 5), }", wide.data(),
                        wide.size() * sizeof(double)));

    // JSONL: numeric and UUID ids on some rows, payloads on others, blank lines between; the first
    // rows have neither (so early blocks carry no ids or payloads).
    std::ostringstream jl;
    jl << std::setprecision(9);
    for (std::size_t r = 0; r < kRows; ++r) {
      if (r % 5 == 2) jl << "\n  \n";
      jl << "{";
      if (r >= 4 && r % 3 == 0) jl << "\"id\": " << 1000 + r << ", ";
      if (r >= 4 && r % 7 == 1) jl << "\"id\": \"5c56c793-69f3-4fbf-87e6-c4bf54c28c" << 10 + r << "\", ";
      jl << "\"vector\": [";
      for (std::size_t c = 0; c < kDim; ++c) jl << (c ? ", " : "") << floats_[r * kDim + c];
      jl << "]";
      if (r >= 6 && r % 4 == 0) jl << ", \"payload\": {\"row\": " << r << "}";
      jl << "}\n";
    }
    write("a.jsonl", jl.str());
  }

  std::vector<std::string> names() const { return {"a.fvecs", "a.fvecs.gz", "a.bvecs", "a.npy", "f8.npy", "a.jsonl"}; }

  std::vector<float> floats_;
  std::vector<std::uint8_t> bytes_;
};

TEST_F(VectorStreamTest, BlocksGiveTheRowsOfReadVectorFile) {
  for (const std::string& name : names()) {
    SCOPED_TRACE(name);
    const auto path = dir_.path() / name;
    auto whole = read_vector_file(path);
    ASSERT_TRUE(whole.is_ok()) << whole.status().to_string();
    ASSERT_EQ(whole->rows, kRows);
    ASSERT_EQ(whole->dim, kDim);
    if (name == "a.bvecs") {
      EXPECT_EQ(whole->values, std::vector<float>(bytes_.begin(), bytes_.end()));
    } else {
      EXPECT_EQ(whole->values, floats_);
    }
    for (const std::size_t block : {1, 2, 3, 7, 36, 37, 38, 1000}) {
      SCOPED_TRACE("block " + std::to_string(block));
      const VectorFile blocks = read_in_blocks(path, block);
      EXPECT_EQ(blocks.format, whole->format);
      EXPECT_EQ(blocks.rows, whole->rows);
      EXPECT_EQ(blocks.dim, whole->dim);
      EXPECT_EQ(blocks.values, whole->values);
      EXPECT_EQ(blocks.ids, whole->ids);
      EXPECT_EQ(blocks.payloads, whole->payloads);
    }
  }
  // The JSONL file's ids and payloads arrive where the lines put them.
  auto jsonl = read_vector_file(dir_.path() / "a.jsonl");
  ASSERT_TRUE(jsonl.is_ok());
  ASSERT_EQ(jsonl->ids.size(), kRows);
  ASSERT_EQ(jsonl->payloads.size(), kRows);
  EXPECT_TRUE(jsonl->ids[0].is_null());
  EXPECT_EQ(jsonl->ids[6], 1006);
  EXPECT_EQ(jsonl->ids[8], "5c56c793-69f3-4fbf-87e6-c4bf54c28c18");
  EXPECT_EQ(jsonl->payloads[8]["row"], 8);
  EXPECT_TRUE(jsonl->payloads[9].is_null());
}

TEST_F(VectorStreamTest, DimensionAndTotalAreKnownAfterOpen) {
  for (const std::string& name : names()) {
    SCOPED_TRACE(name);
    auto stream = VectorStream::open(dir_.path() / name);
    ASSERT_TRUE(stream.is_ok()) << stream.status().to_string();
    EXPECT_EQ((*stream)->dim(), kDim);
    EXPECT_EQ((*stream)->rows_read(), 0u);
    // Only a gzip-compressed or JSONL file does not tell its rows up front.
    const bool told = name != "a.fvecs.gz" && name != "a.jsonl";
    EXPECT_EQ((*stream)->total_rows(), told ? std::optional<std::size_t>(kRows) : std::nullopt);
  }
  // Blank lines before the first JSONL row are read past.
  auto late = VectorStream::open(write("late.jsonl", "\n\n   \n{\"vector\": [1, 2]}\n"));
  ASSERT_TRUE(late.is_ok()) << late.status().to_string();
  EXPECT_EQ((*late)->dim(), 2u);
  EXPECT_EQ((*late)->format(), VectorFormat::kJsonl);
  VectorFile block;
  expect_error((*late)->next(0, &block), StatusCode::kInvalidArgument, "max_rows");
}

TEST_F(VectorStreamTest, MaxRowsAcrossBlocks) {
  for (const std::string& name : names()) {
    SCOPED_TRACE(name);
    const auto path = dir_.path() / name;
    ReadOptions ten;
    ten.max_rows = 10;
    auto opened = VectorStream::open(path, ten);
    ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
    VectorStream& stream = **opened;
    if (stream.total_rows()) {
      EXPECT_EQ(*stream.total_rows(), 10u);
    }
    VectorFile block;
    std::vector<std::size_t> sizes;
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(stream.next(3, &block).is_ok());
      if (block.rows == 0) break;
      sizes.push_back(block.rows);
    }
    EXPECT_EQ(sizes, (std::vector<std::size_t>{3, 3, 3, 1}));
    EXPECT_EQ(stream.rows_read(), 10u);

    auto whole = read_vector_file(path, ten);
    ASSERT_TRUE(whole.is_ok());
    const VectorFile blocks = read_in_blocks(path, 4, ten);
    EXPECT_EQ(blocks.rows, 10u);
    EXPECT_EQ(blocks.values, whole->values);
    EXPECT_EQ(blocks.ids, whole->ids);
    EXPECT_EQ(blocks.payloads, whole->payloads);

    // A cap above the file's rows reads them all.
    ReadOptions many;
    many.max_rows = 1000;
    EXPECT_EQ(read_in_blocks(path, 8, many).rows, kRows);
  }
}

/// Opens `path` (which must succeed) and reads blocks of `block_rows` rows; the error must come from
/// the block that starts at row `bad_block_first` (every block before it is whole), and again after.
void expect_error_in_later_block(const std::filesystem::path& path, std::size_t block_rows, std::size_t bad_block_first,
                                 StatusCode code, const std::string& fragment) {
  auto opened = VectorStream::open(path);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  VectorStream& stream = **opened;
  VectorFile block;
  while (stream.rows_read() < bad_block_first) {
    const Status s = stream.next(block_rows, &block);
    ASSERT_TRUE(s.is_ok()) << "row " << stream.rows_read() << ": " << s.to_string();
    ASSERT_EQ(block.rows, block_rows);
  }
  ASSERT_EQ(stream.rows_read(), bad_block_first);
  const Status s = stream.next(block_rows, &block);
  ASSERT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), code) << s.to_string();
  EXPECT_NE(s.message().find(fragment), std::string::npos) << "message '" << s.message() << "' lacks '" << fragment;
  EXPECT_EQ(block.rows, 0u);
  EXPECT_TRUE(block.values.empty());
  const Status again = stream.next(block_rows, &block);
  EXPECT_EQ(again.code(), s.code());
  EXPECT_EQ(again.message(), s.message());
}

TEST_F(VectorStreamTest, TexmexErrorsInALaterBlock) {
  auto rows = [](std::size_t n, std::int32_t dim, float value = 1.0f) {
    std::string bytes;
    for (std::size_t r = 0; r < n; ++r) {
      bytes.append(reinterpret_cast<const char*>(&dim), 4);
      for (std::int32_t i = 0; i < dim; ++i) bytes.append(reinterpret_cast<const char*>(&value), 4);
    }
    return bytes;
  };
  // Rows 0-9 of dimension 3, then row 10 of dimension 4: blocks of 4 fail at the third.
  expect_error_in_later_block(write("ragged.fvecs", rows(10, 3) + rows(1, 4)), 4, 8, StatusCode::kCorruption,
                              "dimension changes at row 10: 4 (row 0 has 3)");
  expect_error_in_later_block(write("neg.fvecs", rows(10, 3) + rows(1, -2)), 5, 10, StatusCode::kCorruption,
                              "row 10 has an invalid dimension -2");
  // The file ends inside row 10's values, or inside its header.
  std::string cut = rows(11, 3);
  cut.resize(cut.size() - 6);
  expect_error_in_later_block(write("cut.fvecs", cut), 4, 8, StatusCode::kCorruption,
                              "truncated: row 10 has 6 of 12 value bytes");
  const std::string head = rows(10, 3) + std::string("\x03\x00", 2);
  expect_error_in_later_block(write("head.fvecs", head), 5, 10, StatusCode::kCorruption,
                              "row 10 has a partial dimension header (2 of 4 bytes)");
  expect_error_in_later_block(write("nan.fvecs", rows(9, 3) + rows(1, 3, std::numeric_limits<float>::quiet_NaN())), 3,
                              9, StatusCode::kInvalidArgument, "row 9, value 0");
  // bvecs: the same checks with byte values.
  std::string b;
  for (int r = 0; r < 6; ++r) {
    const std::int32_t dim = r == 5 ? 3 : 2;
    b.append(reinterpret_cast<const char*>(&dim), 4);
    b.append(static_cast<std::size_t>(dim), '\x07');
  }
  expect_error_in_later_block(write("ragged.bvecs", b), 2, 4, StatusCode::kCorruption, "dimension changes at row 5");

  // A gzip stream cut short: the first rows decompress, a later block finds the damage.
  std::filesystem::create_directories(dir_.path());
  const auto g = testing::gaussian(4000, 16, /*seed=*/99);
  ASSERT_TRUE(bench::write_vecs<float>(dir_.path() / "big.fvecs.gz", {g.data.data(), 4000, 16}).is_ok());
  std::ifstream in(dir_.path() / "big.fvecs.gz", std::ios::binary);
  std::string gz((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  gz.resize(gz.size() / 2);
  auto opened = VectorStream::open(write("cut.fvecs.gz", gz));
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  VectorFile block;
  ASSERT_TRUE((*opened)->next(10, &block).is_ok());
  EXPECT_EQ(block.rows, 10u);
  Status s;
  while (s.is_ok()) {
    s = (*opened)->next(100, &block);
    if (s.is_ok()) {
      ASSERT_GT(block.rows, 0u) << "a cut gzip stream read as a clean end";
    }
  }
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.to_string();
  EXPECT_NE(s.message().find("cut.fvecs.gz: damaged or truncated gzip data"), std::string::npos) << s.message();
  EXPECT_LT((*opened)->rows_read(), 4000u);
}

TEST_F(VectorStreamTest, NpyErrorsInALaterBlock) {
  std::vector<float> f(12 * 2, 1.0f);
  f[9 * 2 + 1] = std::numeric_limits<float>::infinity();
  expect_error_in_later_block(write("inf.npy", npy(f4_dict(12, 2), f.data(), f.size() * 4)), 3, 9,
                              StatusCode::kInvalidArgument, "row 9, value 1");
  std::vector<double> d(12 * 2, 1.0);
  d[7 * 2] = -1e300;
  expect_error_in_later_block(
      write("big.npy", npy("{'descr': '<f8', 'fortran_order': False, 'shape': (12, 2), }", d.data(), d.size() * 8)), 3,
      6, StatusCode::kInvalidArgument, "row 7, value 0");
}

TEST_F(VectorStreamTest, JsonlErrorsInALaterBlock) {
  std::string good;
  for (int r = 0; r < 6; ++r) good += "{\"vector\": [1, 2]}\n";
  // Line 8 (after a blank line 7) is row 6: blocks of 2 fail at the fourth.
  expect_error_in_later_block(write("bad.jsonl", good + "\n{\"vector\": [1,}\n"), 2, 6, StatusCode::kInvalidArgument,
                              "bad.jsonl:8: not valid JSON");
  expect_error_in_later_block(write("ragged.jsonl", good + "{\"vector\": [1, 2, 3]}\n"), 4, 4,
                              StatusCode::kInvalidArgument,
                              "ragged.jsonl:7: the vector has 3 values, but the one on line 1 has 2");
  expect_error_in_later_block(write("id.jsonl", good + "{\"id\": -4, \"vector\": [1, 2]}\n"), 3, 6,
                              StatusCode::kInvalidArgument, "id.jsonl:7: id -4 is negative");
  expect_error_in_later_block(write("nan.jsonl", good + "{\"vector\": [1, 1e40]}\n"), 5, 5,
                              StatusCode::kInvalidArgument, "line 7, value 1");
}

TEST_F(VectorStreamTest, OpenFailsOnEmptyOrMissingFiles) {
  expect_error(VectorStream::open(write("empty.fvecs", "")), StatusCode::kCorruption, "no vectors in file");
  expect_error(VectorStream::open(write("empty.jsonl", "\n \n")), StatusCode::kInvalidArgument, "no vectors in file");
  expect_error(VectorStream::open(write("empty.npy", npy(f4_dict(0, 4), nullptr, 0))), StatusCode::kInvalidArgument,
               "no vectors in file");
  expect_error(VectorStream::open(write("first.jsonl", "{\"vector\": \"x\"}\n{\"vector\": [1]}\n")),
               StatusCode::kInvalidArgument, "first.jsonl:1: \"vector\" must be");
  expect_error(VectorStream::open(dir_.path() / "none.bvecs"), StatusCode::kNotFound, "not found");
  expect_error(VectorStream::open(dir_.path() / "x.txt"), StatusCode::kInvalidArgument, "give --format");
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
