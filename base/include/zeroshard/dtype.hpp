#pragma once
// Element types ZeroShard moves and reduces, and the 16-bit float storage types.
// bfloat16 and float16 are storage only: arithmetic widens to float32 (see to_float) and the
// result is rounded once, to nearest even (from_float).

#include <cstddef>
#include <cstdint>
#include <string>
#include <type_traits>

namespace zs {

enum class DType : std::uint8_t { float32, float64, bfloat16, float16 };

/// Brain float: the top 16 bits of an IEEE float32.
struct bfloat16 {
  std::uint16_t bits = 0;
};
/// IEEE 754 binary16.
struct float16 {
  std::uint16_t bits = 0;
};

float to_float(bfloat16 v);
float to_float(float16 v);
bfloat16 to_bfloat16(float v);  // round to nearest even; NaN stays NaN
float16 to_float16(float v);    // round to nearest even; overflow gives inf, tiny gives subnormal/0

std::size_t size_of(DType t);
std::string to_string(DType t);
/// Parses "float32", "float64", "bfloat16", "float16"; throws InvalidArgument otherwise.
DType parse_dtype(const std::string& name);

template <class T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::float32;
  else if constexpr (std::is_same_v<T, double>) return DType::float64;
  else if constexpr (std::is_same_v<T, bfloat16>) return DType::bfloat16;
  else if constexpr (std::is_same_v<T, float16>) return DType::float16;
  else static_assert(!sizeof(T), "ZeroShard supports float, double, bfloat16 and float16");
}

inline bool is_half(DType t) { return t == DType::bfloat16 || t == DType::float16; }

}  // namespace zs
