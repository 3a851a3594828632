#pragma once
// Model-state bytes per rank by ZeRO stage: the ZeRO paper's formula (Rajbhandari et al.,
// 2020, section 5.1 and figure 1), one implementation shared by the engine's memory planner
// (memory_plan.hpp) and the `zeroshard-estimate` tool, in the spirit of DeepSpeed's
// estimate_zero{2,3}_model_states_mem_needs.
//
// With Ψ parameters, N ranks, P bytes per parameter, G per gradient and K per parameter of
// optimizer state (master copies included), each category is held whole (Ψ x bytes) or as
// this rank's shard (ceil(Ψ / N) x bytes, the engine pads every unit to a multiple of N):
//
//   stage 0   (P + G + K) Ψ
//   stage 1   (P + G) Ψ + K Ψ / N
//   stage 2   P Ψ + (G + K) Ψ / N
//   stage 3   (P + G + K) Ψ / N
//
// The paper's mixed precision (fp16/bf16 parameters and gradients, fp32 master parameters,
// momentum and variance: P = G = 2, K = 12) gives 16Ψ / 4Ψ + 12Ψ/N / 2Ψ + 14Ψ/N / 16Ψ/N;
// for 7.5e9 parameters on 64 ranks 120 / 31.4 / 16.6 / 1.9 GB. In float32 training
// P = G = 4 and K = 4 per optimizer state (Adam/AdamW: exp_avg and exp_avg_sq, K = 8;
// the parameters are their own master copy), i.e. 16Ψ / 8Ψ + 8Ψ/N / 4Ψ + 12Ψ/N / 16Ψ/N; with
// bf16.enabled or fp16.enabled (docs/mixed-precision.md) it holds the paper's mixed-precision
// states, K = 12 for AdamW.

#include <cstdint>

#include "zeroshard/runtime/sharding_policy.hpp"

namespace zs {

struct MixedPrecisionConfig;
struct EngineConfig;

/// Model-state bytes one rank holds persistently (no transients).
struct ModelStateBytes {
  std::int64_t parameters = 0, gradients = 0, optimizer_states = 0;
  std::int64_t total() const { return parameters + gradients + optimizer_states; }
  ModelStateBytes& operator+=(const ModelStateBytes& other) {
    parameters += other.parameters;
    gradients += other.gradients;
    optimizer_states += other.optimizer_states;
    return *this;
  }
};

/// Bytes per parameter of each model-state category.
struct StatePrecision {
  int parameter_bytes = 4;  // P: the parameters the model computes with
  int gradient_bytes = 4;   // G
  int optimizer_bytes = 8;  // K: optimizer states, plus fp32 master parameters under mixed precision

  /// float32 training: P = G = 4, K = 4 x `optimizer_states`
  /// (2 for Adam/AdamW, 1 for SGD with momentum, 0 for plain SGD).
  static StatePrecision float32(int optimizer_states) { return {4, 4, 4 * optimizer_states}; }
  /// The ZeRO paper's mixed-precision Adam (fp16 or bf16 parameters and gradients; fp32
  /// master parameters, momentum and variance): P = G = 2, K = 12.
  static StatePrecision mixed_adam() { return {2, 2, 12}; }
  /// What `precision` holds with an optimizer of `optimizer_states` float32 arrays: float32
  /// training as above; mixed precision P = the parameter dtype's size, G = the reduce
  /// dtype's, K = 4 x optimizer_states + 4 (the float32 master): 2 / 2 / 12 for AdamW in
  /// bf16 or fp16, the paper's figures.
  static StatePrecision of(const MixedPrecisionConfig& precision, int optimizer_states);
  /// The same, for what `config` keeps between steps: G = 0 under optimizer.in_backward (each
  /// unit's gradients are freed after its update in backward; they are transients then).
  static StatePrecision of(const EngineConfig& config, int optimizer_states);
};

/// Which categories a stage shards (ShardingPolicy's answers for a unit).
struct ShardedCategories {
  bool parameters = false, gradients = false, optimizer_states = false;
  /// What `policy` shards for a unit of `unit_parameters` parameters (a stage-3 unit under
  /// the persistence threshold keeps whole parameters).
  static ShardedCategories of(const ShardingPolicy& policy, std::int64_t unit_parameters);
  /// The paper's stage table (0-3), nothing persistent. Throws InvalidArgument for another stage.
  static ShardedCategories of_stage(int stage);
};

/// Bytes one of `world_size` ranks holds for `elements` parameters: each category whole or
/// its ceil(elements / world_size) shard, times its bytes per parameter. Throws
/// InvalidArgument for elements < 0 or world_size < 1.
ModelStateBytes model_state_bytes_per_rank(std::int64_t elements, int world_size, const ShardedCategories& sharded,
                                           const StatePrecision& precision);

}  // namespace zs
