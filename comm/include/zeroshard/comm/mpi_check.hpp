#pragma once
// The one place MPI return codes become exceptions. Every MPI call in ZeroShard goes through
// ZS_MPI_CHECK; it only works because our communicators use MPI_ERRORS_RETURN (see
// Communicator), otherwise MPI's default handler aborts before a code is ever returned.

#include <mpi.h>

#include <source_location>
#include <string>

#include "zeroshard/error.hpp"

namespace zs {

/// An MPI call returned an error. what() = call text, file:line, rank/world, host, MPI's message.
class MpiError : public Error {
 public:
  MpiError(int code, const std::string& message) : Error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// "rank R/N on HOST" when MPI is initialised, "(MPI not initialised) on HOST" otherwise.
std::string rank_and_host();

namespace detail {
void throw_mpi_error(int code, const char* call, const std::source_location& loc);
inline void check_mpi(int code, const char* call,
                      std::source_location loc = std::source_location::current()) {
  if (code != MPI_SUCCESS) throw_mpi_error(code, call, loc);
}
}  // namespace detail

}  // namespace zs

#define ZS_MPI_CHECK(call) ::zs::detail::check_mpi((call), #call)
