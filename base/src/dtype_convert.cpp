// Branch-free loops (the compiler vectorises them under ZS_SIMD): bfloat16 is the top half of
// a float32, rounded with integer arithmetic; float16 goes through F16C where the build has it
// (vcvtps2ph rounds to nearest even, as to_float16 does) and through to_float16 otherwise.
#include "zeroshard/dtype_convert.hpp"

#include <bit>
#include <cstring>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "zeroshard/error.hpp"

namespace zs {

namespace {

inline float bf16_to_float(std::uint16_t b) { return std::bit_cast<float>(std::uint32_t{b} << 16); }

// to_bfloat16 without the branch: NaN keeps its sign and payload top, quieted.
inline std::uint16_t float_to_bf16(float v) {
  const std::uint32_t u = std::bit_cast<std::uint32_t>(v);
  const bool nan = (u & 0x7FFFFFFFu) > 0x7F800000u;
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  return static_cast<std::uint16_t>(nan ? ((u >> 16) | 0x40u) : rounded);
}

inline float f16_to_float(std::uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return to_float(float16{h});
#endif
}

inline std::uint16_t float_to_f16(float v) {
#if defined(__F16C__)
  return static_cast<std::uint16_t>(_cvtss_sh(v, _MM_FROUND_TO_NEAREST_INT));
#else
  return to_float16(v).bits;
#endif
}

[[noreturn]] void unsupported(DType type, const char* what) {
  throw InvalidArgument(std::string(what) + ": dtype " + to_string(type) +
                        " is not a storage type of mixed precision (float32, bfloat16, float16)");
}

// Applies `op(float in) -> float out` elementwise from `src` (of `type`) to float32, and
// `store` back: one template so that each dtype's loop is written once.
template <class Load, class Store, class Op>
void transform(const std::uint16_t* src, std::uint16_t* dst, std::int64_t count, Load load, Store store, Op op) {
  for (std::int64_t i = 0; i < count; ++i) dst[i] = store(op(load(src[i]), i));
}

}  // namespace

void widen(const void* src, DType type, float* dst, std::int64_t count) {
  widen_scaled(src, type, 1.0f, dst, count);
}

void widen_scaled(const void* src, DType type, float scale, float* dst, std::int64_t count) {
  const auto* h = static_cast<const std::uint16_t*>(src);
  switch (type) {
    case DType::float32: {
      const auto* f = static_cast<const float*>(src);
      for (std::int64_t i = 0; i < count; ++i) dst[i] = f[i] * scale;
      return;
    }
    case DType::bfloat16:
      for (std::int64_t i = 0; i < count; ++i) dst[i] = bf16_to_float(h[i]) * scale;
      return;
    case DType::float16:
      for (std::int64_t i = 0; i < count; ++i) dst[i] = f16_to_float(h[i]) * scale;
      return;
    default: unsupported(type, "widen");
  }
}

void narrow(const float* src, void* dst, DType type, std::int64_t count) {
  auto* h = static_cast<std::uint16_t*>(dst);
  switch (type) {
    case DType::float32: std::memmove(dst, src, static_cast<std::size_t>(count) * sizeof(float)); return;
    case DType::bfloat16:
      for (std::int64_t i = 0; i < count; ++i) h[i] = float_to_bf16(src[i]);
      return;
    case DType::float16:
      for (std::int64_t i = 0; i < count; ++i) h[i] = float_to_f16(src[i]);
      return;
    default: unsupported(type, "narrow");
  }
}

void add_into(void* acc, DType type, const float* add, std::int64_t count) {
  auto* h = static_cast<std::uint16_t*>(acc);
  switch (type) {
    case DType::float32: {
      auto* f = static_cast<float*>(acc);
      for (std::int64_t i = 0; i < count; ++i) f[i] += add[i];
      return;
    }
    case DType::bfloat16:
      transform(h, h, count, bf16_to_float, float_to_bf16, [add](float a, std::int64_t i) { return a + add[i]; });
      return;
    case DType::float16:
      transform(h, h, count, f16_to_float, float_to_f16, [add](float a, std::int64_t i) { return a + add[i]; });
      return;
    default: unsupported(type, "add_into");
  }
}

void accumulate(void* acc, const void* add, DType type, std::int64_t count) {
  auto* h = static_cast<std::uint16_t*>(acc);
  const auto* a = static_cast<const std::uint16_t*>(add);
  switch (type) {
    case DType::float32: {
      auto* f = static_cast<float*>(acc);
      const auto* g = static_cast<const float*>(add);
      for (std::int64_t i = 0; i < count; ++i) f[i] += g[i];
      return;
    }
    case DType::bfloat16:
      transform(h, h, count, bf16_to_float, float_to_bf16,
                [a](float x, std::int64_t i) { return x + bf16_to_float(a[i]); });
      return;
    case DType::float16:
      transform(h, h, count, f16_to_float, float_to_f16, [a](float x, std::int64_t i) { return x + f16_to_float(a[i]); });
      return;
    default: unsupported(type, "accumulate");
  }
}

}  // namespace zs
