#include "zeroshard/runtime/config.hpp"

#include <cerrno>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <utility>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/json.hpp"

namespace zs {

namespace {

using runtime::JsonValue;
using runtime::parse_json;

enum class Kind { integer, real, boolean, text, pair };

struct Value {
  long long integer = 0;
  double real = 0;
  bool boolean = false;
  std::string text;
  double first = 0, second = 0;
};

struct Key {
  std::string name;
  Kind kind;
  bool engine;  // a field of EngineConfig (what config_entries(EngineConfig) lists)
  std::string meaning, equivalent;
  std::function<std::string(const TrainingConfig&)> get;
  std::function<void(TrainingConfig&, const Value&)> set;
};

std::string number_text(double v) {
  std::ostringstream out;
  out.precision(17);
  out << v;
  return out.str();
}

std::string kind_name(Kind k) {
  switch (k) {
    case Kind::integer: return "an integer";
    case Kind::real: return "a number";
    case Kind::boolean: return "a boolean";
    case Kind::text: return "a string";
    case Kind::pair: return "a pair of numbers";
  }
  return "?";
}

// Every key, in documentation order. Field access goes through small lambdas so that adding a
// key is one entry here (and one row in docs/config.md, which config_documentation() feeds).
const std::vector<Key>& keys() {
  static const std::vector<Key> table = [] {
    std::vector<Key> k;
    auto integer = [&](std::string name, std::string meaning, std::string eq, auto field) {
      k.push_back({std::move(name), Kind::integer, false, std::move(meaning), std::move(eq),
                   [field](const TrainingConfig& c) { return std::to_string(field(const_cast<TrainingConfig&>(c))); },
                   [field](TrainingConfig& c, const Value& v) {
                     // Never a silent truncation (4294967298 read as 2 by a 32-bit field).
                     using Field = std::remove_reference_t<decltype(field(c))>;
                     if (!std::in_range<Field>(v.integer))
                       throw InvalidArgument(std::to_string(v.integer) + " is outside this key's range [" +
                                             std::to_string(std::numeric_limits<Field>::min()) + ", " +
                                             std::to_string(std::numeric_limits<Field>::max()) + "]");
                     field(c) = static_cast<Field>(v.integer);
                   }});
    };
    auto real = [&](std::string name, std::string meaning, std::string eq, auto field) {
      k.push_back({std::move(name), Kind::real, false, std::move(meaning), std::move(eq),
                   [field](const TrainingConfig& c) { return number_text(field(const_cast<TrainingConfig&>(c))); },
                   [field](TrainingConfig& c, const Value& v) {
                     if (!std::isfinite(v.real))
                       throw InvalidArgument(number_text(v.real) + " is not a finite number");
                     field(c) = v.real;
                   }});
    };
    auto boolean = [&](std::string name, std::string meaning, std::string eq, auto field) {
      k.push_back({std::move(name), Kind::boolean, false, std::move(meaning), std::move(eq),
                   [field](const TrainingConfig& c) { return std::string(field(const_cast<TrainingConfig&>(c)) ? "true" : "false"); },
                   [field](TrainingConfig& c, const Value& v) { field(c) = v.boolean; }});
    };
    auto text = [&](std::string name, std::string meaning, std::string eq, auto get, auto parse) {
      k.push_back({std::move(name), Kind::text, false, std::move(meaning), std::move(eq),
                   [get](const TrainingConfig& c) { return get(c); },
                   [parse](TrainingConfig& c, const Value& v) { parse(c, v.text); }});
    };
    integer("train_micro_batch_size_per_gpu", "samples per rank per micro-step", "DeepSpeed: same key",
            [](TrainingConfig& c) -> std::int64_t& { return c.micro_batch_size; });
    integer("gradient_accumulation_steps", "micro-steps per optimizer step", "DeepSpeed: same key",
            [](TrainingConfig& c) -> int& { return c.engine.gradient_accumulation_steps; });
    integer("seed", "parameter initialisation and dropout seed", "torch.manual_seed",
            [](TrainingConfig& c) -> std::uint64_t& { return c.engine.seed; });
    integer("zero_optimization.stage", "ZeRO stage 0-3 (see docs/architecture.md)",
            "DeepSpeed: zero_optimization.stage; FSDP: NO_SHARD(0) / SHARD_GRAD_OP(2) / FULL_SHARD(3)",
            [](TrainingConfig& c) -> int& { return c.engine.stage; });
    integer("zero_optimization.shard_group_size",
            "hybrid sharding: shard model states over groups of this many consecutive ranks, replicate across "
            "groups; -1 = all ranks (flat ZeRO), 0 = the ranks of one node",
            "DeepSpeed: zero_optimization.mics_shard_size; FSDP: ShardingStrategy.HYBRID_SHARD (intra-node group)",
            [](TrainingConfig& c) -> int& { return c.engine.shard_group_size; });
    integer("zero_optimization.auto_wrap_min_params",
            "a unit closes once it holds this many parameters; 0 = one unit per layer with parameters",
            "FSDP: size_based_auto_wrap_policy(min_num_params)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.auto_wrap_min_params; });
    boolean("zero_optimization.overlap_comm", "overlap collectives with compute (prefetch, early reductions)",
            "DeepSpeed: zero_optimization.overlap_comm; FSDP: forward_prefetch / backward_prefetch",
            [](TrainingConfig& c) -> bool& { return c.engine.overlap_comm; });
    integer("zero_optimization.prefetch_bytes", "stage 3: parameter bytes gathered ahead of the running unit",
            "DeepSpeed: stage3_prefetch_bucket_size (elements)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.prefetch_bytes; });
    integer("zero_optimization.reductions_in_flight", "gradient collectives of units in flight during backward",
            "DeepSpeed: (bucket count implied by reduce_bucket_size)",
            [](TrainingConfig& c) -> int& { return c.engine.reductions_in_flight; });
    integer("zero_optimization.reduce_bucket_size",
            "stages 2-3: gradient elements per reduce bucket (all ranks); 0 = one collective per unit",
            "DeepSpeed: zero_optimization.reduce_bucket_size",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.reduce_bucket_size; });
    integer("zero_optimization.max_live_bytes", "stage 3: cap on gathered parameter bytes; 0 = none",
            "DeepSpeed: stage3_max_live_parameters (elements)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.max_live_bytes; });
    integer("zero_optimization.param_persistence_threshold", "stage 3: units with fewer parameters stay whole",
            "DeepSpeed: stage3_param_persistence_threshold",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.param_persistence_threshold; });
    boolean("zero_optimization.reshard_after_forward", "stage 3: free gathered parameters after forward (but the last unit's, which backward runs first)",
            "FSDP: reshard_after_forward (FULL_SHARD vs SHARD_GRAD_OP)",
            [](TrainingConfig& c) -> bool& { return c.engine.reshard_after_forward; });
    boolean("zero_optimization.node_shared_parameters",
            "stages 1-3, float32: whole parameters once per shard group in shared memory, never all-gathered",
            "(none; closest: DeepSpeed ZeRO++ zero_hpz_partition_size)",
            [](TrainingConfig& c) -> bool& { return c.engine.node_shared_parameters; });
    boolean("bf16.enabled", "bfloat16 parameters and gradients, float32 master weights (docs/mixed-precision.md)",
            "DeepSpeed: bf16.enabled; FSDP2: MixedPrecisionPolicy(param_dtype=torch.bfloat16)",
            [](TrainingConfig& c) -> bool& { return c.engine.precision.bf16; });
    boolean("fp16.enabled", "float16 parameters and gradients with loss scaling, float32 master weights",
            "DeepSpeed: fp16.enabled; FSDP2: MixedPrecisionPolicy(param_dtype=torch.float16) + ShardedGradScaler",
            [](TrainingConfig& c) -> bool& { return c.engine.precision.fp16; });
    text("mixed_precision.reduce_dtype",
         "dtype gradients are accumulated and reduced in: float32 or the parameter dtype; empty = the parameter dtype",
         "FSDP2: MixedPrecisionPolicy(reduce_dtype); DeepSpeed: communication_data_type",
         [](const TrainingConfig& c) {
           return c.engine.precision.reduce_dtype ? to_string(*c.engine.precision.reduce_dtype) : std::string();
         },
         [](TrainingConfig& c, const std::string& v) {
           if (v.empty()) c.engine.precision.reduce_dtype.reset();
           else c.engine.precision.reduce_dtype = parse_dtype(v);
         });
    real("fp16.loss_scale", "a fixed loss scale; 0 = dynamic", "DeepSpeed: fp16.loss_scale",
         [](TrainingConfig& c) -> double& { return c.engine.precision.fp16_scaling.loss_scale; });
    integer("fp16.initial_scale_power", "the dynamic loss scale starts at 2^power", "DeepSpeed: fp16.initial_scale_power",
            [](TrainingConfig& c) -> int& { return c.engine.precision.fp16_scaling.initial_scale_power; });
    integer("fp16.loss_scale_window", "steps without overflow before the loss scale doubles",
            "DeepSpeed: fp16.loss_scale_window; torch.amp.GradScaler(growth_interval)",
            [](TrainingConfig& c) -> int& { return c.engine.precision.fp16_scaling.loss_scale_window; });
    integer("fp16.hysteresis", "overflows tolerated before the loss scale halves", "DeepSpeed: fp16.hysteresis",
            [](TrainingConfig& c) -> int& { return c.engine.precision.fp16_scaling.hysteresis; });
    real("fp16.min_loss_scale", "the loss scale never goes below this", "DeepSpeed: fp16.min_loss_scale",
         [](TrainingConfig& c) -> double& { return c.engine.precision.fp16_scaling.min_loss_scale; });
    integer("compute.threads", "threads per rank for GEMMs and the optimizer; 0 = auto (node cores / ranks)",
            "torch.set_num_threads / OMP_NUM_THREADS",
            [](TrainingConfig& c) -> int& { return c.engine.compute_threads; });
    integer("zero_optimization.alignment", "tensor alignment in the flat buffers, elements", "DeepSpeed: (fixed alignment)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.alignment; });
    text("optimizer.type", "sgd, adam or adamw", "DeepSpeed: optimizer.type",
         [](const TrainingConfig& c) { return to_string(c.engine.optimizer.kind); },
         [](TrainingConfig& c, const std::string& s) { c.engine.optimizer.kind = parse_optimizer_kind(s); });
    real("optimizer.params.lr", "base learning rate", "DeepSpeed: optimizer.params.lr",
         [](TrainingConfig& c) -> double& { return c.engine.optimizer.lr; });
    k.push_back({"optimizer.params.betas", Kind::pair, false, "Adam betas", "DeepSpeed: optimizer.params.betas",
                 [](const TrainingConfig& c) {
                   return number_text(c.engine.optimizer.beta1) + "," + number_text(c.engine.optimizer.beta2);
                 },
                 [](TrainingConfig& c, const Value& v) {
                   if (!std::isfinite(v.first) || !std::isfinite(v.second))
                     throw InvalidArgument("betas must be finite numbers");
                   c.engine.optimizer.beta1 = v.first;
                   c.engine.optimizer.beta2 = v.second;
                 }});
    real("optimizer.params.eps", "Adam epsilon", "DeepSpeed: optimizer.params.eps",
         [](TrainingConfig& c) -> double& { return c.engine.optimizer.eps; });
    real("optimizer.params.weight_decay", "weight decay; negative = PyTorch default (0, AdamW 0.01)",
         "DeepSpeed: optimizer.params.weight_decay", [](TrainingConfig& c) -> double& { return c.engine.optimizer.weight_decay; });
    real("optimizer.params.momentum", "SGD momentum", "torch.optim.SGD(momentum)",
         [](TrainingConfig& c) -> double& { return c.engine.optimizer.momentum; });
    real("optimizer.params.dampening", "SGD dampening", "torch.optim.SGD(dampening)",
         [](TrainingConfig& c) -> double& { return c.engine.optimizer.dampening; });
    boolean("optimizer.in_backward",
            "update each unit during backward once its gradients are reduced, and free them (no clipping or accumulation)",
            "torchtune: optimizer_in_bwd",
            [](TrainingConfig& c) -> bool& { return c.engine.optimizer_in_backward; });
    boolean("optimizer.params.nesterov", "SGD Nesterov momentum", "torch.optim.SGD(nesterov)",
            [](TrainingConfig& c) -> bool& { return c.engine.optimizer.nesterov; });
    text("activation_checkpointing.units",
         "units whose activations are recomputed in backward instead of kept: none, all, or unit indices "
         "(0,2,5)",
         "FSDP: apply_activation_checkpointing(check_fn); DeepSpeed: activation_checkpointing",
         [](const TrainingConfig& c) {
           if (c.engine.activation_checkpointing) return std::string("all");
           if (c.engine.checkpointed_units.empty()) return std::string("none");
           std::string list;
           for (std::size_t u : c.engine.checkpointed_units) list += (list.empty() ? "" : ",") + std::to_string(u);
           return list;
         },
         [](TrainingConfig& c, const std::string& s) {
           if (s.empty()) throw InvalidArgument("is empty: give none, all or unit indices (0,2,5)");
           c.engine.activation_checkpointing = s == "all";
           c.engine.checkpointed_units.clear();
           if (s == "all" || s == "none") return;
           std::stringstream items(s);
           for (std::string item; std::getline(items, item, ',');) {
             char* end = nullptr;
             errno = 0;
             const unsigned long long unit = std::strtoull(item.c_str(), &end, 10);
             if (item.empty() || *end != '\0' || errno || item.front() == '-')
               throw InvalidArgument("'" + s + "' is not none, all or a comma-separated list of unit indices");
             c.engine.checkpointed_units.push_back(static_cast<std::size_t>(unit));
           }
         });
    real("gradient_clipping", "clip gradients to this global norm before each update; 0 = off",
         "DeepSpeed: gradient_clipping; FSDP: clip_grad_norm_(max_norm)",
         [](TrainingConfig& c) -> double& { return c.engine.gradient_clipping; });
    text("gradient_clipping_norm_type", "the global norm's type: 2 or inf", "FSDP: clip_grad_norm_(norm_type)",
         [](const TrainingConfig& c) {
           return std::isinf(c.engine.gradient_clipping_norm_type) ? std::string("inf")
                                                                   : number_text(c.engine.gradient_clipping_norm_type);
         },
         [](TrainingConfig& c, const std::string& s) {
           if (s == "inf") c.engine.gradient_clipping_norm_type = std::numeric_limits<double>::infinity();
           else if (s == "2") c.engine.gradient_clipping_norm_type = 2;
           else throw InvalidArgument("'" + s + "' is not a supported norm type: use 2 or inf");
         });
    integer("memory.limit_bytes",
            "refuse to start (every rank, before allocating) when the planner's predicted peak per rank exceeds "
            "this many bytes; 0 = no limit",
            "(no DeepSpeed/FSDP key; DeepSpeed's estimate_zero3_model_states_mem_needs, run by hand)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.memory.limit_bytes; });
    real("memory.limit_fraction",
         "the same limit as a fraction of the node's physical memory, shared equally by the ranks on the node "
         "(the smaller limit applies when both are set); 0 = none",
         "(no DeepSpeed/FSDP key; PyTorch: torch.cuda.set_per_process_memory_fraction)",
         [](TrainingConfig& c) -> double& { return c.engine.memory.limit_fraction; });
    boolean("memory.print_plan", "rank 0 prints the memory plan (peak bytes per category) at the first training forward",
            "DeepSpeed: memory_breakdown (measured, not predicted)",
            [](TrainingConfig& c) -> bool& { return c.engine.memory.print_plan; });
    text("scheduler.type", "constant, step, exponential, cosine, cosine_restarts or cyclic", "DeepSpeed: scheduler.type",
         [](const TrainingConfig& c) { return to_string(c.engine.scheduler.kind); },
         [](TrainingConfig& c, const std::string& s) { c.engine.scheduler.kind = parse_schedule_kind(s); });
    integer("scheduler.params.warmup_steps", "linear warmup steps before the schedule", "DeepSpeed: warmup_num_steps",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.scheduler.warmup_steps; });
    real("scheduler.params.warmup_start_factor", "warmup starts at this fraction of lr", "LinearLR(start_factor)",
         [](TrainingConfig& c) -> double& { return c.engine.scheduler.warmup_start_factor; });
    integer("scheduler.params.step_size", "step: decay period; cyclic: half period", "StepLR(step_size), CyclicLR(step_size_up)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.scheduler.step_size; });
    real("scheduler.params.gamma", "decay factor (step, exponential)", "StepLR/ExponentialLR(gamma)",
         [](TrainingConfig& c) -> double& { return c.engine.scheduler.gamma; });
    integer("scheduler.params.total_steps", "cosine: steps from lr to min_lr", "CosineAnnealingLR(T_max)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.scheduler.total_steps; });
    real("scheduler.params.min_lr", "cosine floor", "CosineAnnealingLR(eta_min)",
         [](TrainingConfig& c) -> double& { return c.engine.scheduler.min_lr; });
    integer("scheduler.params.restart_period", "cosine_restarts: first period", "CosineAnnealingWarmRestarts(T_0)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.scheduler.restart_period; });
    integer("scheduler.params.restart_mult", "cosine_restarts: period growth", "CosineAnnealingWarmRestarts(T_mult)",
            [](TrainingConfig& c) -> std::int64_t& { return c.engine.scheduler.restart_mult; });
    real("scheduler.params.max_lr", "cyclic: peak", "CyclicLR(max_lr)",
         [](TrainingConfig& c) -> double& { return c.engine.scheduler.max_lr; });
    integer("checkpoint.keep_last", "keep the writing run's newest N saves (its lineage, in save order; never latest, never an abandoned branch: docs/checkpoint-format.md, Retention); 0 = keep all",
            "DCP/Lightning: save_top_k / keep_last_n (no DeepSpeed key)",
            [](TrainingConfig& c) -> int& { return c.engine.checkpoint.keep_last; });
    boolean("checkpoint.async", "write checkpoints in the background while training continues",
            "DCP: async_save; DeepSpeed: checkpoint.async (Nebula)",
            [](TrainingConfig& c) -> bool& { return c.engine.checkpoint.async; });
    text("checkpoint.mode", "per_rank (one serial-HDF5 file per rank) or shared_file (one file, collective MPI-IO; parallel HDF5)",
         "DCP: one file per rank by default; DeepSpeed: one file per rank",
         [](const TrainingConfig& c) { return checkpoint::to_string(c.engine.checkpoint.mode); },
         [](TrainingConfig& c, const std::string& s) { c.engine.checkpoint.mode = checkpoint::parse_checkpoint_mode(s); });
    boolean("profiler.enabled", "record a Chrome trace of profiler.steps (docs/architecture.md, Timeline)",
            "torch.profiler.profile + export_chrome_trace; DeepSpeed: flops_profiler / comms_logger",
            [](TrainingConfig& c) -> bool& { return c.engine.profiler.enabled; });
    text("profiler.steps", "steps recorded, A:B = steps A..B-1 (a Python slice; steps count from 0)",
         "torch.profiler.schedule(wait, warmup, active); DeepSpeed: flops_profiler.profile_step",
         [](const TrainingConfig& c) {
           return std::to_string(c.engine.profiler.first_step) + ":" + std::to_string(c.engine.profiler.end_step);
         },
         [](TrainingConfig& c, const std::string& s) {
           const auto colon = s.find(':');
           char* end = nullptr;
           long long first = -1, last = -1;
           if (colon != std::string::npos && colon > 0 && colon + 1 < s.size()) {
             first = std::strtoll(s.c_str(), &end, 10);
             if (end != s.c_str() + colon) first = -1;
             last = std::strtoll(s.c_str() + colon + 1, &end, 10);
             if (*end != '\0') last = -1;
           }
           if (first < 0 || last <= first)
             throw InvalidArgument("'" + s + "' is not a step range A:B with 0 <= A < B (\"1:4\" records steps 1, 2 and 3)");
           c.engine.profiler.first_step = first;
           c.engine.profiler.end_step = last;
         });
    text("profiler.output", "rank 0 writes the merged trace to OUTPUT.json (OUTPUT itself if it ends in .json)",
         "torch.profiler.tensorboard_trace_handler(dir)", [](const TrainingConfig& c) { return c.engine.profiler.output; },
         [](TrainingConfig& c, const std::string& s) {
           if (s.empty()) throw InvalidArgument("is empty: give a path or prefix (default zeroshard_trace)");
           c.engine.profiler.output = s;
         });
    text("communication.reduce_scatter", "automatic, ring, mpi or shared_memory", "(NCCL/MPI choice; no DeepSpeed key)",
         [](const TrainingConfig& c) { return to_string(c.communication.reduce_scatter); },
         [](TrainingConfig& c, const std::string& s) { c.communication.reduce_scatter = parse_algorithm(s); });
    text("communication.all_gather", "automatic, ring, recursive_doubling, mpi or shared_memory", "(no DeepSpeed key)",
         [](const TrainingConfig& c) { return to_string(c.communication.all_gather); },
         [](TrainingConfig& c, const std::string& s) { c.communication.all_gather = parse_algorithm(s); });
    integer("communication.segment_bytes", "ring reduce-scatter pipelining unit", "(no DeepSpeed key)",
            [](TrainingConfig& c) -> std::size_t& { return c.communication.segment_bytes; });
    integer("communication.shared_memory_slot_bytes",
            "bytes a rank publishes per round of a shared-memory collective (two slots per rank, in /dev/shm); 0 = 8 MiB / ranks",
            "(no DeepSpeed key; NCCL_BUFFSIZE plays this part for NCCL's SHM transport)",
            [](TrainingConfig& c) -> std::size_t& { return c.communication.shared_memory_slot_bytes; });
    boolean("communication.verify_across_ranks", "check every collective's arguments across ranks (debugging)",
            "(no DeepSpeed key)", [](TrainingConfig& c) -> bool& { return c.communication.verify_across_ranks; });
    real("communication.timeout_s", "a wait on a collective longer than this ends with a hang report naming the ranks behind; 0 = wait forever",
         "torch.distributed.init_process_group(timeout); NCCL watchdog (TORCH_NCCL_ASYNC_ERROR_HANDLING)",
         [](TrainingConfig& c) -> double& { return c.communication.timeout_s; });
    integer("communication.flight_recorder_entries", "collectives each communicator remembers for hang reports",
            "TORCH_NCCL_TRACE_BUFFER_SIZE (NCCL flight recorder)",
            [](TrainingConfig& c) -> int& { return c.communication.flight_recorder_entries; });
    // The keys of fields outside EngineConfig; every other key configures the engine.
    for (Key& key : k)
      key.engine = key.name != "train_micro_batch_size_per_gpu" && key.name.rfind("communication.", 0) != 0;
    return k;
  }();
  return table;
}

const Key& find_key(const std::string& name, const std::string& source) {
  for (const Key& k : keys())
    if (k.name == name) return k;
  throw InvalidArgument(source + ": unknown configuration key '" + name + "' (every key is listed in docs/config.md)");
}

void apply(TrainingConfig& config, const Key& key, const Value& value, const std::string& source) {
  try {
    key.set(config, value);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(source + ": " + key.name + ": " + e.what());
  }
}

Value from_json(const Key& key, const JsonValue& json, const std::string& source) {
  Value v;
  auto wrong = [&] {
    throw InvalidArgument(source + ": " + key.name + " must be " + kind_name(key.kind) + ", not " + type_name(json.type));
  };
  switch (key.kind) {
    case Kind::integer:
      if (json.type != JsonValue::Type::number || !json.integral) wrong();
      // The parser holds numbers as doubles: beyond +-2^63 a cast would be undefined.
      if (!(json.number >= -9223372036854775808.0 && json.number < 9223372036854775808.0))
        throw InvalidArgument(source + ": " + key.name + " = " + number_text(json.number) +
                              " is outside the range of a 64-bit integer");
      v.integer = static_cast<long long>(json.number);
      break;
    case Kind::real:
      if (json.type != JsonValue::Type::number) wrong();
      v.real = json.number;
      break;
    case Kind::boolean:
      if (json.type != JsonValue::Type::boolean) wrong();
      v.boolean = json.boolean;
      break;
    case Kind::text:
      if (json.type != JsonValue::Type::string) wrong();
      v.text = json.string;
      break;
    case Kind::pair:
      if (json.type != JsonValue::Type::array || json.array.size() != 2 ||
          json.array[0].type != JsonValue::Type::number || json.array[1].type != JsonValue::Type::number)
        wrong();
      v.first = json.array[0].number;
      v.second = json.array[1].number;
      break;
  }
  return v;
}

Value from_text(const Key& key, const std::string& text, const std::string& source) {
  Value v;
  auto wrong = [&] {
    throw InvalidArgument(source + ": " + key.name + " must be " + kind_name(key.kind) + ", not '" + text + "'");
  };
  char* end = nullptr;
  errno = 0;
  switch (key.kind) {
    case Kind::integer:
      v.integer = std::strtoll(text.c_str(), &end, 10);
      if (text.empty() || *end != '\0' || errno) wrong();
      break;
    case Kind::real:
      v.real = std::strtod(text.c_str(), &end);
      if (text.empty() || *end != '\0' || errno) wrong();
      break;
    case Kind::boolean:
      if (text == "true" || text == "1") v.boolean = true;
      else if (text == "false" || text == "0") v.boolean = false;
      else wrong();
      break;
    case Kind::text: v.text = text; break;
    case Kind::pair: {
      const auto comma = text.find(',');
      if (comma == std::string::npos) wrong();
      v.first = std::strtod(text.substr(0, comma).c_str(), &end);
      if (*end != '\0') wrong();
      v.second = std::strtod(text.substr(comma + 1).c_str(), &end);
      if (*end != '\0') wrong();
      break;
    }
  }
  return v;
}

void apply_object(TrainingConfig& config, const JsonValue& object, const std::string& prefix, const std::string& source) {
  for (const auto& [name, value] : object.object) {
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (value.type == JsonValue::Type::object) {
      apply_object(config, value, key, source);
      continue;
    }
    const Key& k = find_key(key, source);
    apply(config, k, from_json(k, value, source), source);
  }
}

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

void TrainingConfig::apply_json(const std::string& text, const std::string& source) {
  const JsonValue root = parse_json(text, source);
  if (root.type != JsonValue::Type::object)
    throw InvalidArgument(source + ": the configuration must be a JSON object, not " + type_name(root.type));
  apply_object(*this, root, "", source);
}

void TrainingConfig::apply_override(const std::string& assignment) {
  const auto equals = assignment.find('=');
  if (equals == std::string::npos || equals == 0)
    throw InvalidArgument("override '" + assignment + "' must look like key=value (e.g. optimizer.params.lr=0.01)");
  const std::string name = assignment.substr(0, equals);
  const std::string source = "override --" + name;
  const Key& k = find_key(name, source);
  apply(*this, k, from_text(k, assignment.substr(equals + 1), source), source);
}

void EngineConfig::validate() const {
  if (stage < 0 || stage > 3)
    throw InvalidArgument("zero_optimization.stage = " + std::to_string(stage) + " is not a ZeRO stage: use 0, 1, 2 or 3");
  if (node_shared_parameters && stage == 0)
    throw InvalidArgument("zero_optimization.node_shared_parameters = true needs stage 1, 2 or 3: at stage 0 every rank "
                          "updates every parameter, so no rank owns a slice of a shared copy");
  if (node_shared_parameters && precision.enabled())
    throw InvalidArgument("zero_optimization.node_shared_parameters = true is float32 only for now: turn off bf16.enabled / "
                          "fp16.enabled, or node_shared_parameters");
  if (gradient_accumulation_steps < 1)
    throw InvalidArgument("gradient_accumulation_steps = " + std::to_string(gradient_accumulation_steps) +
                          " must be >= 1");
  if (!(gradient_clipping >= 0) || std::isinf(gradient_clipping))
    throw InvalidArgument("gradient_clipping = " + number_text(gradient_clipping) +
                          " must be a finite number >= 0 (0: no clipping)");
  if (gradient_clipping_norm_type != 2 && !std::isinf(gradient_clipping_norm_type))
    throw InvalidArgument("gradient_clipping_norm_type = " + number_text(gradient_clipping_norm_type) +
                          " is not supported: use 2 or inf");
  if (shard_group_size < -1)
    throw InvalidArgument("zero_optimization.shard_group_size = " + std::to_string(shard_group_size) +
                          " is not a group size: use -1 (all ranks, flat ZeRO), 0 (the ranks of one node) or a "
                          "number of ranks that divides the world size");
  if (auto_wrap_min_params < 0)
    throw InvalidArgument("zero_optimization.auto_wrap_min_params = " + std::to_string(auto_wrap_min_params) +
                          " must be >= 0");
  if (compute_threads < 0)
    throw InvalidArgument("compute.threads = " + std::to_string(compute_threads) +
                          " must be >= 0 (0: the node's cores divided by its ranks)");
  if (alignment < 1)
    throw InvalidArgument("zero_optimization.alignment = " + std::to_string(alignment) + " must be >= 1");
  if (reduce_bucket_size < 0)
    throw InvalidArgument("zero_optimization.reduce_bucket_size = " + std::to_string(reduce_bucket_size) +
                          " must be >= 0 (0: one collective per unit)");
  if (reductions_in_flight < 1)
    throw InvalidArgument("zero_optimization.reductions_in_flight = " + std::to_string(reductions_in_flight) +
                          " must be >= 1");
  if (max_live_bytes < 0)
    throw InvalidArgument("zero_optimization.max_live_bytes = " + std::to_string(max_live_bytes) + " must be >= 0");
  if (param_persistence_threshold < 0)
    throw InvalidArgument("zero_optimization.param_persistence_threshold = " +
                          std::to_string(param_persistence_threshold) + " must be >= 0");
  if (prefetch_bytes < 0)
    throw InvalidArgument("zero_optimization.prefetch_bytes = " + std::to_string(prefetch_bytes) + " must be >= 0");
  if (memory.limit_bytes < 0)
    throw InvalidArgument("memory.limit_bytes = " + std::to_string(memory.limit_bytes) + " must be >= 0 (0: no limit)");
  if (!(memory.limit_fraction >= 0 && memory.limit_fraction <= 1))
    throw InvalidArgument("memory.limit_fraction = " + number_text(memory.limit_fraction) +
                          " must be in [0, 1] (a fraction of the node's physical memory; 0: no limit)");
  if (profiler.first_step < 0 || profiler.end_step <= profiler.first_step || profiler.output.empty())
    throw InvalidArgument("profiler.steps = " + std::to_string(profiler.first_step) + ":" + std::to_string(profiler.end_step) +
                          " / profiler.output = '" + profiler.output + "': give steps A:B with 0 <= A < B and a non-empty output");
  if (optimizer_in_backward) validate_optimizer_in_backward();
  precision.validate();
  optimizer.validate();
  scheduler.validate();
  checkpoint.validate();
}

void EngineConfig::validate_optimizer_in_backward() const {
  // Each needs something optimizer.in_backward gives up: every gradient of the step before the
  // first update (clipping's norm, fp16's overflow skip), gradients kept across backwards
  // (accumulation), or a unit's reduction completing on its own (buckets mix units).
  const std::string refused = "optimizer.in_backward = true updates each unit during backward, ";
  if (gradient_accumulation_steps != 1)
    throw InvalidArgument(refused + "so gradients are not kept for gradient_accumulation_steps = " +
                          std::to_string(gradient_accumulation_steps) +
                          ": set gradient_accumulation_steps = 1 (a larger micro-batch) or optimizer.in_backward = false");
  if (gradient_clipping > 0)
    throw InvalidArgument(refused + "before the global norm that gradient_clipping = " + number_text(gradient_clipping) +
                          " needs is known: set gradient_clipping = 0 or optimizer.in_backward = false");
  if (precision.fp16)
    throw InvalidArgument(refused + "so a float16 loss-scale overflow could not skip the step: use bf16.enabled "
                          "(no loss scaling) or optimizer.in_backward = false");
  if (reduce_bucket_size > 0)
    throw InvalidArgument(refused + "as its own reduction completes, which buckets (zero_optimization.reduce_bucket_size = " +
                          std::to_string(reduce_bucket_size) + ") mix across units: set reduce_bucket_size = 0 or "
                          "optimizer.in_backward = false");
  if (node_shared_parameters)
    throw InvalidArgument(refused + "while other ranks may still read the node's shared copy "
                          "(zero_optimization.node_shared_parameters = true): turn one of them off");
}

void MixedPrecisionConfig::validate() const {
  if (bf16 && fp16)
    throw InvalidArgument("bf16.enabled and fp16.enabled are both true: enable one of them (bfloat16 needs no loss "
                          "scaling; float16 has a narrower range and scales the loss)");
  if (reduce_dtype) {
    const DType params = param_dtype(), reduce = *reduce_dtype;
    if (reduce != DType::float32 && reduce != params)
      throw InvalidArgument("mixed_precision.reduce_dtype = " + to_string(reduce) + " with parameters in " +
                            to_string(params) + (enabled() ? "" : " (bf16.enabled and fp16.enabled are false)") +
                            ": gradients are reduced in float32 or in the parameter dtype; set it to float32" +
                            (enabled() ? " or " + to_string(params) : "") + ", or leave it unset");
  }
  const LossScaleConfig& s = fp16_scaling;
  if (!(s.loss_scale >= 0) || std::isinf(s.loss_scale))
    throw InvalidArgument("fp16.loss_scale = " + number_text(s.loss_scale) + " must be a finite number >= 0 (0: dynamic)");
  if (s.initial_scale_power < 0 || s.initial_scale_power > 64)
    throw InvalidArgument("fp16.initial_scale_power = " + std::to_string(s.initial_scale_power) +
                          " must be in [0, 64] (the dynamic scale starts at 2^power)");
  if (s.loss_scale_window < 1)
    throw InvalidArgument("fp16.loss_scale_window = " + std::to_string(s.loss_scale_window) + " must be >= 1");
  if (s.hysteresis < 1)
    throw InvalidArgument("fp16.hysteresis = " + std::to_string(s.hysteresis) + " must be >= 1");
  if (!(s.min_loss_scale > 0) || std::isinf(s.min_loss_scale))
    throw InvalidArgument("fp16.min_loss_scale = " + number_text(s.min_loss_scale) + " must be a finite number > 0");
}

void TrainingConfig::validate() const {
  if (micro_batch_size < 1)
    throw InvalidArgument("train_micro_batch_size_per_gpu = " + std::to_string(micro_batch_size) + " must be >= 1");
  communication.validate("communication.");
  engine.validate();
}

std::vector<std::pair<std::string, std::string>> TrainingConfig::entries() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Key& k : keys()) out.emplace_back(k.name, k.get(*this));
  return out;
}

std::vector<ConfigKeyDoc> config_documentation() {
  const TrainingConfig defaults;
  std::vector<ConfigKeyDoc> out;
  for (const Key& k : keys()) out.push_back({k.name, kind_name(k.kind), k.get(defaults), k.meaning, k.equivalent});
  return out;
}

TrainingConfig load_training_config(const std::string& path, const std::vector<std::string>& overrides) {
  TrainingConfig config;
  if (!path.empty()) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
      throw InvalidArgument("configuration file '" + path + "' is a directory: give the path of a JSON file");
    std::ifstream file(path);
    if (!file) throw InvalidArgument("cannot read configuration file '" + path + "': check the path and permissions");
    std::stringstream text;
    text << file.rdbuf();
    config.apply_json(text.str(), path);
  }
  for (const std::string& o : overrides) config.apply_override(o);
  config.validate();
  return config;
}

namespace {

// Collective: compares a hash of each value across ranks (one all-reduce).
void require_same_entries(const std::vector<std::pair<std::string, std::string>>& entries, const Communicator& comm) {
  std::vector<std::int64_t> hashes(entries.size());
  for (std::size_t i = 0; i < entries.size(); ++i) hashes[i] = static_cast<std::int64_t>(fnv1a(entries[i].second));
  const auto ranges = range_across_ranks(hashes, comm);
  std::string differing;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (!ranges[i].agreed()) differing += "\n  " + entries[i].first + " (this rank: " + entries[i].second + ")";
  if (!differing.empty())
    throw InvalidArgument(rank_and_host() + ": ranks loaded different configurations; these keys differ:" + differing +
                          "\nGive every rank the same file and overrides.");
}

}  // namespace

namespace {

// "key = value" of the keys of `config` that `wanted` selects, in documentation order.
template <class Wanted>
std::vector<std::pair<std::string, std::string>> entries_where(const TrainingConfig& config, Wanted wanted) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Key& k : keys())
    if (wanted(k)) out.emplace_back(k.name, k.get(config));
  return out;
}

bool is_communication_key(const Key& k) { return k.name.rfind("communication.", 0) == 0; }

}  // namespace

std::vector<std::pair<std::string, std::string>> config_entries(const EngineConfig& config) {
  TrainingConfig holder;
  holder.engine = config;
  return entries_where(holder, [](const Key& k) { return k.engine; });
}

std::vector<std::pair<std::string, std::string>> config_entries(const EngineConfig& config,
                                                                const CommunicatorConfig& communication) {
  TrainingConfig holder;
  holder.engine = config;
  holder.communication = communication;
  return entries_where(holder, [](const Key& k) { return k.engine || is_communication_key(k); });
}

void require_same_on_all_ranks(const TrainingConfig& config, Communicator& comm) {
  require_same_entries(config.entries(), comm);
}

void require_same_on_all_ranks(const EngineConfig& config, const Communicator& comm) {
  require_same_entries(config_entries(config), comm);
}

}  // namespace zs
