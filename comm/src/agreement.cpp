#include "zeroshard/comm/agreement.hpp"

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

}  // namespace zs
