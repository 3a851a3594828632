#pragma once
// The error types every ZeroShard library throws. Library code never calls exit() or
// MPI_Abort: on one rank that leaves the others blocked in a collective forever. An error is
// thrown; only an example's main() decides to abort the job.

#include <source_location>
#include <stdexcept>
#include <string>

namespace zs {

/// Base of every ZeroShard error; what() carries the whole actionable message.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A caller passed something the library cannot serve (sizes, dtypes, config values).
/// The message names the argument and how to fix it.
class InvalidArgument : public Error {
 public:
  using Error::Error;
};

/// A wait with a deadline expired; the message names the operation still pending.
class TimeoutError : public Error {
 public:
  using Error::Error;
};

/// "file.cpp:123" of a source location, with the path trimmed to the project-relative part.
std::string where(const std::source_location& loc);

}  // namespace zs
