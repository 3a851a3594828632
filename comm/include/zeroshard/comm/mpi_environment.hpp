#pragma once
// Initialises MPI only if nobody else did, and finalises only what it initialised, so a user
// program that manages MPI itself can still use ZeroShard.

#include <mpi.h>

namespace zs {

class MpiEnvironment {
 public:
  /// `required` is an MPI thread level. ZeroShard calls MPI from one thread at a time
  /// (MPI_THREAD_SERIALIZED); a later progress thread needs no more than that. Throws
  /// InvalidArgument if the MPI library provides less than `required`.
  MpiEnvironment(int* argc, char*** argv, int required = MPI_THREAD_SERIALIZED);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  int provided_thread_level() const noexcept { return provided_; }
  bool owns_mpi() const noexcept { return owns_; }

 private:
  bool owns_ = false;
  int provided_ = MPI_THREAD_SINGLE;
};

}  // namespace zs
