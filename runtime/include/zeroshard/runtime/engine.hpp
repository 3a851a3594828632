#pragma once
// The ZeRO engine: trains a model under MPI with its model states sharded per stage
// (Rajbhandari et al., "ZeRO", 2020; the table in sharding_policy.hpp). A thin facade: the
// work is done by components in runtime/src/engine/ (docs/architecture.md, "The engine").
//
// Units (parameter groups, FSDP2's fully_shard groups): modules that run together and whose
// parameters are packed into one flat float32 buffer (sharding::FlatLayout), padded so every
// rank owns an equal contiguous shard; rank r owns slice r of every unit. Built from
// consecutive children of a Sequential (unit_starts or size-based auto-wrapping) or from any
// lists of modules. A parameter used by modules of several units (tied weights: the LM head
// reusing the token embedding) is one parameter: the first unit that lists it owns it (one
// master, one optimizer state, saved once); the others borrow it, and it is whole wherever
// one of them computes; its gradients from every use are summed.
//
// Every collective is a nonblocking Work, issued in the same order on every rank (the order
// units run in forward, its reverse in backward; what is prefetched depends on sizes and the
// recorded order only, never on timing). Contract: one backward per forward, then step().
// Gradients are summed across ranks and micro-steps and divided once by (world size x
// accumulation steps); then clipped by their global norm (gradient_clipping); updates are
// elementwise, so stages 0-3 produce bit-identical parameters.
//
// Collective: constructing an Engine and every forward/backward/step/save/load are collective
// over `comm`: every rank calls them in the same order.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"
#include "zeroshard/runtime/memory_plan.hpp"
#include "zeroshard/runtime/model_state_formula.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/runtime/sharding_policy.hpp"

namespace zs {

struct TrainingConfig;

namespace detail {
class EngineCore;
}

/// Runs the engine's units in an order the model's own code picks at run time: a branch
/// skipped, units reordered, a unit applied more than once. Handed to a ForwardProgram.
class UnitRunner {
 public:
  /// Runs unit `unit`'s modules in order on `input` and returns the last module's output.
  /// The runs form a chain: `input` must be the forward's input for the first run and the
  /// previous run's output after that (backward replays the chain in reverse). Collective.
  /// Throws InvalidArgument on every rank if ranks run different units or break the chain.
  const Tensor& run(std::size_t unit, const Tensor& input);

 private:
  friend class detail::EngineCore;
  explicit UnitRunner(detail::EngineCore& core) : core_(core) {}
  detail::EngineCore& core_;
};

/// A forward with control flow: calls `units.run(k, x)` for the units it picks and returns
/// the last run's output. It must pick the same units in the same order on every rank
/// (decide branches from values every rank shares: the step count, a common seed); the
/// engine checks that before each run and throws on every rank otherwise.
using ForwardProgram = std::function<const Tensor&(UnitRunner& units, const Tensor& input)>;

/// The caller's own integers saved with a checkpoint (data sampler position, counters).
using ClientState = std::map<std::string, std::int64_t>;

class Engine {
 public:
  /// Collective. Shards `model`'s children in units (config.unit_starts or auto-wrapping).
  /// Initialises every parameter from config.seed (the same values at any world size, stage
  /// or unit split). Throws InvalidArgument on every rank for a bad config, ranks that built
  /// different models or hold different settings, two parameters with one name, or a predicted
  /// peak memory over memory.limit_bytes / limit_fraction (model states and transients here;
  /// with activations, the same at the first training forward: docs/memory.md).
  Engine(nn::Sequential& model, EngineConfig config, Communicator& comm);
  /// Collective. As above with config.engine; checkpoints also record the rest of the run's
  /// configuration (train_micro_batch_size_per_gpu, communication.*) exactly as given.
  Engine(nn::Sequential& model, const TrainingConfig& config, Communicator& comm);
  /// Collective. Units given as lists of modules (FSDP2's fully_shard([a, b])): unit k runs
  /// `units[k]` in the listed order, and the plain forward runs the units in order. A module
  /// may appear in one unit only; a parameter may be listed by modules of several units (tied).
  /// config.unit_starts and auto_wrap_min_params are not used.
  Engine(std::vector<std::vector<nn::Module*>> units, EngineConfig config, Communicator& comm);
  /// Collective. As above with config.engine; checkpoints also record the rest of the run's
  /// configuration (train_micro_batch_size_per_gpu, communication.*), as the Sequential one.
  Engine(std::vector<std::vector<nn::Module*>> units, const TrainingConfig& config, Communicator& comm);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Training-mode forward (dropout on). Keeps activations for backward.
  const Tensor& forward(const Tensor& input);
  /// Evaluation-mode forward (dropout off); no backward may follow.
  const Tensor& evaluate(const Tensor& input);
  /// Forward through the units `program` runs, in the order it runs them (docs/architecture.md,
  /// "Unit order"). Stage 3 prefetches along the order the last forward recorded; a forward
  /// that leaves it falls back to on-demand gathers and is recorded for the next one. Costs
  /// over the plain forward: one 16-byte all-reduce per run (the cross-rank check) and, in
  /// training, a copy of each run's input, so that a unit run twice can be recomputed for
  /// its earlier backward.
  const Tensor& forward(const Tensor& input, const ForwardProgram& program);
  const Tensor& evaluate(const Tensor& input, const ForwardProgram& program);
  /// Backward from d(loss)/d(output) of the last forward; accumulates this micro-step's grads.
  /// One backward per micro-step: throws InvalidArgument (on every rank alike, as every rank
  /// makes the same calls) if a backward already ran since the last step(), or if the last
  /// forward was evaluate(). With optimizer.in_backward (EngineConfig::optimizer_in_backward)
  /// it also updates each unit once its gradients are reduced and frees them: when it returns,
  /// the parameters are already the updated ones.
  void backward(const Tensor& grad_output);
  /// Ends a micro-step. Every gradient_accumulation_steps-th call reduces (stages 0-1),
  /// averages, measures the global gradient norm, clips, applies the optimizer with the
  /// scheduled learning rate, and returns true. If the norm is not finite (an inf or NaN
  /// gradient on any rank) the update is skipped on every rank: parameters, optimizer states,
  /// optimizer_steps() and the schedule stay as they were, last_step_skipped() is true, and
  /// the gradients are cleared (DeepSpeed's behaviour on overflow). With optimizer.in_backward
  /// the units were updated by backward(): step() updates the units no backward ran (from zero
  /// gradients, as without it), combines the norm (the same bits), re-gathers (stages 1-2) and
  /// counts the step; a norm that is not finite cannot be skipped and throws zs::Error on every
  /// rank, after the step was counted.
  bool step();

  /// The global gradient norm (norm type gradient_clipping_norm_type) measured at the last
  /// accumulation boundary, before clipping: FSDP's clip_grad_norm_ return value. NaN before
  /// the first boundary.
  double gradient_norm() const;
  /// Whether the last boundary's update was skipped (its norm was not finite).
  bool last_step_skipped() const;
  /// Boundaries whose update was skipped so far.
  std::int64_t skipped_steps() const;
  /// fp16 (fp16.enabled): the loss scale the next backward multiplies the loss gradient by
  /// (DeepSpeed's cur_scale; dynamic or fixed, docs/mixed-precision.md). 1 otherwise.
  double loss_scale() const;

  /// The seed of rank `rank`'s dropout stream: each rank draws its own masks, reproducibly
  /// from EngineConfig::seed.
  static std::uint64_t dropout_seed(std::uint64_t seed, int rank);

  int stage() const;
  /// Ranks each shard group holds (zero_optimization.shard_group_size resolved: the world size
  /// under flat ZeRO and at stage 0, the node's ranks for 0).
  int shard_group_size() const;
  /// Copies of each shard across the world (world size / shard_group_size(); 1 when flat).
  int shard_replicas() const;
  /// Bytes this rank has sent in the engine's collectives since construction, as
  /// Communicator::bytes_sent counts them: within its shard group (parameter gathers, gradient
  /// reduce-scatters, re-gathers after the update; under flat ZeRO the whole world), and across
  /// replicas (hybrid sharding's all-reduce of reduced gradient shards; 0 when flat). Not
  /// collective. Agreement checks, norms and checkpoints are not counted; under flat ZeRO the
  /// engine works on the caller's communicator, and what the caller sends on it counts too.
  struct CollectiveBytes {
    std::int64_t within_shard_group = 0, across_replicas = 0;
  };
  CollectiveBytes collective_bytes_sent() const;
  const EngineConfig& config() const;
  const ShardingPolicy& policy() const;
  std::int64_t optimizer_steps() const;
  std::int64_t micro_steps() const;
  /// The learning rate the next optimizer step will use.
  double learning_rate() const;
  std::size_t unit_count() const;
  /// The unit holding the Sequential's child `child` (for ForwardPrograms). Throws
  /// InvalidArgument for an index out of range or an engine built from module lists.
  std::size_t unit_of_child(std::size_t child) const;
  /// The units the last forward ran, in order.
  std::vector<std::size_t> last_unit_order() const;
  /// Forwards whose unit order differed from the one recorded before them (each fell back to
  /// on-demand gathers and was recorded for the next).
  std::int64_t unit_order_changes() const;
  /// Parameters in the model (unpadded; a tied parameter once).
  std::int64_t parameter_count() const;
  /// The compute threads this rank uses (EngineConfig::compute_threads, auto resolved).
  int compute_threads() const;
  ModelStateBytes model_state_bytes() const;
  const MemoryLedger& memory() const;
  /// The memory planner's prediction of this rank's peak (MemoryLedger::high_water_total and
  /// each category) for training micro-batches of shape `input_shape` (nullopt: without
  /// activations), at this engine's configuration and world size. Not collective; allocates
  /// nothing (docs/memory.md).
  MemoryPlan plan_memory(const std::optional<Shape>& input_shape) const;
  /// The plan made (and checked against memory.limit_bytes / memory.limit_fraction) at the
  /// first training forward, with that forward's input shape; null before it.
  const MemoryPlan* memory_plan() const;
  /// Collective. Every parameter's full value, in the order units list them (a tied
  /// parameter once, where its owner lists it), concatenated: the same on every rank and for
  /// every stage.
  std::vector<float> full_parameters();
  /// Collective. Optimizer state `name` (optimizer_state_names()) of every parameter, in
  /// full_parameters() order, concatenated (FSDP's full_optim_state_dict, one state at a time).
  std::vector<float> full_optimizer_state(const std::string& name);
  std::vector<std::string> optimizer_state_names() const;

  /// Collective. Writes a checkpoint of everything needed to continue training bit for bit
  /// (master parameters, optimizer states, step counters and LR schedule position, every
  /// rank's dropout RNG, `client_state`, and the configuration: the engine's keys, the
  /// communicator's, and train_micro_batch_size_per_gpu when built from a TrainingConfig) to DIR/TAG (docs/checkpoint-format.md). An empty
  /// tag means "step_<optimizer steps>". Only between optimizer steps (not in the middle of
  /// gradient accumulation). With checkpoint.async the write continues in the background
  /// and commits at a later step() or wait_for_checkpoint(). Returns the tag. Throws
  /// checkpoint::CheckpointError on every rank on failure; DIR/latest is then unchanged.
  std::string save(const std::string& dir, const std::string& tag = "", const ClientState& client_state = {});
  /// Collective. Loads DIR/TAG (empty: the tag DIR/latest names), saved at any world size,
  /// stage or unit split, into this engine: parameters and optimizer states bitwise as saved,
  /// step counters, LR position; the dropout RNG too when the world size is the one saved.
  /// Whatever gradient_accumulation_steps the saving run used, the next micro-step starts a
  /// clean window of this engine's count (saves happen at boundaries only). Throws
  /// InvalidArgument in the middle of an accumulation window (load before training or after
  /// a step() that returned true). Returns the saved training state (client_state included).
  checkpoint::TrainingState load(const std::string& dir, const std::string& tag = "");
  /// Collective. Blocks until a pending async save is written and committed.
  void wait_for_checkpoint();
  /// Collective. Writes the profiler's trace now if it is recording (a run that ended inside
  /// profiler.steps; otherwise the trace is written at the range's last step()). Returns the
  /// trace's path, "" if the profiler is off or has written nothing.
  std::string finish_profiler();
  /// The Chrome trace the profiler wrote (on every rank; rank 0 wrote it), "" if none yet.
  std::string profiler_trace() const;

  /// Changes how later saves are written (e.g. async for periodic saves, sync for the last).
  /// Call it on every rank alike.
  void set_checkpoint_config(const checkpoint::CheckpointConfig& config);

 private:
  std::unique_ptr<detail::EngineCore> core_;
};

}  // namespace zs
