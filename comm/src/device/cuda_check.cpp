#include "zeroshard/comm/device/cuda_check.hpp"

#include <string>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

int cuda_device_count() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error so later calls start clean
    return 0;
  }
  return count;
}

namespace detail {

void throw_cuda_error(cudaError_t code, const char* call, const std::source_location& loc) {
  throw CudaError(std::string(call) + " failed at " + where(loc) + " (" + rank_and_host() + "): " +
                  cudaGetErrorName(code) + ": " + cudaGetErrorString(code));
}

void throw_nccl_error(ncclResult_t code, const char* call, const std::source_location& loc) {
  throw NcclError(std::string(call) + " failed at " + where(loc) + " (" + rank_and_host() + "): " +
                  ncclGetErrorString(code) + " [code " + std::to_string(static_cast<int>(code)) + "]");
}

}  // namespace detail
}  // namespace zs
