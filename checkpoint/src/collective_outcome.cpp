#include "zeroshard/checkpoint/collective_outcome.hpp"

#include <climits>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::checkpoint {

void raise_if_any_rank_failed(Communicator& comm, const std::string& local_error) {
  const bool failed = !local_error.empty();
  // Through the communicator: with its timeout, a rank that never arrives is named in a hang
  // report instead of hanging the others.
  std::int64_t first = failed ? comm.rank() : INT_MAX, count = failed ? 1 : 0;
  comm.all_reduce_scalars(std::span<std::int64_t>(&first, 1), ScalarOp::min, "checkpoint outcome");
  comm.all_reduce_scalars(std::span<std::int64_t>(&count, 1), ScalarOp::sum, "checkpoint outcome");
  if (first == INT_MAX) return;
  long long length = comm.rank() == first ? static_cast<long long>(local_error.size()) : 0;
  ZS_MPI_CHECK(MPI_Bcast(&length, 1, MPI_LONG_LONG, static_cast<int>(first), comm.handle()));
  std::string message = comm.rank() == first ? local_error : std::string(length, '\0');
  ZS_MPI_CHECK(MPI_Bcast(message.data(), static_cast<int>(length), MPI_CHAR, static_cast<int>(first), comm.handle()));
  // "failed on rank R": every rank prints this under its own "rank r/N" prefix, so the failing
  // rank must not read like a second prefix.
  std::string text = "failed on rank " + std::to_string(first) + ": " + message;
  if (count > 1) text += "\n  (" + std::to_string(count) + " ranks failed; the lowest rank's error is shown)";
  throw CheckpointError(text);
}

void run_on_all_ranks(Communicator& comm, const std::function<void()>& body) {
  std::string error;
  try {
    body();
  } catch (const std::exception& e) {
    error = e.what();
    if (error.empty()) error = "unknown error";
  }
  raise_if_any_rank_failed(comm, error);
}

}  // namespace zs::checkpoint
