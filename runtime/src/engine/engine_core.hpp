#pragma once
// The engine's sequencer: owns the components and calls them in the order of a training step
//
//   forward:  per run, gather (GatherScheduler) -> modules -> release; record the order
//             (ExecutionOrder)
//   backward: the recorded runs in reverse: gather -> recompute if run twice (RunInputs) ->
//             modules -> reduce a group's gradients after its last use (GradientReducer)
//   step:     at the boundary, reduce what is left (stages 0-1) -> average, norm, clip,
//             update (ShardedOptimizer) -> all-gather updated whole parameters (stages 1-2)
//
// Engine (engine.hpp) forwards its public calls here; StateDict (state_dict.cpp) does saves
// and loads. Every component is handed the communicator it works over: the shard group's
// (shard_groups.hpp; the world under flat ZeRO).

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/checkpoint_writer.hpp"
#include "zeroshard/runtime/engine.hpp"
#include "buffer_pool.hpp"
#include "execution_order.hpp"
#include "gather_scheduler.hpp"
#include "gradient_reducer.hpp"
#include "loss_scaler.hpp"
#include "memory_check.hpp"
#include "parameter_group.hpp"
#include "phase.hpp"
#include "profiler.hpp"
#include "shard_groups.hpp"
#include "node_shared_memory.hpp"
#include "sharded_optimizer.hpp"

namespace zs::detail {

class EngineCore {
 public:
  /// `first_child[k]`: for an engine over a Sequential, the index of unit k's first child
  /// (unit_of_child); empty for module lists.
  EngineCore(std::vector<std::vector<nn::Module*>> units, EngineConfig config, Communicator& comm,
             std::vector<std::size_t> first_child);
  ~EngineCore();

  const Tensor& forward(const Tensor& input, bool training, const ForwardProgram* program);
  const Tensor& run_unit(std::size_t index, const Tensor& input);
  void backward(const Tensor& grad_output);
  bool step();
  /// The work of step() at an accumulation boundary: reduce the rest, update, re-gather.
  void step_boundary();
  /// optimizer.in_backward: the update of `group`, whose reduction just completed (the
  /// reducer's callback), then its gradient buffers freed.
  void step_in_backward(ParameterGroup& group);
  /// optimizer.in_backward's step(): groups no backward reduced are reduced (zeros) and updated
  /// now, the norm combined; throws zs::Error on every rank if it is not finite.
  void step_boundary_in_backward();
  /// Empties every gradient accumulator for the next window (after an update or a load): whole
  /// gradients are marked stale (written whole by their next backward), shards unwritten (the
  /// next reduce-scatter writes them), 16-bit accumulators zeroed.
  void clear_gradients();

  std::vector<float> full_parameters();
  std::vector<float> full_optimizer_state(const std::string& name);
  ModelStateBytes model_state_bytes() const;
  std::int64_t parameter_count() const;
  /// Resolved EngineConfig::compute_threads, applied to the process (nn::set_compute_threads).
  int compute_threads = 1;
  std::size_t unit_of_child(std::size_t child) const;
  double learning_rate() const;

  EngineConfig config;
  ShardingPolicy policy;  // over shard_groups->size() ranks
  /// Mixed precision: 16-bit parameters with float32 masters (bf16 or fp16 enabled).
  bool mixed = false;
  /// Gradients accumulated and reduced in 16 bits (grads16), not float32 (grads_full).
  bool half_gradients = false;
  Communicator& comm;     // the world: agreements, checkpoints, the profiler
  /// Who shards and who replicates (hybrid sharding); the components work over its shard
  /// group, the gradient reducer also over its replica group.
  std::unique_ptr<ShardGroups> shard_groups;
  Communicator& shard_comm() const { return shard_groups->shard(); }
  MemoryLedger ledger;
  BufferPool pool{ledger};  // after the ledger: buffers are returned before it goes
  /// policy.node_shared_parameters: every group's whole parameters, once per shard group; before the
  /// groups, whose buffers point into it.
  std::unique_ptr<NodeSharedMemory> shared_parameters;
  /// Node-shared parameters: waits until every rank of the shard group is here, so that no rank
  /// writes its slice (an update, a load) while another still reads, or reads before all wrote.
  void synchronize_shared_parameters();
  std::vector<std::unique_ptr<ParameterGroup>> groups;
  std::unique_ptr<GatherScheduler> gathers;
  std::unique_ptr<GradientReducer> reducer;
  std::unique_ptr<ShardedOptimizer> optimizer;
  std::unique_ptr<ExecutionOrder> order;
  RunInputs run_inputs;
  std::unique_ptr<checkpoint::CheckpointWriter> checkpoint_writer;
  std::unique_ptr<Profiler> profiler;  // profiler.enabled only
  std::optional<LossScaler> loss_scaler;  // fp16 only
  std::mt19937_64 dropout_random;
  std::int64_t micro_steps = 0;
  /// Micro-steps into the current accumulation window (0 at a boundary): counted apart from
  /// micro_steps, so that a load at another accumulation count starts a clean window.
  int window_micro_steps = 0;
  bool backward_ran = false;  // since the last step()
  std::int64_t optimizer_steps = 0;
  std::int64_t skipped_steps = 0;
  bool last_step_skipped = false;
  double gradient_norm;  // NaN until the first boundary
  bool forward_was_training = false;
  /// "key = value" of the run's configuration, what checkpoints record: the engine's keys and
  /// the communicator's (Engine's TrainingConfig constructor replaces it with every key).
  std::vector<std::pair<std::string, std::string>> run_config;
  /// The memory planner's limit, and its plan made at the first training forward.
  MemoryLimit memory_limit;
  std::optional<MemoryPlan> memory_plan;
  /// The planner's prediction for micro-batches of `input_shape` (nullopt: model states and
  /// transients only).
  MemoryPlan plan_memory(const std::optional<Shape>& input_shape) const;

 private:
  void build_groups(std::vector<std::vector<nn::Module*>> units);
  void require_same_model_on_all_ranks() const;
  void initialize_and_shard();
  // Node-shared parameters: checks that the shard group is on one node (else InvalidArgument on
  // every rank) and maps `bytes` of shared memory for every group's whole parameters.
  void open_shared_parameters(std::int64_t bytes);
  // Copies this rank's slice of `group`'s initial values (params_full, private) into the shared
  // memory at `byte_offset`, which then backs params_full.
  void move_to_shared_parameters(ParameterGroup& group, std::int64_t byte_offset);
  // Mixed precision: `group`'s float32 master and 16-bit parameters from its whole float32
  // initial values (params_full).
  void make_mixed_precision_states(ParameterGroup& group);
  // Runs `group`'s modules on `input` (a run, or its recomputation: the same code, so the
  // same activations), polling progress between them. `position` is the run's place in this
  // forward (0: its input is the batch, whose gradient nobody reads).
  const Tensor& forward_modules(ParameterGroup& group, const Tensor& input, const nn::ForwardContext& context,
                                std::size_t position);
  // The run at `position` again from its saved input and dropout stream, so that its modules
  // hold that run's activations for backward (a unit run twice).
  void recompute_run(std::size_t position);
  void poll();
  void record_activations();

  std::vector<std::size_t> first_child_;
  nn::ForwardContext context_;
  std::function<void()> progress_hook_;  // handed to layers: advances collectives mid-layer
  std::int64_t activation_bytes_ = 0;    // ledgered under activations
  Tensor scaled_grad_output_;            // fp16: the loss gradient times the loss scale
};

}  // namespace zs::detail
