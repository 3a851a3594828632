#include "zeroshard/dtype.hpp"

#include <bit>
#include <cmath>
#include <cstring>

#include "zeroshard/error.hpp"

namespace zs {

float to_float(bfloat16 v) { return std::bit_cast<float>(std::uint32_t{v.bits} << 16); }

bfloat16 to_bfloat16(float v) {
  std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  if (std::isnan(v)) return bfloat16{static_cast<std::uint16_t>((u >> 16) | 0x40)};  // keep quiet NaN
  // Round to nearest even on the 16 bits that are dropped.
  const std::uint32_t rounding_bias = 0x7FFF + ((u >> 16) & 1);
  return bfloat16{static_cast<std::uint16_t>((u + rounding_bias) >> 16)};
}

float to_float(float16 v) {
  const std::uint32_t sign = std::uint32_t{v.bits & 0x8000u} << 16;
  const std::uint32_t exponent = (v.bits >> 10) & 0x1F;
  const std::uint32_t mantissa = v.bits & 0x3FF;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Zero or subnormal: value = mantissa * 2^-24, exact in float32.
    float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

float16 to_float16(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const float magnitude = std::fabs(v);
  if (std::isnan(v)) return float16{static_cast<std::uint16_t>(sign | 0x7E00)};
  if (magnitude >= 65520.0f) return float16{static_cast<std::uint16_t>(sign | 0x7C00)};  // rounds to inf
  if (magnitude < 6.103515625e-05f) {
    // Subnormal range: units of 2^-24; nearbyint rounds half to even in the default mode.
    const auto units = static_cast<std::uint16_t>(std::nearbyint(std::ldexp(magnitude, 24)));
    return float16{static_cast<std::uint16_t>(sign | units)};
  }
  // Normal: re-bias the exponent and round the 13 dropped mantissa bits to nearest even.
  const std::uint32_t mag_bits = u & 0x7FFFFFFFu;
  std::uint32_t h = ((mag_bits >> 23) - 112) << 10 | ((mag_bits >> 13) & 0x3FF);
  const std::uint32_t dropped = mag_bits & 0x1FFF;
  if (dropped > 0x1000 || (dropped == 0x1000 && (h & 1))) ++h;  // carry may roll into exponent: correct
  return float16{static_cast<std::uint16_t>(sign | h)};
}

std::size_t size_of(DType t) {
  switch (t) {
    case DType::float32: return 4;
    case DType::float64: return 8;
    case DType::bfloat16:
    case DType::float16: return 2;
  }
  throw InvalidArgument("size_of: unknown DType value " + std::to_string(static_cast<int>(t)));
}

std::string to_string(DType t) {
  switch (t) {
    case DType::float32: return "float32";
    case DType::float64: return "float64";
    case DType::bfloat16: return "bfloat16";
    case DType::float16: return "float16";
  }
  return "dtype(" + std::to_string(static_cast<int>(t)) + ")";
}

DType parse_dtype(const std::string& name) {
  for (DType t : {DType::float32, DType::float64, DType::bfloat16, DType::float16})
    if (to_string(t) == name) return t;
  throw InvalidArgument("unknown dtype '" + name +
                        "': use one of float32, float64, bfloat16, float16");
}

}  // namespace zs
