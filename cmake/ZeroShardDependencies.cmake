# Every external dependency, found once. The same logic runs again for users in
# ZeroShardConfig.cmake (find_dependency), so keep the two in step; the package config asks
# only for what a C++-only consumer project can find (MPI CXX; HDF5 travels in zs_hdf5).
find_package(MPI REQUIRED COMPONENTS C CXX)
find_package(HDF5 REQUIRED COMPONENTS C)
if(HDF5_IS_PARALLEL)
  set(ZS_HDF5_FLAVOUR "parallel")
else()
  set(ZS_HDF5_FLAVOUR "serial")
endif()
message(STATUS "ZeroShard: HDF5 ${HDF5_VERSION} is ${ZS_HDF5_FLAVOUR}")
# Boost: header-only parts only (the GPU machine has no compiled Boost).
find_package(Boost 1.74 REQUIRED CONFIG)  # BoostConfig.cmake: CMake >= 3.30 dropped FindBoost (CMP0167)
find_package(Threads REQUIRED)
find_package(Eigen3 3.3 REQUIRED NO_MODULE)  # header-only CPU math
find_package(OpenMP REQUIRED COMPONENTS CXX)  # compute threads per rank (GEMMs, optimizer)
find_package(ZLIB REQUIRED)

# The GEMM kernels of nn (docs/performance.md: at the Linear shapes we train OpenBLAS's are
# ~1.4-1.8x Eigen's own on the old AVX2 dev VM and 1.3x on the AVX-512 one; held to its AVX2
# kernels on the AVX-512 VM, OpenBLAS is 0.9x Eigen's, which nn::gemm_kernel_warning reports).
# AUTO: OpenBLAS when found, else Eigen's kernels; OpenBLAS requires it; Eigen never uses it.
# The pthreads build first: ZeroShard's compute threads call it at once (each on its own block,
# nn/compute_threads.hpp) with OpenBLAS's own threads set to 1, and only its threaded builds
# lock their buffer allocation; Debian's serial build is not safe to call from several threads
# (it corrupted results in tests/mpi/test_compute_threads.cpp).
set(ZS_BLAS "AUTO" CACHE STRING "GEMM kernels: AUTO, OpenBLAS or Eigen")
set_property(CACHE ZS_BLAS PROPERTY STRINGS AUTO OpenBLAS Eigen)
if(NOT ZS_BLAS MATCHES "^(AUTO|OpenBLAS|Eigen)$")
  message(FATAL_ERROR "ZS_BLAS=${ZS_BLAS}: use AUTO, OpenBLAS or Eigen")
endif()
set(ZS_GEMM "Eigen")
if(NOT ZS_BLAS STREQUAL "Eigen")
  find_library(ZS_OPENBLAS_LIBRARY NAMES openblas
               HINTS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-pthread /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE})
  if(ZS_OPENBLAS_LIBRARY)
    set(ZS_GEMM "OpenBLAS")
  elseif(ZS_BLAS STREQUAL "OpenBLAS")
    message(FATAL_ERROR "ZS_BLAS=OpenBLAS but no libopenblas was found: install libopenblas-pthread-dev "
                        "(Debian) or set ZS_OPENBLAS_LIBRARY, or use ZS_BLAS=AUTO")
  endif()
endif()
message(STATUS "ZeroShard: GEMM kernels ${ZS_GEMM} ${ZS_OPENBLAS_LIBRARY}")                  # reading the gzip'd Fashion-MNIST files

# HDF5's FindHDF5 variables wrapped in one imported target, with the flavour it was built as.
if(NOT TARGET zs_hdf5)
  add_library(zs_hdf5 INTERFACE)
  target_include_directories(zs_hdf5 SYSTEM INTERFACE ${HDF5_C_INCLUDE_DIRS} ${HDF5_INCLUDE_DIRS})
  target_link_libraries(zs_hdf5 INTERFACE ${HDF5_C_LIBRARIES} ${HDF5_LIBRARIES})
  target_compile_definitions(zs_hdf5 INTERFACE ${HDF5_DEFINITIONS} $<$<BOOL:${HDF5_IS_PARALLEL}>:ZS_HDF5_PARALLEL=1>)
  install(TARGETS zs_hdf5 EXPORT ZeroShardTargets)
endif()

if(ZS_CUDA)
  enable_language(CUDA)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES OR CMAKE_CUDA_ARCHITECTURES STREQUAL "52")
    set(CMAKE_CUDA_ARCHITECTURES 90)  # Hopper (H100/H200), the device machine
  endif()
  set(CMAKE_CUDA_STANDARD 17)  # CMake 3.25 knows no CUDA20 flag for nvcc; .cu files need only 17
  find_package(CUDAToolkit REQUIRED)
  find_path(ZS_NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/include REQUIRED)
  find_library(ZS_NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} /usr/lib/x86_64-linux-gnu REQUIRED)
  message(STATUS "ZeroShard: CUDA ${CUDAToolkit_VERSION}, NCCL ${ZS_NCCL_LIBRARY}")
endif()
