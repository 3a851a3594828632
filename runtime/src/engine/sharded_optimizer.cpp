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

double ShardedOptimizer::global_norm(std::vector<std::unique_ptr<ParameterGroup>>& groups, float unscale) {
  const bool max_norm = std::isinf(config_.gradient_clipping_norm_type);
  PartialNorm local;
  for (auto& group : groups) accumulate_norm(local, own_gradients(*group).data(), 0, group->shard_runs, unscale, max_norm);
  return combine_norm(local, max_norm);
}

float ShardedOptimizer::clip_coefficient(double norm) const {
  // torch.nn.utils.clip_grad_norm_: max_norm / (total_norm + 1e-6), applied only below 1.
  if (config_.gradient_clipping <= 0) return 1.0f;
  const double clip = config_.gradient_clipping / (norm + 1e-6);
  return clip < 1.0 ? static_cast<float>(clip) : 1.0f;
}

double ShardedOptimizer::combine_norm(PartialNorm local, bool max_norm) {
  double values[2] = {local.value, local.nan_seen};
  comm_.all_reduce_scalars(std::span<double>(values, max_norm ? 2 : 1), max_norm ? ScalarOp::max : ScalarOp::sum,
                           "gradient norm");
  if (max_norm) return values[1] != 0 ? std::nan("") : values[0];
  return std::sqrt(values[0]);
}

StepOutcome ShardedOptimizer::step(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr, std::int64_t step,
                                   double loss_scale) {
  // loss_scale is a power of two (or fp16.loss_scale): the divisor is exact in float.
  const float scale =
      1.0f / static_cast<float>(static_cast<double>(averaged_ranks_ * config_.gradient_accumulation_steps) * loss_scale);
  if (mixed_) return step_mixed(groups, lr, step, scale);
  const int r = comm_.rank();
  // What each group updates: every element at stage 0 (the states are whole), else its own
  // slice (of whole parameters, or the master shard when parameters are sharded). The
  // gradients are read as they were reduced (sums): the norm and the update apply `scale`
  // (and the clip coefficient) as they read them (GradientFactors), with no pass of their own.
  struct Update {
    std::span<float> params, grads;
    const std::vector<ParameterRun>* runs;
  };
  std::vector<Update> updates;
  for (auto& group : groups) {
    Update u;
    const std::int64_t shard = group->shard_elems();
    if (!policy_.shard_optimizer_states) {
      u = {group->params_full.span(), group->grads_full.span(), &group->full_runs};
    } else {
      u.params = group->shards_parameters ? group->params_shard.span() : group->params_full.slice(r * shard, shard);
      u.grads = own_gradients(*group);
      u.runs = &group->shard_runs;
    }
    updates.push_back(u);
  }
  StepOutcome outcome;
  {
    Phase phase(comm_, "gradient norm");
    outcome.gradient_norm = global_norm(groups, scale);
  }
  if (!std::isfinite(outcome.gradient_norm)) return outcome;
  const GradientFactors factors{scale, clip_coefficient(outcome.gradient_norm)};
  Phase phase(comm_, "optimizer update");
  for (std::size_t k = 0; k < groups.size(); ++k)
    optimizer_.update(updates[k].params, updates[k].grads, groups[k]->state.span(), *updates[k].runs, lr, step,
                      factors);
  outcome.applied = true;
  return outcome;
}

StepOutcome ShardedOptimizer::step_mixed(std::vector<std::unique_ptr<ParameterGroup>>& groups, double lr,
                                         std::int64_t step, float scale) {
  // The gradients stay as they are (16-bit, or float32 with a float32 reduce dtype); each
  // group's are widened and unscaled into one float32 buffer, twice: for the norm, then for
  // the update. The same float32 products as the float32 path's in-place scaling, so the
  // norm, the clipping and the update see the values a float32 gradient would hold.
  std::int64_t largest = 0;
  for (auto& group : groups) largest = std::max(largest, updated_gradients(*group).count);
  Buffer unscaled = pool_.take(MemoryCategory::gradients_shard, largest);
  auto widen_group = [&](ParameterGroup& group) {
    const HostBuffer g = updated_gradients(group);
    detail::for_each_chunk(g.count, [&](std::int64_t first, std::int64_t count) {
      widen_scaled(detail::element_at(g.data, g.dtype, first), g.dtype, scale, unscaled.data() + first, count);
    });
    return std::span<float>(unscaled.data(), static_cast<std::size_t>(g.count));
  };
  auto runs_of = [&](const ParameterGroup& group) -> const std::vector<ParameterRun>& {
    return policy_.shard_optimizer_states ? group.shard_runs : group.full_runs;
  };
  StepOutcome outcome;
  {
    Phase phase(comm_, "gradient norm");
    const bool max_norm = std::isinf(config_.gradient_clipping_norm_type);
    PartialNorm local;
    for (auto& group : groups) {
      // Stage 0 widens whole gradients: this rank measures its own slice only, as the float32 path.
      const std::int64_t own = policy_.shard_optimizer_states ? 0 : comm_.rank() * group->shard_elems();
      accumulate_norm(local, widen_group(*group).data(), own, group->shard_runs, 1.0f, max_norm);
    }
    outcome.gradient_norm = combine_norm(local, max_norm);
  }
  if (!std::isfinite(outcome.gradient_norm)) return outcome;
  // widen_group has unscaled them already.
  const GradientFactors factors{1.0f, clip_coefficient(outcome.gradient_norm)};
  Phase phase(comm_, "optimizer update");
  for (auto& group : groups) {
    const std::span<float> grads = widen_group(*group);
    optimizer_.update(group->master.span(), grads, group->state.span(), runs_of(*group), lr, step, factors);
    round_master(*group);
  }
  outcome.applied = true;
  return outcome;
}

}  // namespace zs::detail
