#pragma once
// The one place cuBLAS status codes become exceptions. Built only with ZS_CUDA.

#include <cublas_v2.h>

#include <source_location>

#include "zeroshard/error.hpp"

namespace zs {

class CublasError : public Error {
 public:
  using Error::Error;
};

namespace detail {
[[noreturn]] void throw_cublas_error(cublasStatus_t code, const char* call, const std::source_location& loc);
inline void check_cublas(cublasStatus_t code, const char* call,
                         std::source_location loc = std::source_location::current()) {
  if (code != CUBLAS_STATUS_SUCCESS) throw_cublas_error(code, call, loc);
}
}  // namespace detail

}  // namespace zs

#define ZS_CUBLAS_CHECK(call) ::zs::detail::check_cublas((call), #call)
