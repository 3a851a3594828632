#pragma once
// Checking that ranks agree: the lowest and highest value of each element across ranks, in
// one all-reduce. Ranks that would issue different collectives (different models, configs,
// unit orders) must all find out together and throw together, never hang.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
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

/// Collective over `comm` (every rank calls it at the same point): a failure that happened on
/// some ranks made everybody's. nullopt when `local_error` is empty on every rank; otherwise the
/// text every rank should raise, "failed on rank R: <rank R's local_error>" for the lowest
/// failing rank R (and how many ranks failed, when more than one). `label` names the
/// collectives in hang reports. Throws zs::MpiError / TimeoutError as all_reduce_scalars does.
std::optional<std::string> failure_on_any_rank(Communicator& comm, const std::string& local_error,
                                               std::string_view label);

}  // namespace zs
