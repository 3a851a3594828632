#include "zeroshard/runtime/sharding_policy.hpp"

#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs {

ShardingPolicy ShardingPolicy::from(const EngineConfig& config) {
  if (config.stage < 0 || config.stage > 3)
    throw InvalidArgument("zero_optimization.stage = " + std::to_string(config.stage) +
                          " is not a ZeRO stage: use 0, 1, 2 or 3");
  ShardingPolicy policy;
  policy.stage = config.stage;
  policy.shard_optimizer_states = config.stage >= 1;
  policy.shard_gradients = config.stage >= 2;
  policy.shard_parameters = config.stage == 3;
  policy.reduction = config.stage == 0 ? GradientReduction::all_reduce : GradientReduction::reduce_scatter;
  policy.reduce_every_micro_step = policy.shard_gradients;
  policy.gather_after_update = policy.shard_optimizer_states;
  policy.reshard_after_forward = config.reshard_after_forward;
  policy.persistence_threshold = config.param_persistence_threshold;
  return policy;
}

}  // namespace zs
