// Shared by the relative-representation CPU tests and the GPU parity tests.
#pragma once

#include <gtest/gtest.h>

#include <utility>

#include "testing/random_data.h"
#include "vecstash/kernels/relative.h"

namespace vecstash::kernels::test {

/// The anchors' basis with or without centring; a failed make() fails the calling test.
inline RelativeBasis make_relative_basis(const testing::Matrix& anchors, bool center) {
  RelativeOptions o;
  o.center = center;
  auto b = RelativeBasis::make(anchors.view(), o);
  EXPECT_TRUE(b.is_ok()) << b.status().to_string();
  return b.is_ok() ? std::move(b).value() : RelativeBasis();
}

}  // namespace vecstash::kernels::test
