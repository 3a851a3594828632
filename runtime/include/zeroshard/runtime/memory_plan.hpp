#pragma once
// The memory planner: predicts, before anything is allocated, the peak bytes one rank's
// MemoryLedger will measure (high_water_total) for a model, a configuration and a world size,
// by category (docs/memory.md). Pure: no communication, no allocation of model buffers.
//
// What it counts, in the ledger's own categories:
//  - model states (ZeRO formula, model_state_formula.hpp, over each unit's padded layout):
//    parameters, gradients, optimizer states, whole or sharded as the stage says;
//  - gathered parameters in flight (stage 3: the running unit, its tied owners and the units
//    prefetched within zero_optimization.prefetch_bytes / max_live_bytes), whole gradients of
//    units waiting for their reduce-scatter (stages 2-3, reductions_in_flight), gradient
//    buckets (reduce_bucket_size);
//  - freed transient buffers the engine's buffer pool keeps for reuse ("buffers"): the pool
//    never hands memory back, so the peak is every buffer it had to create;
//  - activations the modules cache in a training forward of the given input shape
//    (nn::Module::plan_activations), checkpointed units keeping only their output.
// It replays the engine's allocation schedule for two optimizer steps (initialisation, the
// plain forward in unit order, backward, step) over a simulated pool with the engine's
// best-fit reuse, so the prediction is the ledger's figure, not a bound. Forwards with a
// ForwardProgram (units run twice or skipped) and evaluation batches of another shape are
// not replayed: plan evaluation batches with their own input shape (an upper bound: training
// draws dropout masks that evaluation does not).

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "zeroshard/nn/module.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"
#include "zeroshard/runtime/model_state_formula.hpp"

namespace zs {

/// One unit as the planner sees it (the engine builds these from its units).
struct PlannedUnit {
  std::vector<Shape> parameter_shapes;     // the parameters it owns (a tied one at its owner only)
  std::vector<std::size_t> borrows;        // indices of earlier units whose (tied) parameters it uses
  std::vector<const nn::Module*> modules;  // run in this order
};

struct MemoryPlan {
  int world_size = 1;  // the ranks model states are sharded over (the shard group's under hybrid)
  int stage = 0;
  DType param_dtype = DType::float32;  // what parameters are gathered and computed in
  std::int64_t parameters = 0;  // unpadded, a tied parameter once
  /// Persistent model states per rank (the ZeRO formula over padded units).
  ModelStateBytes model_states;
  /// Bytes per ledger category at the predicted peak (MemoryLedger::current at that moment).
  std::array<std::int64_t, kMemoryCategories> at_peak{};
  /// Each category's own predicted high-water mark (MemoryLedger::high_water).
  std::array<std::int64_t, kMemoryCategories> category_peaks{};
  /// Predicted MemoryLedger::high_water_total(): bytes.
  std::int64_t peak = 0;
  /// Activations of one training forward of the planned input shape, bytes; nullopt when no
  /// shape was given or a module cannot tell (activations_note says which).
  std::optional<std::int64_t> activations;
  std::string activations_note;

  /// The largest categories at the peak, largest first (name, bytes), zero ones left out.
  std::vector<std::pair<std::string, std::int64_t>> largest() const;
  /// A table: one line per category at the peak (MiB and share), the model-state formula, the total.
  std::string table() const;
};

/// Predicts one rank's peak for `units` trained with `config` on `world_size` ranks (the ranks
/// model states are sharded over: under hybrid sharding the shard group's size, since a rank
/// holds what a flat run of that many ranks holds; Engine::plan_memory passes it) with an
/// optimizer holding `optimizer_states` float32 arrays per parameter (Optimizer::
/// state_per_element), for micro-batches of `input_shape` (nullopt: activations left out).
/// Activation checkpointing is read from `config` (activation_checkpointing,
/// checkpointed_units). Throws InvalidArgument for a world size < 1, a bad stage, or a unit
/// borrowing from a unit that is not earlier.
MemoryPlan plan_memory(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                       int optimizer_states, const std::optional<Shape>& input_shape);

/// Settings under which the same model fits in `limit_bytes` per rank, each as "setting:
/// predicted peak" (re-planned, not guessed): the stage, zero_optimization.prefetch_bytes,
/// reduce_bucket_size, activation checkpointing of every unit, and the smallest world size
/// up to 64x this one. Empty when none does.
std::vector<std::string> settings_that_fit(const std::vector<PlannedUnit>& units, const EngineConfig& config,
                                           int world_size, int optimizer_states, const std::optional<Shape>& input_shape,
                                           std::int64_t limit_bytes);

/// The refusal's text: the predicted peak against the limit, the largest categories and
/// settings_that_fit (one per line), naming `limit_source` (the configuration key).
std::string memory_limit_message(const MemoryPlan& plan, std::int64_t limit_bytes, const std::string& limit_source,
                                 const std::vector<std::string>& fixes);

}  // namespace zs
