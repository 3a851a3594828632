#pragma once
// How many threads a rank's compute uses: Linear's GEMMs (its blocks of output features are
// shared among the threads) and the optimizer's elementwise update, through OpenMP; attention's
// per-head products and the elementwise layers run on the calling thread. One setting per
// process, as torch.set_num_threads and OMP_NUM_THREADS are; the engine sets it at construction
// from EngineConfig::compute_threads (config key `compute.threads`, docs/config.md). Results do
// not depend on it: a block's size depends on the shapes alone and each block is one
// single-threaded Eigen product; the optimizer is elementwise (tests/mpi/test_compute_threads.cpp).

#include <string>

namespace zs::nn {

/// Sets the process's compute threads. Throws InvalidArgument unless threads >= 1. Not
/// collective; not thread-safe against a running forward/backward.
void set_compute_threads(int threads);

/// The process's compute threads (1 until set).
int compute_threads();

/// The GEMM kernels this build uses (CMake's ZS_BLAS): "OpenBLAS <core> (<its config>)" or
/// "Eigen <version>", for benchmark tables and logs.
std::string gemm_backend();

/// Empty, or one line saying that OpenBLAS runs kernels below the CPU's instruction set (AVX2
/// or older kernels on a CPU with AVX-512F/BW/DQ/VL/CD), why (OPENBLAS_CORETYPE in the
/// environment, a CPU this OpenBLAS does not recognise, or an OpenBLAS built for one core
/// without DYNAMIC_ARCH) and the fix. OpenBLAS picks its kernels when it loads, before any of
/// our code runs, so the process cannot change them itself. Always empty in Eigen builds and
/// off x86. Not collective.
std::string gemm_kernel_warning();

}  // namespace zs::nn
