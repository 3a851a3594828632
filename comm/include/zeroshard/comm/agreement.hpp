#pragma once
// Checking that ranks agree: the lowest and highest value of each element across ranks, in
// one all-reduce. Ranks that would issue different collectives (different models, configs,
// unit orders) must all find out together and throw together, never hang.

#include <cstdint>
#include <span>
#include <vector>

#include "zeroshard/comm/communicator.hpp"

namespace zs {

/// The lowest and highest value some rank passed.
struct RangeAcrossRanks {
  std::int64_t low = 0, high = 0;
  bool agreed() const { return low == high; }
};

/// Collective over `comm` (every rank calls it, in the same order, with the same
/// values.size()): for each element of `values`, its lowest and highest value across ranks, in
/// one all-reduce of 2 x values.size() int64 (MIN over {v, ~v}: ~ is monotone decreasing, so
/// there is no overflow at INT64_MIN), through Communicator::all_reduce_scalars: throws
/// zs::MpiError if MPI fails, TimeoutError (a hang report) past communication.timeout_s.
std::vector<RangeAcrossRanks> range_across_ranks(std::span<const std::int64_t> values, const Communicator& comm);

}  // namespace zs
