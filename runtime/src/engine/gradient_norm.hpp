#pragma once
// This rank's part of the global gradient norm (torch.nn.utils.clip_grad_norm_, norm type 2 or
// inf) over the runs of one gradient slice, spread over the rank's compute threads.
//
// Bits: each run is cut into blocks of kNormBlockElements counted from the run's own start;
// a block's sum of squares is 8 partial sums in double combined in a fixed order, and the
// blocks' sums are added in index order. The cuts depend on the index within the run only, so
// every stage (all measure the same runs of the same shards) and every thread count gives the
// same bits. The max-abs norm is a maximum: any order gives the same value.
//
// Why threads: at one rank with two compute threads the update ran on both, the norm's pass
// over every gradient on one, ~20% of step() (docs/performance.md).
#include <cstdint>
#include <vector>

#include "zeroshard/runtime/optimizer.hpp"

namespace zs::detail {

/// Elements per block of the sum of squares (256 KiB of float32).
inline constexpr std::int64_t kNormBlockElements = std::int64_t{1} << 16;

/// A rank's partial norm, as the all-reduce combines it: the 2-norm's sum of squares, or the
/// inf-norm's max |g| with a NaN flag (MPI_MAX would drop a NaN).
struct PartialNorm {
  double value = 0;     // sum of squares (2-norm) or max |g| (inf-norm)
  double nan_seen = 0;  // inf-norm only: 1 if a NaN was met
};

/// Folds a group's partial into the running total: the sum (2-norm) or the maximum and NaN flag
/// (inf-norm). Every step path measures each group into its own partial and folds the groups
/// in group order, so a norm measured group by group during backward (optimizer.in_backward)
/// has the bits of one measured at step().
void add_partial(PartialNorm& total, const PartialNorm& group, bool max_norm);

/// Adds to `partial` the elements `grads[base + run.offset ...]` of every run, each read as
/// float(g * unscale) (the value the update will read: GradientFactors), in float64. Not
/// collective; uses nn::compute_threads() threads for runs of kNormBlockElements or more.
void accumulate_norm(PartialNorm& partial, const float* grads, std::int64_t base, const std::vector<ParameterRun>& runs,
                     float unscale, bool max_norm);

}  // namespace zs::detail
