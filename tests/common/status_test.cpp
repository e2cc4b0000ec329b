#include "vecstash/common/status.h"

#include <gtest/gtest.h>

#include "vecstash/common/types.h"

namespace vecstash {
namespace {

TEST(Status, OkAndErrors) {
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_EQ(Status::ok().to_string(), "OK");
  const Status s = Status::invalid_argument("bad k");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.to_string(), "InvalidArgument: bad k");
  EXPECT_EQ(Status::corruption("x").code(), StatusCode::kCorruption);
}

Status fails_early(bool fail, int* reached) {
  VECSTASH_RETURN_IF_ERROR(fail ? Status::not_found("missing") : Status::ok());
  *reached = 1;
  return Status::ok();
}

TEST(Status, ReturnIfError) {
  int reached = 0;
  EXPECT_EQ(fails_early(true, &reached).code(), StatusCode::kNotFound);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_early(false, &reached).is_ok());
  EXPECT_EQ(reached, 1);
}

TEST(Result, ValueOrStatus) {
  Result<int> r = 42;
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(*r, 42);
  Result<int> e = Status::internal("boom");
  ASSERT_FALSE(e.is_ok());
  EXPECT_EQ(e.status().code(), StatusCode::kInternal);
}

TEST(Types, ParseAndPrintRoundTrip) {
  for (int k = 0; k < kCodeKindCount; ++k) {
    const auto kind = static_cast<CodeKind>(k);
    EXPECT_EQ(parse_code_kind(to_string(kind)), kind);
  }
  for (int m = 0; m < 4; ++m) EXPECT_EQ(parse_metric(to_string(static_cast<Metric>(m))), static_cast<Metric>(m));
  for (int s = 0; s < 3; ++s)
    EXPECT_EQ(parse_scale_mode(to_string(static_cast<ScaleMode>(s))), static_cast<ScaleMode>(s));
  EXPECT_EQ(parse_code_kind("int8"), CodeKind::kI8);
  EXPECT_EQ(parse_metric("cosine"), Metric::kCos);
  EXPECT_FALSE(parse_code_kind("int4").has_value());
  EXPECT_FALSE(parse_metric("").has_value());
}

}  // namespace
}  // namespace vecstash
