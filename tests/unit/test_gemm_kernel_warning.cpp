// nn::gemm_kernel_warning() against the CPU's flags as /proc/cpuinfo lists them (not the
// compiler's __builtin_cpu_supports the function uses). Registered twice (tests/CMakeLists.txt):
// with OPENBLAS_CORETYPE=Haswell in the environment, as some machines set it, and with it unset.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "zeroshard/nn/compute_threads.hpp"

namespace {

bool cpu_has_avx512() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') + 1));
    int found = 0;
    for (std::string flag; words >> flag;)
      for (const char* wanted : {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"})
        if (flag == wanted) ++found;
    return found == 5;
  }
  return false;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(GemmKernelWarning, NamesKernelsBelowTheCpuAndTheFix) {
  const std::string backend = zs::nn::gemm_backend();
  const std::string warning = zs::nn::gemm_kernel_warning();
  if (backend.rfind("OpenBLAS ", 0) != 0) {
    EXPECT_EQ(warning, "") << "an Eigen build (" << backend << ") has no OpenBLAS kernels to warn of";
    return;
  }
  const bool avx512_kernels = contains(backend, "SkylakeX") || contains(backend, "Cooperlake") ||
                              contains(backend, "SapphireRapids");
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (avx512_kernels || !cpu_has_avx512()) {
    EXPECT_EQ(warning, "") << backend;
    return;
  }
  EXPECT_TRUE(contains(warning, "AVX-512")) << warning;
  EXPECT_TRUE(contains(warning, "OPENBLAS_CORETYPE=SkylakeX")) << warning;
  if (forced && *forced) {
    EXPECT_TRUE(contains(warning, "the environment sets OPENBLAS_CORETYPE=" + std::string(forced))) << warning;
    EXPECT_TRUE(contains(warning, "OPENBLAS_CORETYPE unset")) << warning;
  } else
    EXPECT_TRUE(contains(warning, "does not recognise the CPU")) << warning;
}

TEST(GemmKernelWarning, HaswellForcedOnAnAvx512CpuWarns) {
  // The CTest entry gemm_kernel_warning_forced sets OPENBLAS_CORETYPE=Haswell: OpenBLAS then runs
  // its AVX2 kernels, which on an AVX-512 CPU must be reported.
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  if (!forced || std::string(forced) != "Haswell") GTEST_SKIP() << "run by the CTest entry that sets OPENBLAS_CORETYPE=Haswell";
  if (zs::nn::gemm_backend().rfind("OpenBLAS ", 0) != 0) GTEST_SKIP() << "an Eigen build";
  EXPECT_TRUE(contains(zs::nn::gemm_backend(), "Haswell")) << zs::nn::gemm_backend();
  EXPECT_EQ(zs::nn::gemm_kernel_warning().empty(), !cpu_has_avx512()) << zs::nn::gemm_kernel_warning();
}

}  // namespace
