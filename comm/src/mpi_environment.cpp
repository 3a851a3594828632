#include "zeroshard/comm/mpi_environment.hpp"

#include <string>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

MpiEnvironment::MpiEnvironment(int* argc, char*** argv, int required) {
  int initialized = 0;
  ZS_MPI_CHECK(MPI_Initialized(&initialized));
  if (initialized) {
    ZS_MPI_CHECK(MPI_Query_thread(&provided_));
  } else {
    ZS_MPI_CHECK(MPI_Init_thread(argc, argv, required, &provided_));
    owns_ = true;
  }
  if (provided_ < required) {
    throw InvalidArgument("MPI provides thread level " + std::to_string(provided_) +
                          " but ZeroShard needs " + std::to_string(required) +
                          " (MPI_THREAD_SERIALIZED=" + std::to_string(MPI_THREAD_SERIALIZED) +
                          "); initialise MPI with MPI_Init_thread at that level or higher");
  }
}

MpiEnvironment::~MpiEnvironment() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (owns_ && !finalized) MPI_Finalize();
}

}  // namespace zs
