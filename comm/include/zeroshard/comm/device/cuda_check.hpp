#pragma once
// The one place CUDA runtime and NCCL return codes become exceptions (file:line, rank/host,
// the library's own message). Built only with ZS_CUDA.

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <source_location>

#include "zeroshard/error.hpp"

namespace zs {

class CudaError : public Error {
 public:
  using Error::Error;
};
class NcclError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_cuda_error(cudaError_t code, const char* call, const std::source_location& loc);
[[noreturn]] void throw_nccl_error(ncclResult_t code, const char* call, const std::source_location& loc);
inline void check_cuda(cudaError_t code, const char* call, std::source_location loc = std::source_location::current()) {
  if (code != cudaSuccess) throw_cuda_error(code, call, loc);
}
inline void check_nccl(ncclResult_t code, const char* call, std::source_location loc = std::source_location::current()) {
  if (code != ncclSuccess && code != ncclInProgress) throw_nccl_error(code, call, loc);
}
}  // namespace detail

/// Number of CUDA devices visible; 0 (not an error) on a machine without a GPU or driver.
int cuda_device_count() noexcept;

}  // namespace zs

#define ZS_CUDA_CHECK(call) ::zs::detail::check_cuda((call), #call)
#define ZS_NCCL_CHECK(call) ::zs::detail::check_nccl((call), #call)
