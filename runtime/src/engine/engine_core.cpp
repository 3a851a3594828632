// EngineCore: building the groups (tied parameters deduplicated), the cross-rank model check,
// initialisation and sharding, and what the facade reads back.
#include "engine_core.hpp"

#include "compute_threads.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/dtype_convert.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/compute_threads.hpp"
#include "zeroshard/runtime/lr_schedule.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace zs::detail {

EngineCore::EngineCore(std::vector<std::vector<nn::Module*>> units, EngineConfig config_in, Communicator& comm_in,
                       std::vector<std::size_t> first_child)
    : config((config_in.validate(), std::move(config_in))),
      policy(ShardingPolicy::from(config, comm_in.size())),
      mixed(config.precision.enabled()),
      half_gradients(is_half(config.precision.gradient_dtype())),
      comm(comm_in),
      dropout_random(Engine::dropout_seed(config.seed, comm_in.rank())),
      gradient_norm(std::numeric_limits<double>::quiet_NaN()),
      first_child_(std::move(first_child)) {
  progress_hook_ = [this] { shard_groups->progress(); };
  checkpoint_writer = std::make_unique<checkpoint::CheckpointWriter>(comm);
  build_groups(std::move(units));
  for (std::size_t unit : config.checkpointed_units) {
    if (unit >= groups.size())
      throw InvalidArgument("activation_checkpointing.units names unit " + std::to_string(unit) + ", but the engine has " +
                            std::to_string(groups.size()) + " units (0.." + std::to_string(groups.size() - 1) + ")");
    groups[unit]->checkpoint_activations = true;
  }
  if (config.activation_checkpointing)
    for (auto& group : groups) group->checkpoint_activations = true;
  require_same_on_all_ranks(config, comm);
  shard_groups = std::make_unique<ShardGroups>(config, comm);
  policy = ShardingPolicy::from(config, shard_groups->size());
  compute_threads = resolve_compute_threads(config.compute_threads, comm);
  // Once per node (its first rank), on stderr: the library has no other channel to the user.
  const char* local_rank = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  if (local_rank ? std::string(local_rank) == "0" : comm.rank() == 0)
    for (const std::string& warning : {oversubscription_warning(compute_threads), nn::gemm_kernel_warning()})
      if (!warning.empty()) std::fprintf(stderr, "%s\n", warning.c_str());
  nn::set_compute_threads(compute_threads);
  run_config = config_entries(config, comm.config());
  require_same_model_on_all_ranks();
  optimizer = std::make_unique<ShardedOptimizer>(policy, config, shard_comm(), pool, comm.size());
  if (config.precision.fp16) loss_scaler.emplace(config.precision.fp16_scaling);
  // Refused here, before any model buffer exists, if model states and transients alone exceed
  // the limit; activations join the plan at the first training forward (engine_step.cpp).
  memory_limit = resolve_memory_limit(config.memory, comm);
  if (memory_limit.bytes > 0)
    check_memory_plan(planned_units(groups), config, optimizer->optimizer().state_per_element(), std::nullopt,
                      memory_limit, comm, /*print=*/false, shard_groups->size());
  initialize_and_shard();
  gathers = std::make_unique<GatherScheduler>(policy, config, shard_comm(), pool, groups);
  reducer = std::make_unique<GradientReducer>(policy, config, shard_comm(), pool, shard_groups->replica());
  if (config.optimizer_in_backward) reducer->on_reduced([this](ParameterGroup& group) { step_in_backward(group); });
  std::vector<ParameterGroup*> declared;
  for (auto& group : groups) declared.push_back(group.get());
  order = std::make_unique<ExecutionOrder>(std::move(declared));
  if (config.profiler.enabled) profiler = std::make_unique<Profiler>(config.profiler, comm);
}

EngineCore::~EngineCore() {
  // A pending async save is joined (by the writer's destructor) but not committed: commits
  // are collective, and a destructor must not block on other ranks.
  // Parameters must not keep pointing into buffers that die with the engine.
  for (auto& group : groups)
    for (nn::Parameter* p : group->params) p->value = p->grad = Tensor();
}

void EngineCore::build_groups(std::vector<std::vector<nn::Module*>> units) {
  std::map<const nn::Parameter*, ParameterGroup*> owner;
  std::map<std::string, const nn::Parameter*> by_name;
  std::map<const nn::Module*, std::size_t> module_unit;
  for (auto& modules : units) {
    auto group = std::make_unique<ParameterGroup>();
    group->index = groups.size();
    group->name = "unit " + std::to_string(group->index);
    for (nn::Module* module : modules) {
      if (module == nullptr) throw InvalidArgument("Engine: unit " + std::to_string(group->index) + " lists a null module");
      const auto [seen, fresh] = module_unit.emplace(module, group->index);
      if (!fresh)
        throw InvalidArgument("Engine: module '" + module->name() + "' is listed in unit " +
                              std::to_string(seen->second) + " and again in unit " + std::to_string(group->index) +
                              ": a module belongs to one unit (share a parameter between modules instead)");
      for (nn::Parameter* p : nn::all_parameters(*module)) {
        const auto found = owner.find(p);
        if (found != owner.end()) {
          // Tied: used here, owned by the first unit that listed it.
          ParameterGroup* first = found->second;
          if (first != group.get() &&
              std::find(group->borrowed_from.begin(), group->borrowed_from.end(), first) == group->borrowed_from.end())
            group->borrowed_from.push_back(first);
          continue;
        }
        const auto [named, unique] = by_name.emplace(p->name, p);
        if (!unique)
          throw InvalidArgument("Engine: two different parameters are named '" + p->name +
                                "': name modules uniquely (checkpoints and full_parameters() address parameters by "
                                "name); to share one weight between modules, pass the same Parameter (tied weights)");
        owner.emplace(p, group.get());
        group->params.push_back(p);
      }
    }
    group->modules = std::move(modules);
    groups.push_back(std::move(group));
  }
}

void EngineCore::require_same_model_on_all_ranks() const {
  // Ranks that built different models would issue mismatched collectives (a hang or a
  // silent wrong answer): refuse on every rank.
  const std::int64_t shape[2] = {parameter_count(), static_cast<std::int64_t>(groups.size())};
  const auto ranges = range_across_ranks(shape, comm);
  if (!ranges[0].agreed() || !ranges[1].agreed())
    throw InvalidArgument(rank_and_host() + ": ranks built different models (this rank: " + std::to_string(shape[0]) +
                          " parameters in " + std::to_string(shape[1]) + " units; across ranks " +
                          std::to_string(ranges[0].low) + ".." + std::to_string(ranges[0].high) +
                          " parameters): build the same model with the same unit split on every rank");
}

void EngineCore::initialize_and_shard() {
  const int n = shard_comm().size(), r = shard_comm().rank();
  // A group's whole parameters stay until the last group borrowing from it is initialised
  // (a borrower's modules read them); then the group keeps only its shard (stage 3).
  std::vector<std::size_t> last_user(groups.size());
  for (auto& group : groups) {
    last_user[group->index] = group->index;
    for (const ParameterGroup* owner : group->borrowed_from)
      last_user[owner->index] = std::max(last_user[owner->index], group->index);
  }
  std::vector<std::int64_t> shared_offset(groups.size(), 0);  // bytes into shared_parameters
  std::int64_t shared_bytes = 0;
  for (auto& group : groups) {
    std::vector<sharding::TensorSpec> specs;
    for (const nn::Parameter* p : group->params) specs.push_back({p->name, p->shape, DType::float32});
    group->layout = sharding::FlatLayout::build(std::move(specs), n, config.alignment);
    for (std::size_t i = 0; i < group->params.size(); ++i) {
      const auto& slot = group->layout.tensors()[i];
      group->full_runs.push_back({slot.offset, slot.numel, group->params[i]->weight_decay});
    }
    for (const sharding::Fragment& f : sharding::fragment_map(group->layout, r))
      group->shard_runs.push_back({f.shard_offset, f.length, group->params[f.tensor]->weight_decay});
    group->shards_parameters = policy.shards_group_parameters(group->parameter_count());
    // Each group page-aligned in the shared memory.
    shared_offset[group->index] = shared_bytes;
    shared_bytes += (group->padded_elems() * 4 + 4095) / 4096 * 4096;
  }
  if (policy.node_shared_parameters) open_shared_parameters(shared_bytes);
  // One random stream over the modules in order: the initial values do not depend on the
  // unit split, the stage or the world size.
  std::mt19937_64 init_random(config.seed);
  for (auto& group : groups) {
    // Held for good only by float32 groups whose whole parameters stay (stages 0-2); the
    // others give them back once their shards or 16-bit copies are made, below.
    const bool whole_kept = !mixed && !shared_parameters && !group->shards_parameters;
    group->params_full = pool.take(whole_kept ? Lifetime::kept : Lifetime::step, MemoryCategory::parameters_full,
                                   group->padded_elems(), 0.0f);
    group->bind();
    for (nn::Module* module : group->modules) nn::initialize_parameters(*module, init_random);
    for (auto& earlier : groups) {
      if (last_user[earlier->index] != group->index) continue;
      if (mixed) {
        make_mixed_precision_states(*earlier);
      } else {
        if (shared_parameters) {
          move_to_shared_parameters(*earlier, shared_offset[earlier->index]);
          continue;
        }
        if (!earlier->shards_parameters) continue;
        const std::int64_t shard = earlier->shard_elems();
        earlier->params_shard = pool.take(Lifetime::kept, MemoryCategory::parameters_shard, shard);
        std::copy_n(earlier->params_full.data() + r * shard, shard, earlier->params_shard.data());
      }
      earlier->params_full.reset();
      earlier->bind();
    }
    const DType gradients = config.precision.gradient_dtype();
    if (config.optimizer_in_backward) {
      // None kept: each group's gradients are taken in backward and freed after its update.
    } else if (policy.shard_gradients)
      group->grads_shard = pool.take(Lifetime::kept, MemoryCategory::gradients_shard, group->shard_elems(), gradients, /*zeroed=*/true);
    else if (half_gradients)
      group->grads16 = pool.take(Lifetime::kept, MemoryCategory::gradients_full, group->padded_elems(), gradients, /*zeroed=*/true);
    else
      group->grads_full = pool.take(Lifetime::kept, MemoryCategory::gradients_full, group->padded_elems(), 0.0f);
    group->state = pool.take(Lifetime::kept, MemoryCategory::optimizer_states, optimizer->state_elements(*group), 0.0f);
    group->bind();
  }
  synchronize_shared_parameters();  // every slice written before anyone computes
}

void EngineCore::open_shared_parameters(std::int64_t bytes) {
  Communicator node = shard_comm().split_shared_node();
  std::int64_t on_one_node = node.size() == shard_comm().size() ? 1 : 0;
  shard_comm().all_reduce_scalars(std::span<std::int64_t>(&on_one_node, 1), ScalarOp::min, "node_shared_parameters");
  if (on_one_node == 0)
    throw InvalidArgument(rank_and_host() + ": zero_optimization.node_shared_parameters = true needs every rank of a "
                          "shard group on one node, but a shard group of " + std::to_string(shard_comm().size()) +
                          " ranks spans nodes (this node holds " + std::to_string(node.size()) +
                          " of them): set zero_optimization.shard_group_size = 0 (shard within each node, replicate "
                          "across nodes) or node_shared_parameters = false");
  shared_parameters = std::make_unique<NodeSharedMemory>(shard_comm(), bytes);
}

void EngineCore::move_to_shared_parameters(ParameterGroup& group, std::int64_t byte_offset) {
  const std::int64_t shard = group.shard_elems(), r = shard_comm().rank();
  auto* whole = reinterpret_cast<float*>(shared_parameters->data() + byte_offset);
  std::copy_n(group.params_full.data() + r * shard, shard, whole + r * shard);
  // The rank's share of what the node holds once: its slice.
  group.params_full = Buffer::external(whole, group.padded_elems(), MemoryCategory::parameters_shard, shard * 4, ledger);
  group.bind();
}

void EngineCore::synchronize_shared_parameters() {
  if (shared_parameters) shard_comm().barrier();
}

void EngineCore::make_mixed_precision_states(ParameterGroup& group) {
  const std::int64_t shard = group.shard_elems(), padded = group.padded_elems();
  const float* whole = group.params_full.data();
  // The master is held like the optimizer states: whole at stage 0, this rank's shard otherwise.
  if (policy.shard_optimizer_states) {
    group.master = pool.take(Lifetime::kept, MemoryCategory::master_parameters, shard);
    std::copy_n(whole + shard_comm().rank() * shard, shard, group.master.data());
  } else {
    group.master = pool.take(Lifetime::kept, MemoryCategory::master_parameters, padded);
    std::copy_n(whole, padded, group.master.data());
  }
  const DType dtype = config.precision.param_dtype();
  if (group.shards_parameters) {
    group.params16_shard = pool.take(Lifetime::kept, MemoryCategory::parameters_shard, shard, dtype, /*zeroed=*/false);
    narrow(whole + shard_comm().rank() * shard, group.params16_shard.raw(), dtype, shard);
  } else {
    group.params16_full = pool.take(Lifetime::kept, MemoryCategory::parameters_full, padded, dtype, /*zeroed=*/false);
    narrow(whole, group.params16_full.raw(), dtype, padded);
  }
}

MemoryPlan EngineCore::plan_memory(const std::optional<Shape>& input_shape) const {
  return zs::plan_memory(planned_units(groups), config, shard_groups->size(), optimizer->optimizer().state_per_element(),
                         input_shape);
}

double EngineCore::learning_rate() const { return zs::learning_rate(config.scheduler, config.optimizer.lr, optimizer_steps); }

std::int64_t EngineCore::parameter_count() const {
  std::int64_t count = 0;
  for (const auto& group : groups) count += group->parameter_count();
  return count;
}

ModelStateBytes EngineCore::model_state_bytes() const {
  ModelStateBytes bytes;
  // Elements times their size (not storage, which rounds 16-bit buffers up to whole floats).
  auto held = [](const Buffer& b) { return b.size() * static_cast<std::int64_t>(size_of(b.dtype())); };
  for (const auto& group : groups) {
    if (mixed) {
      // The float32 compute copies (params_full, grads_full) are transients, not model states.
      bytes.parameters += held(group->params16_shard) + (group->shards_parameters ? 0 : held(group->params16_full));
      bytes.gradients += held(policy.shard_gradients ? group->grads_shard : half_gradients ? group->grads16 : group->grads_full);
      bytes.optimizer_states += held(group->master) + held(group->state);
      continue;
    }
    // Node-shared parameters count as this rank's slice of the node's one copy.
    const std::int64_t whole =
        group->params_full.is_external() ? group->shard_elems() * 4 : held(group->params_full);
    bytes.parameters += held(group->params_shard) + (group->shards_parameters ? 0 : whole);
    bytes.gradients += held(policy.shard_gradients ? group->grads_shard : group->grads_full);
    bytes.optimizer_states += held(group->state);
  }
  return bytes;
}

std::size_t EngineCore::unit_of_child(std::size_t child) const {
  if (first_child_.empty())
    throw InvalidArgument("Engine::unit_of_child: this engine was built from lists of modules, not a Sequential's "
                          "children; its units are the lists, in the order given");
  const std::size_t children = first_child_.back();  // one past the last child
  if (child >= children)
    throw InvalidArgument("Engine::unit_of_child(" + std::to_string(child) + "): the model has " +
                          std::to_string(children) + " children");
  const auto next = std::upper_bound(first_child_.begin(), first_child_.end() - 1, child);
  return static_cast<std::size_t>(next - first_child_.begin()) - 1;
}

std::vector<float> EngineCore::full_parameters() {
  std::vector<float> out;
  if (mixed) {
    // The float32 master weights (what checkpoints hold), not the 16-bit compute values.
    for (auto& group : groups) {
      std::vector<float> full(static_cast<std::size_t>(group->padded_elems()));
      if (policy.shard_optimizer_states) shard_comm().all_gather(group->master.span(), std::span<float>(full)).wait();
      else std::copy_n(group->master.data(), group->padded_elems(), full.begin());
      for (const auto& slot : group->layout.tensors())
        out.insert(out.end(), full.begin() + slot.offset, full.begin() + slot.end());
    }
    return out;
  }
  for (auto& group : groups) {
    gathers->wait(*group);
    for (const auto& slot : group->layout.tensors())
      out.insert(out.end(), group->params_full.data() + slot.offset, group->params_full.data() + slot.end());
    gathers->release(*group);
  }
  return out;
}

std::vector<float> EngineCore::full_optimizer_state(const std::string& name) {
  const auto states = optimizer->optimizer().state_names();
  const auto found = std::find(states.begin(), states.end(), name);
  if (found == states.end())
    throw InvalidArgument("optimizer " + to_string(config.optimizer.kind) + " has no state '" + name + "'");
  const std::size_t k = static_cast<std::size_t>(found - states.begin());
  std::vector<float> out;
  for (auto& group : groups) {
    std::vector<float> full(static_cast<std::size_t>(group->padded_elems()));
    const std::span<const float> own = optimizer->own_state(*group, k);
    shard_comm().all_gather(own, std::span<float>(full)).wait();
    for (const auto& slot : group->layout.tensors())
      out.insert(out.end(), full.begin() + slot.offset, full.begin() + slot.end());
  }
  return out;
}

}  // namespace zs::detail
