#pragma once
// Bulk conversions between float32 and the 16-bit storage types: what mixed precision does
// whenever 16-bit values meet float32 arithmetic (docs/mixed-precision.md, "Where values are
// rounded"). Every narrowing rounds to nearest even, once; NaN stays NaN, values beyond the
// 16-bit range become inf (float16) exactly as to_bfloat16 / to_float16 (dtype.hpp) do one
// element at a time, and these loops give the same bits. Not collective; no allocation.
//
// `type` names the dtype of the void* arrays: float32, bfloat16 or float16 (float64 throws
// InvalidArgument). Counts are elements.

#include <cstdint>

#include "zeroshard/dtype.hpp"

namespace zs {

/// dst[i] = float(src[i]).
void widen(const void* src, DType type, float* dst, std::int64_t count);
/// dst[i] = round_to_type(src[i]).
void narrow(const float* src, void* dst, DType type, std::int64_t count);
/// acc[i] = round_to_type(float(acc[i]) + add[i]): a float32 addend (a gradient computed in
/// float32) folded into a 16-bit (or float32) accumulator.
void add_into(void* acc, DType type, const float* add, std::int64_t count);
/// acc[i] = round_to_type(float(acc[i]) + float(add[i])): both in `type`.
void accumulate(void* acc, const void* add, DType type, std::int64_t count);
/// dst[i] = float(src[i]) * scale, rounded to float32 (the gradient unscaling of the optimizer
/// step: the product is what a float32 gradient multiplied in place would hold).
void widen_scaled(const void* src, DType type, float scale, float* dst, std::int64_t count);

}  // namespace zs
