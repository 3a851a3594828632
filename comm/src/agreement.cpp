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
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, both.data(), static_cast<int>(both.size()), MPI_INT64_T, MPI_MIN,
                             comm.handle()));
  std::vector<RangeAcrossRanks> ranges(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) ranges[i] = {both[2 * i], ~both[2 * i + 1]};
  return ranges;
}

}  // namespace zs
