#include "vecstash/common/blob.h"

#include <gtest/gtest.h>

namespace vecstash {
namespace {

std::vector<std::uint8_t> sample_blob(std::uint16_t version = 1) {
  BlobWriter w("TEST", version);
  w.u8(7);
  w.u32(123456);
  const std::vector<float> f{1.5f, -2.0f};
  w.f32s(f);
  return w.finish();
}

TEST(Blob, RoundTrip) {
  const auto blob = sample_blob();
  BlobReader r(blob, "test blob");
  std::uint16_t v = 0;
  ASSERT_TRUE(r.open("TEST", 1, &v).is_ok());
  EXPECT_EQ(v, 1);
  std::uint8_t a = 0;
  std::uint32_t b = 0;
  std::vector<float> f;
  ASSERT_TRUE(r.u8(&a).is_ok());
  ASSERT_TRUE(r.u32(&b).is_ok());
  ASSERT_TRUE(r.f32s(&f, 10).is_ok());
  EXPECT_TRUE(r.finish().is_ok());
  EXPECT_EQ(a, 7);
  EXPECT_EQ(b, 123456u);
  EXPECT_EQ(f, (std::vector<float>{1.5f, -2.0f}));
}

TEST(Blob, EveryFlippedByteIsDetected) {
  const auto blob = sample_blob();
  for (std::size_t i = 0; i < blob.size(); ++i) {
    auto bad = blob;
    bad[i] ^= 0x5A;
    BlobReader r(bad, "test blob");
    std::uint16_t v = 0;
    const Status s = r.open("TEST", 1, &v);
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << "byte " << i;
  }
}

TEST(Blob, FutureVersionAndTruncation) {
  const auto future = sample_blob(2);
  BlobReader r(future, "test blob");
  std::uint16_t v = 0;
  const Status s = r.open("TEST", 1, &v);
  EXPECT_EQ(s.code(), StatusCode::kCorruption);
  EXPECT_NE(s.message().find("unsupported format version 2"), std::string::npos) << s.message();

  const auto blob = sample_blob();
  for (std::size_t len = 0; len < blob.size(); ++len) {
    BlobReader t(std::span<const std::uint8_t>(blob).first(len), "test blob");
    EXPECT_FALSE(t.open("TEST", 1, &v).is_ok()) << len;
  }
  // Reading past the payload is an error, not a crash.
  BlobReader over(blob, "test blob");
  ASSERT_TRUE(over.open("TEST", 1, &v).is_ok());
  std::uint64_t x = 0;
  ASSERT_TRUE(over.u64(&x).is_ok());
  std::vector<float> f;
  EXPECT_EQ(over.f32s(&f, 1000).code(), StatusCode::kCorruption);
}

TEST(Blob, Crc32KnownValue) {
  const std::string s = "123456789";
  EXPECT_EQ(crc32(std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())), 0xCBF43926u);
}

}  // namespace
}  // namespace vecstash
