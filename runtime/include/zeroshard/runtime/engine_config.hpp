#pragma once
// The engine's settings: what an Engine is constructed with. The configuration file's keys
// for these fields (DeepSpeed's names where DeepSpeed has one) are defined in one place,
// runtime/src/config.cpp, and documented in docs/config.md.

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "zeroshard/checkpoint/checkpoint_config.hpp"
#include "zeroshard/dtype.hpp"
#include "zeroshard/runtime/lr_schedule.hpp"
#include "zeroshard/runtime/optimizer.hpp"

namespace zs {

class Communicator;
struct CommunicatorConfig;

/// The memory planner's settings (memory.*; memory_plan.hpp, docs/memory.md).
struct MemoryConfig {
  /// Refuse to start, on every rank and before the model buffers are allocated, when the
  /// predicted peak per rank exceeds this many bytes. 0: no limit.
  std::int64_t limit_bytes = 0;
  /// The same as a fraction of the node's physical memory divided by the ranks on the node
  /// (the smaller of the two limits applies). 0: none.
  double limit_fraction = 0;
  /// Rank 0 prints the plan at the first training forward.
  bool print_plan = true;
};

/// The timeline profiler (profiler.* keys; docs/config.md, docs/architecture.md "Timeline").
struct ProfilerConfig {
  bool enabled = false;
  /// Steps [first_step, end_step) are recorded: profiler.steps = "1:4" records steps 1, 2 and
  /// 3 (a Python slice). Steps count accumulation boundaries from 0 (optimizer_steps() +
  /// skipped_steps() before the step). Step 0 pays first-touch costs; it is not the default.
  std::int64_t first_step = 1, end_step = 4;
  /// Rank 0 writes the merged trace to <output>.json (to `output` itself if it ends in .json).
  std::string output = "zeroshard_trace";
};

/// fp16 loss scaling (fp16.* keys), DeepSpeed's DynamicLossScaler: the loss gradient is
/// multiplied by the scale before backward and the gradients divided by it before the update;
/// a step whose gradients overflow (inf/NaN on any rank) is skipped on every rank and the
/// scale backed off; after `loss_scale_window` steps without overflow it doubles.
struct LossScaleConfig {
  /// A fixed scale; 0 = dynamic (fp16.loss_scale).
  double loss_scale = 0;
  /// The dynamic scale starts at 2^initial_scale_power (DeepSpeed default 16).
  int initial_scale_power = 16;
  /// Steps without overflow before the scale doubles (DeepSpeed default 1000).
  int loss_scale_window = 1000;
  /// Overflows tolerated before the scale halves (DeepSpeed's delayed shift, default 2).
  int hysteresis = 2;
  /// The scale never goes below this (DeepSpeed default 1).
  double min_loss_scale = 1;
};

/// Mixed precision (docs/mixed-precision.md): 16-bit parameters gathered and computed with,
/// gradients reduced in the reduce dtype, float32 master weights and optimizer states in the
/// shards always. DeepSpeed's bf16.enabled / fp16.enabled; FSDP2's MixedPrecisionPolicy
/// (param_dtype, reduce_dtype).
struct MixedPrecisionConfig {
  bool bf16 = false;  // bf16.enabled: parameters in bfloat16
  bool fp16 = false;  // fp16.enabled: parameters in float16, with loss scaling
  /// What gradients are accumulated and communicated in (mixed_precision.reduce_dtype):
  /// float32, or the parameter dtype; unset = the parameter dtype (FSDP2's default).
  std::optional<DType> reduce_dtype;
  LossScaleConfig fp16_scaling;

  /// bfloat16, float16 or float32 (neither enabled).
  DType param_dtype() const { return bf16 ? DType::bfloat16 : fp16 ? DType::float16 : DType::float32; }
  DType gradient_dtype() const { return reduce_dtype.value_or(param_dtype()); }
  bool enabled() const { return bf16 || fp16; }
  /// Throws InvalidArgument naming the keys: both enabled, a reduce dtype other than float32
  /// or the parameter dtype, loss-scale settings out of range.
  void validate() const;
};

struct EngineConfig {
  /// ZeRO stage 0-3 (zero_optimization.stage). Read once, into a ShardingPolicy
  /// (sharding_policy.hpp); no component tests the number itself.
  int stage = 0;
  /// Hybrid sharding (zero_optimization.shard_group_size; DeepSpeed MiCS's mics_shard_size,
  /// FSDP's HYBRID_SHARD): model states are sharded over groups of this many consecutive ranks
  /// and replicated across the groups (shard_groups.hpp). -1 (default): one group of every rank
  /// (flat ZeRO); 0: the ranks of one node (MPI_COMM_TYPE_SHARED; every node must hold the same
  /// number of consecutive ranks); k >= 1: k ranks, which must divide the world size. Stages
  /// 1-3; stage 0 holds everything whole and ignores it.
  int shard_group_size = -1;
  int gradient_accumulation_steps = 1;
  OptimizerConfig optimizer;
  ScheduleConfig scheduler;
  /// Clip gradients by their global norm before each update (DeepSpeed's gradient_clipping,
  /// torch.nn.utils.clip_grad_norm_(max_norm)): after the gradients are averaged over ranks and
  /// micro-steps, if max_norm / (norm + 1e-6) < 1 every gradient is multiplied by it. 0 = off.
  /// The norm is computed at every step either way (Engine::gradient_norm()).
  double gradient_clipping = 0;
  /// The norm's type: 2 (Euclidean) or infinity (max |g|), as clip_grad_norm_(norm_type).
  double gradient_clipping_norm_type = 2;
  /// Unit boundaries, as indices of the Sequential's children where a new unit starts (the
  /// first unit always starts at 0). Empty: size-based auto-wrapping (next field). Ignored by
  /// the constructor that takes explicit groups.
  std::vector<std::size_t> unit_starts;
  /// Auto-wrap: a unit closes once it holds at least this many parameters (FSDP's
  /// size_based_auto_wrap_policy). 0 closes a unit after every child that has parameters.
  std::int64_t auto_wrap_min_params = 0;
  /// Activation checkpointing (FSDP's checkpoint_wrapper / apply_activation_checkpointing,
  /// DeepSpeed's activation checkpointing), per unit: in training, a checkpointed unit's forward
  /// keeps only its input (and the dropout stream before it); its modules' cached activations
  /// are freed, and backward runs the unit's forward again from that input, with the same
  /// dropout masks, right before its backward (at stage 3 after the unit's gather, scheduled
  /// like any other). Results are bit-identical with and without it. true: every unit.
  bool activation_checkpointing = false;
  /// Or just these units (indices into the engine's units); read when the flag above is false.
  std::vector<std::size_t> checkpointed_units;
  /// Threads each rank computes with (GEMMs and the optimizer update; nn/compute_threads.hpp),
  /// as torch.set_num_threads. 0 (auto): OMP_NUM_THREADS if set, else the node's cores divided
  /// by its ranks, capped by the rank's CPU binding: never oversubscribed by default. The count
  /// does not change results. Engine::compute_threads() says what was chosen.
  int compute_threads = 0;
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
  /// its backward, saving one all-gather per unit at the cost of memory. Even when true, the
  /// last unit of a training forward that follows the recorded unit order keeps them: backward
  /// runs it first (FSDP2 keeps its root's parameters after forward for the same reason).
  bool reshard_after_forward = true;
  /// Stages 1-3, float32: every unit's whole parameters live once per shard group in shared memory
  /// (/dev/shm), each rank updating only its own shard's slice in place; no parameter is ever
  /// all-gathered (stage 3's gathers before forward and backward, stages 1-2's after every
  /// update) and a rank's parameter memory is its shard, as at stage 3. The ranks of a node
  /// synchronise (a barrier) before and after each update. Needs every rank of a shard group on
  /// one node (flat ZeRO on one node, or zero_optimization.shard_group_size = 0 across nodes);
  /// not with bf16/fp16 yet. Results are bit-identical to false. docs/architecture.md
  /// "Node-shared parameters". No DeepSpeed/FSDP equivalent (closest: ZeRO++'s hpZ).
  bool node_shared_parameters = false;
  /// Key optimizer.in_backward. Each unit is updated during backward, as soon as its gradient
  /// reduction completes, and its gradient buffers are freed right after: gradients are never
  /// held for the whole model (model-state memory 12 bytes per parameter at stage 0 in float32,
  /// instead of 16), at the price of the step-wide decisions that need every gradient first.
  /// So it needs gradient_accumulation_steps = 1, gradient_clipping = 0 (the global norm is not
  /// known before the first update), fp16 off (a loss-scale overflow could not skip a step
  /// already applied), reduce_bucket_size = 0 and node_shared_parameters off; InvalidArgument
  /// names the setting otherwise. The update, the optimizer states and the reported gradient
  /// norm are bit-identical to false. A non-finite gradient norm cannot skip the step: step()
  /// throws zs::Error on every rank instead (the parameters then hold non-finite values).
  /// Between backward() and step() the parameters are already updated. torchtune's
  /// optimizer_in_bwd; PyTorch's register_post_accumulate_grad_hook recipe.
  bool optimizer_in_backward = false;
  /// Mixed precision: off (float32 everywhere) unless bf16 or fp16 is enabled.
  MixedPrecisionConfig precision;
  /// The memory planner's limit and report.
  MemoryConfig memory;
  /// Engine::save: retention, async writes, file mode.
  checkpoint::CheckpointConfig checkpoint;
  /// The timeline profiler: off unless enabled.
  ProfilerConfig profiler;
  /// Throws InvalidArgument naming the bad field by its configuration key.
  void validate() const;
  /// optimizer_in_backward's requirements (above); InvalidArgument naming the conflicting key.
  void validate_optimizer_in_backward() const;
};

/// "key = value" for every configuration key of `config`, in documentation order (keys as in
/// docs/config.md): what a checkpoint records and what ranks compare.
std::vector<std::pair<std::string, std::string>> config_entries(const EngineConfig& config);

/// The same, followed by the communicator's keys (communication.*) of `communication`.
std::vector<std::pair<std::string, std::string>> config_entries(const EngineConfig& config,
                                                                const CommunicatorConfig& communication);

/// Collective over `comm`. Throws InvalidArgument on every rank, naming the keys whose values
/// differ between ranks, if the ranks do not all hold the same engine configuration.
void require_same_on_all_ranks(const EngineConfig& config, const Communicator& comm);

}  // namespace zs
