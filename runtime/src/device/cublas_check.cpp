#include "zeroshard/runtime/device/cublas_check.hpp"

#include <string>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

void throw_cublas_error(cublasStatus_t code, const char* call, const std::source_location& loc) {
  throw CublasError(std::string(call) + " failed at " + where(loc) + " (" + rank_and_host() + "): " +
                    cublasGetStatusName(code) + ": " + cublasGetStatusString(code));
}

}  // namespace zs::detail
