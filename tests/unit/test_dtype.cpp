#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>

#include "zeroshard/dtype.hpp"
#include "zeroshard/error.hpp"

namespace zs {
namespace {

// Independent decoder of IEEE binary16 in double: sign * 2^(e-15) * (1 + m/1024), or subnormal.
double reference_half(std::uint16_t bits) {
  const int sign = bits >> 15 ? -1 : 1;
  const int e = (bits >> 10) & 0x1F, m = bits & 0x3FF;
  if (e == 0) return sign * std::ldexp(m, -24);
  if (e == 31) return m ? std::nan("") : sign * INFINITY;
  return sign * std::ldexp(1.0 + m / 1024.0, e - 15);
}

TEST(DType, EveryFloat16DecodesLikeTheReferenceAndRoundTrips) {
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const float16 h{static_cast<std::uint16_t>(bits)};
    const double want = reference_half(h.bits);
    const float got = to_float(h);
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << bits;
      continue;
    }
    ASSERT_EQ(static_cast<double>(got), want) << "bits " << bits;
    ASSERT_EQ(to_float16(got).bits, h.bits) << "bits " << bits;
  }
}

TEST(DType, EveryBFloat16RoundTrips) {
  for (std::uint32_t bits = 0; bits <= 0xFFFF; ++bits) {
    const bfloat16 b{static_cast<std::uint16_t>(bits)};
    const float f = to_float(b);
    if (std::isnan(f)) continue;
    ASSERT_EQ(to_bfloat16(f).bits, b.bits) << bits;
  }
}

TEST(DType, RoundingIsToNearestEven) {
  // bfloat16 keeps 8 significant bits: 1 + 2^-8 is a tie between 1 and 1 + 2^-7 -> even (1).
  EXPECT_EQ(to_float(to_bfloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_EQ(to_float(to_bfloat16(1.0f + 3 * std::ldexp(1.0f, -8))), 1.0f + std::ldexp(1.0f, -6));
  // float16 keeps 11 significant bits.
  EXPECT_EQ(to_float(to_float16(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(to_float(to_float16(1.0f + 3 * std::ldexp(1.0f, -11))), 1.0f + std::ldexp(1.0f, -9));
  EXPECT_EQ(to_float(to_float16(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(to_float(to_float16(65520.0f))));
  EXPECT_EQ(to_float(to_float16(65519.0f)), 65504.0f);
  EXPECT_EQ(to_float16(std::ldexp(1.0f, -24)).bits, 1);  // smallest subnormal
  EXPECT_EQ(to_float16(std::ldexp(1.0f, -26)).bits, 0);  // below half of it
  EXPECT_TRUE(std::isnan(to_float(to_bfloat16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(to_float(to_float16(std::nanf("")))));
}

TEST(DType, NamesAndSizes) {
  for (DType t : {DType::float32, DType::float64, DType::bfloat16, DType::float16})
    EXPECT_EQ(parse_dtype(to_string(t)), t);
  EXPECT_EQ(size_of(DType::float64), 8u);
  EXPECT_EQ(size_of(DType::bfloat16), 2u);
  EXPECT_THROW(parse_dtype("float8"), InvalidArgument);
}

}  // namespace
}  // namespace zs
