#include "zeroshard/nn/compute_threads.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cstdlib>
#include <string>
#include <string_view>

#include "zeroshard/error.hpp"

#ifdef ZS_GEMM_OPENBLAS
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename();
extern "C" char* openblas_get_config();
#endif

namespace zs::nn {
namespace {
int threads = 1;

// OpenBLAS runs each call on one thread (the threads share Linear's blocks instead, so the bits
// do not depend on the count); a pthreads build of it would otherwise start one per core in
// every rank. Runs once, before the first GEMM.
[[maybe_unused]] const bool blas_single_threaded = [] {
#ifdef ZS_GEMM_OPENBLAS
  openblas_set_num_threads(1);
#endif
  return true;
}();
}  // namespace

void set_compute_threads(int n) {
  if (n < 1) throw InvalidArgument("compute threads must be >= 1, not " + std::to_string(n));
  threads = n;
  // Our own parallel loops (Linear's blocks, the optimizer) take omp_get_max_threads(). Eigen
  // never threads by itself: its parallel GEMM picks its depth blocking from the thread count,
  // which would make the bits depend on it.
  omp_set_num_threads(n);
  Eigen::setNbThreads(1);
}

int compute_threads() { return threads; }

std::string gemm_backend() {
#ifdef ZS_GEMM_OPENBLAS
  return std::string("OpenBLAS ") + openblas_get_corename() + " (" + openblas_get_config() + ")";
#else
  return "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
         std::to_string(EIGEN_MINOR_VERSION);
#endif
}

std::string gemm_kernel_warning() {
#if defined(ZS_GEMM_OPENBLAS) && (defined(__x86_64__) || defined(__i386__))
  // OpenBLAS's AVX-512 kernels (its Cooperlake and SapphireRapids builds add bf16 to SkylakeX's).
  constexpr std::array<std::string_view, 3> avx512_cores{"SkylakeX", "Cooperlake", "SapphireRapids"};
  const std::string core = openblas_get_corename();
  if (std::find(avx512_cores.begin(), avx512_cores.end(), core) != avx512_cores.end()) return {};
  __builtin_cpu_init();
  const bool cpu_has_avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                              __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                              __builtin_cpu_supports("avx512cd");
  if (!cpu_has_avx512) return {};
  const char* forced = std::getenv("OPENBLAS_CORETYPE");
  std::string cause_and_fix;
  if (std::string(openblas_get_config()).find("DYNAMIC_ARCH") == std::string::npos)
    // Built for one CPU: OPENBLAS_CORETYPE is ignored, so only another library helps.
    cause_and_fix = "this OpenBLAS is built for that core alone (no DYNAMIC_ARCH), so OPENBLAS_CORETYPE cannot change "
                    "it. Link an OpenBLAS built with DYNAMIC_ARCH=1 or for this CPU, or build ZeroShard with "
                    "-DZS_BLAS=Eigen (Eigen's own AVX-512 kernels)";
  else if (forced && *forced)
    cause_and_fix = "the environment sets OPENBLAS_CORETYPE=" + std::string(forced) +
                    ", which holds it there. Start the job with OPENBLAS_CORETYPE unset (OpenBLAS's own choice) or "
                    "OPENBLAS_CORETYPE=SkylakeX";
  else
    cause_and_fix = "this OpenBLAS does not recognise the CPU. Start the job with OPENBLAS_CORETYPE=SkylakeX";
  return "zeroshard: OpenBLAS runs its " + core + " GEMM kernels (AVX2 or older) on a CPU with AVX-512: " +
         cause_and_fix + " (1.1-1.3x faster GEMMs on the development VM: docs/performance.md, \"OpenBLAS's kernels\")";
#else
  // Eigen builds have no OpenBLAS kernels; elsewhere than x86 there is no AVX-512 to miss.
  return {};
#endif
}

}  // namespace zs::nn
