#include "zeroshard/runtime/model_state_formula.hpp"

#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs {

ShardedCategories ShardedCategories::of(const ShardingPolicy& policy, std::int64_t unit_parameters) {
  // Node-shared parameters: a rank's share of the node's one copy is its slice.
  return {.parameters = policy.node_shared_parameters || policy.shards_group_parameters(unit_parameters),
          .gradients = policy.shard_gradients,
          .optimizer_states = policy.shard_optimizer_states};
}

ShardedCategories ShardedCategories::of_stage(int stage) {
  EngineConfig config;
  config.stage = stage;
  // The stage's row of the ZeRO table: what it shards over more than one rank (at world size 1
  // a shard is the whole, so the bytes are the same either way).
  return of(ShardingPolicy::from(config, /*world_size=*/2), 0);
}

StatePrecision StatePrecision::of(const MixedPrecisionConfig& precision, int optimizer_states) {
  if (!precision.enabled()) return float32(optimizer_states);
  return {static_cast<int>(size_of(precision.param_dtype())), static_cast<int>(size_of(precision.gradient_dtype())),
          4 * optimizer_states + 4};
}

StatePrecision StatePrecision::of(const EngineConfig& config, int optimizer_states) {
  StatePrecision bytes = of(config.precision, optimizer_states);
  if (config.optimizer_in_backward) bytes.gradient_bytes = 0;
  return bytes;
}

ModelStateBytes model_state_bytes_per_rank(std::int64_t elements, int world_size, const ShardedCategories& sharded,
                                           const StatePrecision& precision) {
  if (elements < 0) throw InvalidArgument("model-state formula: " + std::to_string(elements) + " parameters");
  if (world_size < 1) throw InvalidArgument("model-state formula: world size " + std::to_string(world_size));
  const std::int64_t shard = (elements + world_size - 1) / world_size;
  auto held = [&](bool is_sharded, int bytes) { return (is_sharded ? shard : elements) * bytes; };
  return {.parameters = held(sharded.parameters, precision.parameter_bytes),
          .gradients = held(sharded.gradients, precision.gradient_bytes),
          .optimizer_states = held(sharded.optimizer_states, precision.optimizer_bytes)};
}

}  // namespace zs
