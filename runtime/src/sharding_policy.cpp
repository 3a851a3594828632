#include "zeroshard/runtime/sharding_policy.hpp"

#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs {

ShardingPolicy ShardingPolicy::from(const EngineConfig& config, int world_size) {
  if (config.stage < 0 || config.stage > 3)
    throw InvalidArgument("zero_optimization.stage = " + std::to_string(config.stage) +
                          " is not a ZeRO stage: use 0, 1, 2 or 3");
  ShardingPolicy policy;
  policy.stage = config.stage;
  // One rank: a shard is the whole, so sharding would only add copies (a gathered buffer
  // beside the shard, gradients packed into a shard of the same size). FSDP switches to
  // NO_SHARD at world size 1 the same way; the stage number stays for reports and checkpoints.
  if (world_size == 1) return policy;
  policy.shard_optimizer_states = config.stage >= 1;
  policy.shard_gradients = config.stage >= 2;
  policy.node_shared_parameters = config.node_shared_parameters && config.stage >= 1;
  policy.shard_parameters = config.stage == 3 && !policy.node_shared_parameters;
  policy.reduction = config.stage == 0 ? GradientReduction::all_reduce : GradientReduction::reduce_scatter;
  policy.reduce_every_micro_step = policy.shard_gradients;
  policy.gather_after_update = policy.shard_optimizer_states;
  policy.reshard_after_forward = config.reshard_after_forward;
  policy.persistence_threshold = config.param_persistence_threshold;
  return policy;
}

}  // namespace zs
