#pragma once
// The ZeRO engine: trains an nn::Sequential under MPI with its model states sharded per stage.
//
// Units: consecutive children of the Sequential whose parameters are packed into one flat
// float32 buffer (sharding::FlatLayout), padded so every rank owns an equal contiguous shard.
// Rank r owns slice r of every unit. What each rank holds (design.md):
//
//   stage | parameters            | gradients                    | optimizer state
//   0     | full                  | full, all-reduced at step    | full
//   1     | full                  | full, reduce-scattered at step | own shard
//   2     | full                  | own shard; a unit's full grads live only during its backward,
//         |                       | reduce-scattered right after it | own shard
//   3     | own shard; a unit's full params live only during its forward and its backward
//         |                       | as stage 2                   | own shard
//
// Every collective is a nonblocking Work, issued in the same order on every rank (the order
// units run in forward, its reverse in backward; what is prefetched depends on sizes and the
// recorded order only, never on timing). Contract: one backward per micro-step, then step(). Gradients are summed across ranks and micro-steps and
// divided once by (world size x accumulation steps); updates are elementwise, so with
// gradient_accumulation_steps = 1 stages 0-3 produce bit-identical parameters.
//
// Collective: constructing an Engine and every forward/backward/step are collective over `comm`.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/checkpoint_config.hpp"
#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/lr_schedule.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"
#include "zeroshard/runtime/nn/layers.hpp"
#include "zeroshard/runtime/optimizer.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs {

namespace checkpoint {
class CheckpointWriter;
}

class Engine;

/// Runs the engine's units in an order the model's own code picks at run time: a branch
/// skipped, units reordered, a unit applied more than once. Handed to a ForwardProgram.
class UnitRunner {
 public:
  /// Runs unit `unit`'s children in order on `input` and returns the last child's output.
  /// The runs form a chain: `input` must be the forward's input for the first run and the
  /// previous run's output after that (backward replays the chain in reverse).
  const Tensor& run(std::size_t unit, const Tensor& input);

 private:
  friend class Engine;
  explicit UnitRunner(Engine& engine) : engine_(engine) {}
  Engine& engine_;
};

/// A forward with control flow: calls `units.run(k, x)` for the units it picks and returns
/// the last run's output. It must pick the same units in the same order on every rank
/// (decide branches from values every rank shares: the step count, a common seed); the
/// engine checks that before each run and throws on every rank otherwise.
using ForwardProgram = std::function<const Tensor&(UnitRunner& units, const Tensor& input)>;

/// The caller's own integers saved with a checkpoint (data sampler position, counters).
using ClientState = std::map<std::string, std::int64_t>;

struct EngineConfig {
  int stage = 0;
  int gradient_accumulation_steps = 1;
  OptimizerConfig optimizer;
  ScheduleConfig scheduler;
  /// Unit boundaries, as indices of the Sequential's children where a new unit starts (the
  /// first unit always starts at 0). Empty: size-based auto-wrapping (next field).
  std::vector<std::size_t> unit_starts;
  /// Auto-wrap: a unit closes once it holds at least this many parameters (FSDP's
  /// size_based_auto_wrap_policy). 0 closes a unit after every child that has parameters.
  std::int64_t auto_wrap_min_params = 0;
  /// Each tensor starts at a multiple of this many elements in its unit's flat buffer.
  std::int64_t alignment = 16;
  /// Parameter initialisation (identical on every rank) and, offset by rank, dropout.
  std::uint64_t seed = 1234;
  /// Overlap communication with compute: stage 3 prefetches the next units' parameters while
  /// a unit computes; gradient collectives start as soon as a unit's backward is done (stages
  /// 0-1 on the last micro-step) and complete while earlier units compute; the engine polls
  /// progress between modules. Off: every collective is waited on where it is issued. Results
  /// are bit-identical either way.
  bool overlap_comm = true;
  /// Gradient collectives (of units, or of buckets) allowed in flight at once during backward;
  /// the oldest is completed (and, stages 2-3, its memory freed) before another starts, so
  /// gradient memory is bounded and the same every step.
  int reductions_in_flight = 2;
  /// Elements per gradient bucket (over all ranks, DeepSpeed's reduce_bucket_size). After a
  /// unit's backward (stages 0-1: of the last micro-step, or at step() without overlap) its
  /// gradients are copied into fixed-size buckets, each rank's slice to its own chunk; a full
  /// bucket's reduce-scatter (stage 0: all-reduce) starts right away. Small units share a
  /// bucket (fewer, larger messages); at stages 2-3 the unit's full gradients are freed once
  /// packed and large units span several buckets (bounded transient memory). Results are
  /// bit-identical to 0. 0: each unit's gradients are reduced in place, one collective per unit.
  std::int64_t reduce_bucket_size = 0;
  /// Stage 3: bytes of parameters gathered ahead of the unit computing now.
  std::int64_t prefetch_bytes = std::int64_t{64} << 20;
  /// Stage 3: a hard cap on gathered (full) parameter bytes held at once; 0 = no cap.
  /// Prefetching stops at the cap, parameters kept for backward are resharded to stay under
  /// it, and a unit that alone exceeds it is an error (use smaller units).
  std::int64_t max_live_bytes = 0;
  /// Stage 3: units with fewer parameters than this stay whole on every rank (no gather
  /// traffic for tiny layers; updated like stage 2). DeepSpeed defaults to 1e5; 0 = off.
  std::int64_t param_persistence_threshold = 0;
  /// Stage 3: free a unit's gathered parameters after its forward (true) or keep them until
  /// its backward, saving one all-gather per unit at the cost of memory.
  bool reshard_after_forward = true;
  /// Engine::save: retention, async writes, file mode.
  checkpoint::CheckpointConfig checkpoint;
  /// Throws InvalidArgument naming the bad field.
  void validate() const;
};

/// Model-state bytes this rank holds persistently, by the table above (no transients).
struct ModelStateBytes {
  std::int64_t parameters = 0, gradients = 0, optimizer_states = 0;
  std::int64_t total() const { return parameters + gradients + optimizer_states; }
};

class Engine {
 public:
  Engine(nn::Sequential& model, EngineConfig config, Communicator& comm);
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
  /// over the plain forward: one 24-byte all-reduce per run (the cross-rank check) and, in
  /// training, a copy of each run's input, so that a unit run twice can be recomputed for
  /// its earlier backward.
  const Tensor& forward(const Tensor& input, const ForwardProgram& program);
  const Tensor& evaluate(const Tensor& input, const ForwardProgram& program);
  /// Backward from d(loss)/d(output) of the last forward; accumulates this micro-step's grads.
  void backward(const Tensor& grad_output);
  /// Ends a micro-step. Every gradient_accumulation_steps-th call reduces (stages 0-1), applies
  /// the optimizer with the scheduled learning rate, and returns true.
  bool step();

  /// The seed of rank `rank`'s dropout stream: each rank draws its own masks, reproducibly
  /// from EngineConfig::seed.
  static std::uint64_t dropout_seed(std::uint64_t seed, int rank);

  int stage() const { return config_.stage; }
  const EngineConfig& config() const { return config_; }
  std::int64_t optimizer_steps() const { return optimizer_steps_; }
  std::int64_t micro_steps() const { return micro_steps_; }
  /// The learning rate the next optimizer step will use.
  double learning_rate() const;
  std::size_t unit_count() const;
  /// The unit holding the Sequential's child `child` (for ForwardPrograms).
  std::size_t unit_of_child(std::size_t child) const;
  /// The units the last forward ran, in order.
  std::vector<std::size_t> last_unit_order() const;
  /// Forwards whose unit order differed from the one recorded before them (each fell back to
  /// on-demand gathers and was recorded for the next).
  std::int64_t unit_order_changes() const;
  /// Parameters in the model (unpadded).
  std::int64_t parameter_count() const;
  ModelStateBytes model_state_bytes() const;
  const MemoryLedger& memory() const { return ledger_; }
  /// Collective. Every parameter's full value, in all_parameters() order, concatenated: the
  /// same on every rank and for every stage.
  std::vector<float> full_parameters();
  /// Collective. Optimizer state `name` (optimizer_state_names()) of every parameter, in
  /// all_parameters() order, concatenated (FSDP's full_optim_state_dict, one state at a time).
  std::vector<float> full_optimizer_state(const std::string& name);
  std::vector<std::string> optimizer_state_names() const;

  /// Collective. Writes a checkpoint of everything needed to continue training bit for bit
  /// (master parameters, optimizer states, step counters and LR schedule position, every
  /// rank's dropout RNG, `client_state`) to DIR/TAG (docs/checkpoint-format.md). An empty
  /// tag means "step_<optimizer steps>". Only between optimizer steps (not in the middle of
  /// gradient accumulation). With checkpoint.async the write continues in the background
  /// and commits at a later step() or wait_for_checkpoint(). Returns the tag. Throws
  /// checkpoint::CheckpointError on every rank on failure; DIR/latest is then unchanged.
  std::string save(const std::string& dir, const std::string& tag = "", const ClientState& client_state = {});
  /// Collective. Loads DIR/TAG (empty: the tag DIR/latest names), saved at any world size,
  /// stage or unit split, into this engine: parameters and optimizer states bitwise as saved,
  /// step counters, LR position; the dropout RNG too when the world size is the one saved.
  /// Returns the saved training state (client_state included).
  checkpoint::TrainingState load(const std::string& dir, const std::string& tag = "");
  /// Collective. Blocks until a pending async save is written and committed.
  void wait_for_checkpoint();
  /// Changes how later saves are written (e.g. async for periodic saves, sync for the last).
  /// Call it on every rank alike.
  void set_checkpoint_config(const checkpoint::CheckpointConfig& config);

 private:
  struct Unit;
  struct UnitOrder;
  friend class UnitRunner;
  // engine_unit_order.cpp: forward along a recorded, replayed unit order.
  const Tensor& run_forward(const Tensor& input, bool training, const ForwardProgram* program);
  const Tensor& run_unit(std::size_t index, const Tensor& input);
  // Programs: every rank states what it runs at `position` (a unit, or -1: the forward
  // ended) and whether its input continues the chain; throws on every rank on a mismatch.
  void agree_on_run(std::size_t position, std::int64_t unit, bool chained);
  // Completes the gathers prefetched along an order the forward left, and frees them.
  void drop_prefetched_gathers(const Unit* except);
  // Stage 3: frees the parameters forward kept for a backward that will not come.
  void release_kept_parameters();
  // The forward run at `position` again from its saved input and dropout stream, so that its
  // modules hold that run's activations for backward (a unit run twice).
  void recompute_run(std::size_t position);
  // The unit's children in order (a run, or its recomputation: the same code, so the same
  // activations), polling progress between them.
  const Tensor& forward_children(Unit& unit, const Tensor& input, const nn::ForwardContext& context);
  // Stage 3: allocate a unit's full parameters and issue their all-gather, without waiting.
  void issue_gather(Unit& unit);
  // Stage 3: make sure the unit's gather was issued, wait for it, point the parameters at it.
  void wait_gather(Unit& unit);
  // Stage 3 with overlap: issue the gathers of the units after `position` in `order`, within
  // prefetch_bytes.
  void prefetch(const std::vector<Unit*>& order, std::size_t position);
  // Stage 3: the unit at `position` of `order` ready to compute, later ones prefetched.
  void gather_with_prefetch(const std::vector<Unit*>& order, std::size_t position);
  void release_parameters(Unit& unit);
  // Stage 3: whether this unit's parameters live as shards (false for persistent units).
  bool shards_parameters(const Unit& unit) const;
  // Stage 3: make room under max_live_bytes for `bytes` more, or throw.
  void make_room(std::int64_t bytes, const Unit& for_unit);
  struct GradientBucket;
  // With reduce_bucket_size: copies the unit's full gradients into buckets (issuing each
  // bucket that fills); stages 2-3 then free them.
  void pack_gradients(Unit& unit);
  void issue_bucket();
  // Completes the oldest buckets in flight until at most `keep` remain, adding each rank's
  // reduced chunk to its units' shard accumulators.
  void finish_buckets_beyond(std::size_t keep);
  // Puts a reduced bucket's pieces where they belong: added to the shard accumulators
  // (stages 2-3) or copied back into the full gradients (stages 0-1).
  void unpack_reduced(const GradientBucket& bucket);
  void issue_reduction(Unit& unit);
  void finish_reduction(Unit& unit);
  // Completes the oldest in-flight reductions until at most `keep` remain.
  void finish_reductions_beyond(std::size_t keep);
  // With overlap: advance collectives in flight between modules (polling progress).
  void poll();
  void apply_optimizer();
  // Transient full buffers (stage 3 parameters, stage 2-3 gradients) are reused, not handed
  // back to the OS: freed multi-MiB buffers are faulted in again on every use otherwise
  // (facts.md measured that dominating a CPU step). Idle bytes are ledgered as "buffers".
  std::vector<float> take_buffer(std::int64_t elements);
  void give_back(std::vector<float>& buffer);
  void bind(Unit& unit);
  void track(MemoryCategory category, std::int64_t& held, std::int64_t bytes);
  checkpoint::ShardContents checkpoint_contents(const ClientState& client_state) const;
  // This rank's slice of each of a unit's checkpointed buffers: "params", then the optimizer
  // states, as spans into the unit's buffers (what save writes and load fills).
  struct NamedSlice {
    std::string name;
    std::span<float> slice;
  };
  std::vector<NamedSlice> own_slices(Unit& unit) const;
  // All-gathers the units' full parameters (stages 0-2, stage-3 persistent units) and, stage 0,
  // optimizer states from each rank's own slice: what load() reads is then one shard per rank.
  void gather_loaded_full_buffers();

  nn::Sequential& model_;
  EngineConfig config_;
  Communicator& comm_;
  Optimizer optimizer_;
  std::vector<std::unique_ptr<Unit>> units_;
  MemoryLedger ledger_;
  std::mt19937_64 dropout_random_;
  std::int64_t micro_steps_ = 0;
  std::int64_t optimizer_steps_ = 0;
  std::int64_t activations_held_ = 0;
  bool forward_was_training_ = false;
  std::unique_ptr<UnitOrder> unit_order_;
  std::deque<Unit*> reductions_in_flight_;  // issue order
  std::unique_ptr<GradientBucket> open_bucket_;  // being filled
  std::deque<std::unique_ptr<GradientBucket>> buckets_in_flight_;  // issue order
  std::int64_t bucket_bytes_held_ = 0;
  std::vector<std::vector<float>> idle_buffers_;
  std::function<void()> progress_hook_;  // handed to layers: advances collectives mid-layer
  std::int64_t idle_bytes_ = 0;
  std::unique_ptr<checkpoint::CheckpointWriter> checkpoint_writer_;
  std::int64_t persistent_bytes_ = 0;  // stage 3: full parameters of persistent units (not "live")
};

}  // namespace zs
