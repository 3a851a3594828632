#pragma once
// What a ZeRO stage means, as yes/no answers derived once from the configuration. Components
// ask the policy ("are gradients sharded?"); none compares the stage number. The table is the
// ZeRO paper's (Rajbhandari et al., 2020, section 5) as DeepSpeed implements it; FSDP's
// sharding strategies map onto it (NO_SHARD = 0, SHARD_GRAD_OP = 2, FULL_SHARD = 3).
//
//   stage | parameters                | gradients                          | optimizer states
//   0     | whole on every rank       | whole, all-reduced at the boundary | whole
//   1     | whole                     | whole, reduce-scattered at the boundary | own shard
//   2     | whole                     | own shard, reduce-scattered every micro-step | own shard
//   3     | own shard; whole only while a group computes | as stage 2     | own shard

#include <cstdint>

namespace zs {

struct EngineConfig;

/// How gradients are combined across ranks.
enum class GradientReduction : std::uint8_t {
  all_reduce,      // every rank gets every reduced element (stage 0)
  reduce_scatter,  // every rank gets the reduced elements of its own shard (stages 1-3)
};

struct ShardingPolicy {
  /// The ZeRO stage this policy was derived from: for reports and checkpoints only.
  int stage = 0;
  /// Optimizer states held for this rank's shard only (stages 1-3).
  bool shard_optimizer_states = false;
  /// Gradients accumulate in this rank's shard; a group's whole gradients live only from its
  /// backward until they are reduced (stages 2-3).
  bool shard_gradients = false;
  /// Parameters live as this rank's shard; a group's whole parameters are gathered before it
  /// computes and freed after (stage 3; persistent groups excepted).
  bool shard_parameters = false;
  GradientReduction reduction = GradientReduction::all_reduce;
  /// Gradients are reduced after every micro-step's backward (stages 2-3: the shard is the
  /// accumulator), not once at the accumulation boundary (stages 0-1: the whole buffer is).
  bool reduce_every_micro_step = false;
  /// After the update, every rank's updated shard is all-gathered into the whole parameters
  /// that every rank holds (stages 1-2, and stage-3 persistent groups).
  bool gather_after_update = false;
  /// Stage 3: free gathered parameters after a group's forward (FSDP's reshard_after_forward).
  bool reshard_after_forward = true;
  /// Stage 3: groups with fewer parameters stay whole (DeepSpeed's
  /// stage3_param_persistence_threshold); 0 = none.
  std::int64_t persistence_threshold = 0;
  /// Whole parameters live once per shard group in shared memory and each rank updates its slice in
  /// place (EngineConfig::node_shared_parameters): nothing is gathered, and a rank's parameter
  /// memory is its shard. Stages 1-3 with more than one rank; shard_parameters is then false.
  bool node_shared_parameters = false;

  /// The policy of `config.stage` with `config`'s stage-3 settings over `world_size` ranks. At
  /// world size 1 every stage runs as stage 0 (nothing to shard: the same results, no copies,
  /// stage 0's memory), as FSDP switches FULL_SHARD to NO_SHARD there; `stage` still says
  /// `config.stage`. Throws InvalidArgument for a stage outside 0-3.
  static ShardingPolicy from(const EngineConfig& config, int world_size);
  /// Whether a group of `parameters` parameters keeps its parameters as shards.
  bool shards_group_parameters(std::int64_t parameters) const {
    return shard_parameters && parameters >= persistence_threshold;
  }
};

}  // namespace zs
