#include "zeroshard/comm/agreement.hpp"

#include <climits>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

std::vector<RangeAcrossRanks> range_across_ranks(std::span<const std::int64_t> values, const Communicator& comm) {
  std::vector<std::int64_t> both;
  both.reserve(2 * values.size());
  for (std::int64_t v : values) {
    both.push_back(v);
    both.push_back(~v);
  }
  // Through the communicator: recorded in its flight recorder and waited on with its timeout
  // (a rank that never arrives is named in a hang report instead of hanging the others).
  comm.all_reduce_scalars(both, ScalarOp::min, "range_across_ranks");
  std::vector<RangeAcrossRanks> ranges(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) ranges[i] = {both[2 * i], ~both[2 * i + 1]};
  return ranges;
}

std::optional<std::string> failure_on_any_rank(Communicator& comm, const std::string& local_error,
                                               std::string_view label) {
  const bool failed = !local_error.empty();
  // Through the communicator: with its timeout, a rank that never arrives is named in a hang
  // report instead of hanging the others.
  std::int64_t first = failed ? comm.rank() : INT_MAX, count = failed ? 1 : 0;
  comm.all_reduce_scalars(std::span<std::int64_t>(&first, 1), ScalarOp::min, label);
  comm.all_reduce_scalars(std::span<std::int64_t>(&count, 1), ScalarOp::sum, label);
  if (first == INT_MAX) return std::nullopt;
  long long length = comm.rank() == first ? static_cast<long long>(local_error.size()) : 0;
  ZS_MPI_CHECK(MPI_Bcast(&length, 1, MPI_LONG_LONG, static_cast<int>(first), comm.handle()));
  std::string message = comm.rank() == first ? local_error : std::string(length, '\0');
  ZS_MPI_CHECK(MPI_Bcast(message.data(), static_cast<int>(length), MPI_CHAR, static_cast<int>(first), comm.handle()));
  // "failed on rank R": every rank prints this under its own "rank r/N" prefix, so the failing
  // rank must not read like a second prefix.
  std::string text = "failed on rank " + std::to_string(first) + ": " + message;
  if (count > 1) text += "\n  (" + std::to_string(count) + " ranks failed; the lowest rank's error is shown)";
  return text;
}

}  // namespace zs
