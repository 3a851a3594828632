#pragma once
// What this build of ZeroShard is compiled for and what the CPU it runs on offers: printed by
// the benchmarks in every table and by the examples at start-up, so that a number is never
// quoted without the instruction set it was measured with.

#include <string>

namespace zs {

struct BuildInfo {
  /// The configure-time level (CMake's ZS_SIMD: NATIVE, AVX512, AVX2, SSE4 or BASELINE;
  /// AUTO is reported as the level it chose).
  std::string simd_level;
  /// The compiler flags that level adds ("-march=native"; empty for BASELINE).
  std::string simd_flags;
  /// Vector extensions the compiler was allowed to use, from its predefined macros
  /// ("avx512f avx512bf16 avx2 fma sse4.2", "neon", or "sse2").
  std::string compiled_isa;
  /// Vector extensions this CPU reports at run time (x86: cpuid through the compiler's
  /// __builtin_cpu_supports; other architectures: "unknown").
  std::string cpu_isa;
};

/// The build and CPU facts above. Never throws; cheap after the first call.
const BuildInfo& build_info();

/// One line for logs and table headers: "SIMD NATIVE (-march=native: avx2 fma sse4.2; CPU: avx2 fma sse4.2)".
std::string describe_build();

}  // namespace zs
