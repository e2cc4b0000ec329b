#include "vecstash/engine/point_id.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace vecstash::engine {
namespace {

TEST(PointId, NumbersAndUuidsRoundTripThroughJsonAndKeys) {
  const auto n = PointId::from_json(nlohmann::json(18446744073709551615ull));
  ASSERT_TRUE(n.is_ok()) << n.status().to_string();
  EXPECT_EQ(n->lo, 18446744073709551615ull);
  EXPECT_EQ(n->to_json(), nlohmann::json(18446744073709551615ull));

  const auto u = PointId::from_json(nlohmann::json("5C56C793-69F3-4FBF-87E6-C4BF54C28C26"));
  ASSERT_TRUE(u.is_ok()) << u.status().to_string();
  EXPECT_TRUE(u->is_uuid());
  EXPECT_EQ(u->to_string(), "5c56c793-69f3-4fbf-87e6-c4bf54c28c26");
  const auto simple = PointId::parse_uuid("5c56c79369f34fbf87e6c4bf54c28c26");
  ASSERT_TRUE(simple.is_ok());
  EXPECT_EQ(*simple, *u);

  for (const PointId& id : {*n, *u, PointId::number(0), PointId::number(258)}) {
    const auto back = PointId::from_key(id.key());
    ASSERT_TRUE(back.is_ok());
    EXPECT_EQ(*back, id);
    EXPECT_EQ(id.key().size(), PointId::kKeySize);
  }
}

TEST(PointId, KeyOrderIsNumericThenUuid) {
  EXPECT_LT(PointId::number(255).key(), PointId::number(256).key());
  EXPECT_LT(PointId::number(~0ull).key(), PointId::parse_uuid("00000000-0000-0000-0000-000000000000")->key());
}

TEST(PointId, RejectsWhatQdrantRejects) {
  for (const auto& bad : {nlohmann::json(-1), nlohmann::json(1.5), nlohmann::json("12"), nlohmann::json(nullptr),
                          nlohmann::json("5c56c793-69f3-4fbf-87e6-c4bf54c28c2"),
                          nlohmann::json("5c56c793-69f3-4fbf-87e6-c4bf54c28c2g"),
                          nlohmann::json("5c56c793x69f3-4fbf-87e6-c4bf54c28c26"), nlohmann::json::array()}) {
    const auto r = PointId::from_json(bad);
    EXPECT_FALSE(r.is_ok()) << bad.dump();
    if (!r.is_ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    }
  }
  EXPECT_FALSE(PointId::from_key("short").is_ok());
}

}  // namespace
}  // namespace vecstash::engine
