#include "zeroshard/comm/mpi_check.hpp"

#include <unistd.h>

namespace zs {

std::string rank_and_host() {
  char host[256] = "unknown-host";
  gethostname(host, sizeof host - 1);
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (!initialized || finalized) return std::string("(MPI not initialised) on ") + host;
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return "rank " + std::to_string(rank) + "/" + std::to_string(size) + " on " + host;
}

namespace detail {

void throw_mpi_error(int code, const char* call, const std::source_location& loc) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  std::string message = std::string(call) + " failed at " + where(loc) + " (" + rank_and_host() +
                        "): " + (length > 0 ? std::string(text, length) : "unknown MPI error") +
                        " [code " + std::to_string(code) + "]";
  throw MpiError(code, message);
}

}  // namespace detail
}  // namespace zs
