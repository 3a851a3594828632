#include "zeroshard/nn/compute_threads.hpp"

#include <omp.h>

#include <Eigen/Core>
#include <string>

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

}  // namespace zs::nn
