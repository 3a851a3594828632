#include "sharded_optimizer.hpp"
#include "parallel_conversion.hpp"

#include <algorithm>
#include <cmath>

#include "gradient_norm.hpp"
#include "phase.hpp"

#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/dtype_convert.hpp"

namespace zs::detail {

ShardedOptimizer::ShardedOptimizer(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm,
                                   BufferPool& pool, int averaged_ranks)
    : policy_(policy),
      config_(config),
      comm_(group_comm),
      pool_(pool),
      averaged_ranks_(averaged_ranks > 0 ? averaged_ranks : group_comm.size()),
      optimizer_(config.optimizer),
      mixed_(config.precision.enabled()) {}

std::int64_t ShardedOptimizer::state_elements(const ParameterGroup& group) const {
  return (policy_.shard_optimizer_states ? group.shard_elems() : group.padded_elems()) * optimizer_.state_per_element();
}

std::span<float> ShardedOptimizer::own_state(ParameterGroup& group, std::size_t k) const {
  const std::int64_t shard = group.shard_elems();
  if (policy_.shard_optimizer_states) return group.state.slice(static_cast<std::int64_t>(k) * shard, shard);
  return group.state.slice(static_cast<std::int64_t>(k) * group.padded_elems() + comm_.rank() * shard, shard);
}

std::span<float> ShardedOptimizer::own_gradients(ParameterGroup& group) const {
  if (policy_.shard_gradients) return group.grads_shard.span();
  return group.grads_full.slice(comm_.rank() * group.shard_elems(), group.shard_elems());
}

HostBuffer ShardedOptimizer::updated_gradients(ParameterGroup& group) const {
  if (policy_.shard_gradients) return group.grads_shard.host();
  Buffer& whole = group.grads16.empty() ? group.grads_full : group.grads16;
  if (!policy_.shard_optimizer_states) return whole.host();
  return whole.host(comm_.rank() * group.shard_elems(), group.shard_elems());
}

void ShardedOptimizer::round_master(ParameterGroup& group) const {
  const DType dtype = config_.precision.param_dtype();
  const std::int64_t shard = group.shard_elems();
  // Where the rounded master lands: the whole 16-bit copy, the 16-bit shard, or this rank's
  // slice of the whole copy.
  void* rounded = !policy_.shard_optimizer_states ? group.params16_full.raw()
                  : group.shards_parameters       ? group.params16_shard.raw()
                                                  : group.params16_full.raw(comm_.rank() * shard);
  const std::int64_t elements = policy_.shard_optimizer_states ? shard : group.padded_elems();
  detail::for_each_chunk(elements, [&](std::int64_t first, std::int64_t count) {
    narrow(group.master.data() + first, detail::element_at(rounded, dtype, first), dtype, count);
  });
}

bool ShardedOptimizer::max_norm() const { return std::isinf(config_.gradient_clipping_norm_type); }

float ShardedOptimizer::unscale(double loss_scale) const {
  // loss_scale is a power of two (or fp16.loss_scale): the divisor is exact in float.
  return 1.0f / static_cast<float>(static_cast<double>(averaged_ranks_ * config_.gradient_accumulation_steps) * loss_scale);
}

float ShardedOptimizer::clip_coefficient(double norm) const {
  // torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6), applied only below 1.
  if (config_.gradient_clipping <= 0) return 1.0f;
  const double clip = config_.gradient_clipping / (norm + 1e-6);
  return clip < 1.0 ? static_cast<float>(clip) : 1.0f;
}

double ShardedOptimizer::combine_norm(PartialNorm local) {
  const bool max = max_norm();
  double values[2] = {local.value, local.nan_seen};
  comm_.all_reduce_scalars(std::span<double>(values, max ? 2 : 1), max ? ScalarOp::max : ScalarOp::sum, "gradient norm");
  if (max) return values[1] != 0 ? std::nan("") : values[0];
  return std::sqrt(values[0]);
}

// float32: what the group updates is every element at stage 0 (the states are whole), else its
// own slice (of whole parameters, or the master shard when parameters are sharded). The
// gradients are read as they were reduced (sums): the norm and the update apply the unscale
// factor (and the clip coefficient) as they read them (GradientFactors), with no pass of their own.
PartialNorm ShardedOptimizer::float32_norm(ParameterGroup& group, float unscale) const {
  PartialNorm part;
  accumulate_norm(part, own_gradients(group).data(), 0, group.shard_runs, unscale, max_norm());
  return part;
}

void ShardedOptimizer::float32_update(ParameterGroup& group, double lr, std::int64_t step, GradientFactors factors) const {
  if (!policy_.shard_optimizer_states) {
    optimizer_.update(group.params_full.span(), group.grads_full.span(), group.state.span(), group.full_runs, lr, step,
                      factors);
    return;
  }
  const std::int64_t shard = group.shard_elems();
  const std::span<float> params =
      group.shards_parameters ? group.params_shard.span() : group.params_full.slice(comm_.rank() * shard, shard);
  optimizer_.update(params, own_gradients(group), group.state.span(), group.shard_runs, lr, step, factors);
}

// Mixed precision: the gradients stay as they are (16-bit, or float32 with a float32 reduce
// dtype); a group's are widened and unscaled into a float32 buffer, by the same float32
// products as the float32 path's, so the norm and the update see the values a float32
// gradient would hold.
std::span<float> ShardedOptimizer::widen_gradients(ParameterGroup& group, float unscale, Buffer& into) const {
  const HostBuffer g = updated_gradients(group);
  detail::for_each_chunk(g.count, [&](std::int64_t first, std::int64_t count) {
    widen_scaled(detail::element_at(g.data, g.dtype, first), g.dtype, unscale, into.data() + first, count);
  });
  return {into.data(), static_cast<std::size_t>(g.count)};
}

PartialNorm ShardedOptimizer::mixed_norm(const ParameterGroup& group, std::span<const float> widened) const {
  // Stage 0 widens whole gradients: this rank measures its own slice only, as the float32 path.
  const std::int64_t own = policy_.shard_optimizer_states ? 0 : comm_.rank() * group.shard_elems();
  PartialNorm part;
  accumulate_norm(part, widened.data(), own, group.shard_runs, 1.0f, max_norm());
  return part;
}

void ShardedOptimizer::mixed_update(ParameterGroup& group, std::span<float> widened, double lr, std::int64_t step,
                                    float clip) const {
  const std::vector<ParameterRun>& runs = policy_.shard_optimizer_states ? group.shard_runs : group.full_runs;
  // widen_gradients has unscaled them already.
  optimizer_.update(group.master.span(), widened, group.state.span(), runs, lr, step, GradientFactors{1.0f, clip});
  round_master(group);
}

StepOutcome ShardedOptimizer::step(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr, std::int64_t step,
                                   double loss_scale) {
  const float scale = unscale(loss_scale);
  if (mixed_) return step_mixed(groups, lr, step, scale);
  StepOutcome outcome;
  {
    Phase phase(comm_, "gradient norm");
    PartialNorm total;
    for (auto& group : groups) add_partial(total, float32_norm(*group, scale), max_norm());
    outcome.gradient_norm = combine_norm(total);
  }
  if (!std::isfinite(outcome.gradient_norm)) return outcome;
  const GradientFactors factors{scale, clip_coefficient(outcome.gradient_norm)};
  Phase phase(comm_, "optimizer update");
  for (auto& group : groups) float32_update(*group, lr, step, factors);
  outcome.applied = true;
  return outcome;
}

StepOutcome ShardedOptimizer::step_mixed(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr,
                                         std::int64_t step, float scale) {
  // One float32 buffer for the largest group, each group widened twice: for the norm, then
  // for the update (holding every group widened would be a whole float32 gradient).
  std::int64_t largest = 0;
  for (auto& group : groups) largest = std::max(largest, updated_gradients(*group).count);
  Buffer unscaled = pool_.take(Lifetime::step, MemoryCategory::gradients_shard, largest);
  StepOutcome outcome;
  {
    Phase phase(comm_, "gradient norm");
    PartialNorm total;
    for (auto& group : groups) add_partial(total, mixed_norm(*group, widen_gradients(*group, scale, unscaled)), max_norm());
    outcome.gradient_norm = combine_norm(total);
  }
  if (!std::isfinite(outcome.gradient_norm)) return outcome;
  const float clip = clip_coefficient(outcome.gradient_norm);
  Phase phase(comm_, "optimizer update");
  for (auto& group : groups) mixed_update(*group, widen_gradients(*group, scale, unscaled), lr, step, clip);
  outcome.applied = true;
  return outcome;
}

void ShardedOptimizer::step_group(ParameterGroup& group, double lr, std::int64_t step) {
  if (group.index >= group_norms_.size()) group_norms_.resize(group.index + 1);
  const float scale = unscale(1.0);
  if (!mixed_) {
    group_norms_[group.index] = float32_norm(group, scale);
    float32_update(group, lr, step, GradientFactors{scale, 1.0f});
    return;
  }
  // A buffer of this group's size, returned when the update ends: the largest group's
  // gradients widened at a time, as step_mixed holds.
  Buffer unscaled = pool_.take(Lifetime::step, MemoryCategory::gradients_shard, updated_gradients(group).count);
  const std::span<float> widened = widen_gradients(group, scale, unscaled);
  group_norms_[group.index] = mixed_norm(group, widened);
  mixed_update(group, widened, lr, step, 1.0f);
}

double ShardedOptimizer::norm_of_groups_stepped(std::size_t groups) {
  PartialNorm total;
  group_norms_.resize(std::max(group_norms_.size(), groups));
  for (std::size_t k = 0; k < groups; ++k) add_partial(total, group_norms_[k], max_norm());
  std::fill(group_norms_.begin(), group_norms_.end(), PartialNorm{});
  return combine_norm(total);
}

}  // namespace zs::detail
