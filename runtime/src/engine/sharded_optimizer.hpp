#pragma once
// The optimizer step over sharded gradients: average, global norm, clip, skip or update.
//
// 1. Gradients summed over ranks and micro-steps are divided by (world size x accumulation
//    steps): DDP's and DeepSpeed's average. The world, not the shard group: under hybrid
//    sharding the replica all-reduce has summed every rank's data (averaged_ranks).
//    The norm needs no such care: every replica holds the same reduced shards, so the shard
//    group alone measures each element once (and every replica gets the same bits).
// 2. The global norm of the averaged gradient (torch.nn.utils.clip_grad_norm_: norm type 2 or
//    inf) is computed over every parameter exactly once: each rank measures the elements of
//    its own shard (replicated gradients at stages 0-1 are measured in slice r on rank r only;
//    padding is never measured; a tied parameter has one owner), in float64, in the same order
//    at every stage, and one all-reduce combines the ranks. So the norm is bitwise the same for
//    every stage at one world size, and the same to float64 rounding across world sizes.
// 3. A norm that is not finite (an inf or NaN gradient on any rank) skips the update on every
//    rank: parameters and optimizer states stay as they are (DeepSpeed's overflow skip; the
//    caller does not advance the step count or the schedule).
// 4. Clipping (gradient_clipping > 0): if max_norm / (norm + 1e-6) < 1, every gradient is
//    multiplied by it (PyTorch's formula), then the elementwise update of the own elements.
//
// Mixed precision (step_mixed): the same four steps over the float32 master weights, with the
//   gradients widened from the reduce dtype and the loss scale divided out with the average;
//   then the 16-bit parameters are the updated master rounded to nearest even.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/optimizer.hpp"
#include "zeroshard/runtime/sharding_policy.hpp"
#include "gradient_norm.hpp"
#include "parameter_group.hpp"

namespace zs::detail {

struct StepOutcome {
  double gradient_norm = 0;  // before clipping
  bool applied = false;      // false: the norm was not finite, nothing was updated
};

class ShardedOptimizer {
 public:
  /// `group_comm`: the ranks the states are sharded over; `averaged_ranks`: the ranks whose
  /// gradients were summed (the world size; 0: group_comm.size()). `pool` lends the mixed-
  /// precision step its float32 gradient buffer.
  ShardedOptimizer(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm, BufferPool& pool,
                   int averaged_ranks = 0);

  const Optimizer& optimizer() const { return optimizer_; }
  /// Floats of optimizer state `group` holds (whole at stage 0, its shard otherwise).
  std::int64_t state_elements(const ParameterGroup& group) const;
  /// State array `k` (optimizer().state_names()[k]) of `group`, this rank's slice of it.
  std::span<float> own_state(ParameterGroup& group, std::size_t k) const;
  /// Collective: steps 1-4 above over every group, with learning rate `lr` and the update
  /// count `step` (from 1: Adam's bias correction). The gradients hold loss_scale times their
  /// value (fp16 loss scaling; 1 otherwise): the average divides it out.
  StepOutcome step(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr, std::int64_t step,
                   double loss_scale = 1.0);
  /// optimizer.in_backward: steps 1 and 4 for one group whose reduced gradients are complete
  /// (no clipping, no loss scale): measures its part of the norm, kept for
  /// norm_of_groups_stepped, and updates it. Not collective. Bit-identical to what step()
  /// does for that group.
  void step_group(ParameterGroup& group, double lr, std::int64_t step);
  /// Collective: the global norm of the groups 0..groups-1 stepped by step_group since the last
  /// call (folded in group order: step()'s bits); forgets them.
  double norm_of_groups_stepped(std::size_t groups);
  /// Mixed precision: the 16-bit parameters this rank updates set to its master rounded (all
  /// of them at stage 0; its slice or 16-bit shard otherwise). Not collective.
  void round_master(ParameterGroup& group) const;

 private:
  // The gradient elements this rank updates and measures: its slice of the whole gradients
  // (stages 0-1) or its shard accumulator (stages 2-3).
  std::span<float> own_gradients(ParameterGroup& group) const;
  bool max_norm() const;  // gradient_clipping_norm_type is inf
  // 1 / (averaged ranks x accumulation steps x loss_scale): the average, applied as read.
  float unscale(double loss_scale) const;
  // Collective: the ranks' partial norms combined.
  double combine_norm(PartialNorm local);
  /// The factor clipping multiplies the gradients by (1 when gradient_clipping is off or the
  /// norm is within it).
  float clip_coefficient(double norm) const;
  // float32: the group's part of the norm, and its update, reading the gradients as reduced.
  PartialNorm float32_norm(ParameterGroup& group, float unscale) const;
  void float32_update(ParameterGroup& group, double lr, std::int64_t step, GradientFactors factors) const;
  // Mixed precision: the group's gradients widened and unscaled into `into` (at least
  // updated_gradients(group).count floats); its part of the norm and its master's update.
  std::span<float> widen_gradients(ParameterGroup& group, float unscale, Buffer& into) const;
  PartialNorm mixed_norm(const ParameterGroup& group, std::span<const float> widened) const;
  void mixed_update(ParameterGroup& group, std::span<float> widened, double lr, std::int64_t step, float clip) const;
  // Mixed precision: steps 1-4 on the float32 master, the gradients widened and unscaled by
  // `scale` group by group; the 16-bit parameters rounded from the updated master.
  StepOutcome step_mixed(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr, std::int64_t step, float scale);
  // The gradients the update reads, any dtype: whole at stage 0, else this rank's slice/shard.
  HostBuffer updated_gradients(ParameterGroup& group) const;

  const ShardingPolicy& policy_;
  const EngineConfig& config_;
  Communicator& comm_;
  BufferPool& pool_;
  int averaged_ranks_;
  Optimizer optimizer_;
  bool mixed_;
  std::vector<PartialNorm> group_norms_;  // step_group's parts, by group index
};

}  // namespace zs::detail
