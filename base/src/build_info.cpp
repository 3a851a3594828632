#include "zeroshard/build_info.hpp"

#include <string>
#include <vector>

#ifndef ZS_SIMD_LEVEL
#define ZS_SIMD_LEVEL "unknown"
#endif
#ifndef ZS_SIMD_FLAGS
#define ZS_SIMD_FLAGS ""
#endif

namespace zs {
namespace {

std::string joined(const std::vector<const char*>& names) {
  std::string out;
  for (const char* name : names) out += (out.empty() ? "" : " ") + std::string(name);
  return out.empty() ? "none" : out;
}

// The extensions this translation unit was compiled with: every ZeroShard source gets the same
// flags (cmake/ZeroShardSimd.cmake), so this file speaks for the whole build.
std::string compiled_isa() {
  std::vector<const char*> isa;
#ifdef __AVX512F__
  isa.push_back("avx512f");
#endif
#ifdef __AVX512BF16__
  isa.push_back("avx512bf16");
#endif
#ifdef __AVX512FP16__
  isa.push_back("avx512fp16");
#endif
#ifdef __AVX2__
  isa.push_back("avx2");
#endif
#ifdef __FMA__
  isa.push_back("fma");
#endif
#ifdef __F16C__
  isa.push_back("f16c");  // float16 conversions (dtype_convert.cpp)
#endif
#ifdef __SSE4_2__
  isa.push_back("sse4.2");
#endif
#if defined(__SSE2__) && !defined(__SSE4_2__)
  isa.push_back("sse2");
#endif
#if defined(__ARM_NEON) || defined(__ARM_NEON__)
  isa.push_back("neon");
#endif
#ifdef __ARM_FEATURE_SVE
  isa.push_back("sve");
#endif
  return joined(isa);
}

std::string cpu_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  std::vector<const char*> isa;
  if (__builtin_cpu_supports("avx512f")) isa.push_back("avx512f");
  if (__builtin_cpu_supports("avx512bf16")) isa.push_back("avx512bf16");
  if (__builtin_cpu_supports("avx2")) isa.push_back("avx2");
  if (__builtin_cpu_supports("fma")) isa.push_back("fma");
  if (__builtin_cpu_supports("f16c")) isa.push_back("f16c");
  if (__builtin_cpu_supports("sse4.2")) isa.push_back("sse4.2");
  return joined(isa);
#else
  return "unknown";
#endif
}

}  // namespace

const BuildInfo& build_info() {
  static const BuildInfo info{ZS_SIMD_LEVEL, ZS_SIMD_FLAGS, compiled_isa(), cpu_isa()};
  return info;
}

std::string describe_build() {
  const BuildInfo& b = build_info();
  return "SIMD " + b.simd_level + " (" + (b.simd_flags.empty() ? std::string("no -march") : b.simd_flags) + ": " +
         b.compiled_isa + "; CPU: " + b.cpu_isa + ")";
}

}  // namespace zs
