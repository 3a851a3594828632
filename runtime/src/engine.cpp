#include "zeroshard/runtime/engine.hpp"

#include <algorithm>
#include <span>

#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/sharding/fragment_map.hpp"
#include "engine_unit.hpp"
#include "zeroshard/checkpoint/checkpoint_writer.hpp"

namespace zs {


namespace {


std::int64_t parameter_count_of(nn::Module& module) {
  std::int64_t count = 0;
  for (nn::Parameter* p : nn::all_parameters(module)) count += p->numel();
  return count;
}

// [first, end) ranges of children forming the units.
std::vector<std::pair<std::size_t, std::size_t>> plan_units(nn::Sequential& model, const EngineConfig& config) {
  const std::size_t children = model.size();
  std::vector<std::pair<std::size_t, std::size_t>> ranges;
  if (!config.unit_starts.empty()) {
    if (config.unit_starts.front() != 0)
      throw InvalidArgument("EngineConfig.unit_starts must begin with 0 (the first unit starts at the first child)");
    for (std::size_t i = 0; i < config.unit_starts.size(); ++i) {
      const std::size_t begin = config.unit_starts[i];
      const std::size_t end = i + 1 < config.unit_starts.size() ? config.unit_starts[i + 1] : children;
      if (begin >= end || end > children)
        throw InvalidArgument("EngineConfig.unit_starts must increase strictly and stay below the model's " +
                              std::to_string(children) + " children");
      ranges.emplace_back(begin, end);
    }
    return ranges;
  }
  std::size_t begin = 0;
  std::int64_t held = 0;
  for (std::size_t i = 0; i < children; ++i) {
    const std::int64_t count = parameter_count_of(model.at(i));
    held += count;
    const bool close = config.auto_wrap_min_params == 0 ? count > 0 : held >= config.auto_wrap_min_params;
    if (close) {
      ranges.emplace_back(begin, i + 1);
      begin = i + 1;
      held = 0;
    }
  }
  // Trailing children without enough parameters join the last unit (or form the only one).
  if (begin < children) {
    if (ranges.empty()) ranges.emplace_back(begin, children);
    else ranges.back().second = children;
  }
  if (ranges.empty()) ranges.emplace_back(0, 0);
  return ranges;
}

// Collective. Ranks that built different models or hold different engine settings would
// issue mismatched collectives (a hang or a silent wrong answer): refuse on every rank.
void require_same_model_and_config(nn::Sequential& model, const EngineConfig& config,
                                   const std::vector<std::pair<std::size_t, std::size_t>>& units, Communicator& comm) {
  TrainingConfig as_training;
  as_training.engine = config;
  require_same_on_all_ranks(as_training, comm);
  std::int64_t shape[2] = {parameter_count_of(model), static_cast<std::int64_t>(units.size())};
  std::int64_t low[2] = {shape[0], shape[1]}, high[2] = {shape[0], shape[1]};
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, low, 2, MPI_INT64_T, MPI_MIN, comm.handle()));
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, high, 2, MPI_INT64_T, MPI_MAX, comm.handle()));
  if (low[0] != high[0] || low[1] != high[1])
    throw InvalidArgument(rank_and_host() + ": ranks built different models (this rank: " + std::to_string(shape[0]) +
                          " parameters in " + std::to_string(shape[1]) + " units; across ranks " +
                          std::to_string(low[0]) + ".." + std::to_string(high[0]) +
                          " parameters): build the same model with the same unit split on every rank");
}

}  // namespace

void EngineConfig::validate() const {
  if (stage < 0 || stage > 3)
    throw InvalidArgument("zero_optimization.stage = " + std::to_string(stage) + " is not a ZeRO stage: use 0, 1, 2 or 3");
  if (gradient_accumulation_steps < 1)
    throw InvalidArgument("gradient_accumulation_steps = " + std::to_string(gradient_accumulation_steps) +
                          " must be >= 1");
  if (auto_wrap_min_params < 0)
    throw InvalidArgument("zero_optimization.auto_wrap_min_params = " + std::to_string(auto_wrap_min_params) +
                          " must be >= 0");
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
  optimizer.validate();
  scheduler.validate();
  checkpoint.validate();
}

Engine::Engine(nn::Sequential& model, EngineConfig config, Communicator& comm)
    : model_(model),
      config_(std::move(config)),
      comm_(comm),
      optimizer_((config_.validate(), config_.optimizer)),
      dropout_random_(dropout_seed(config_.seed, comm.rank())) {
  const int n = comm_.size(), r = comm_.rank();
  // One random stream over the children in order: the initial values do not depend on the
  // unit split, the stage or the world size.
  progress_hook_ = [this] { comm_.progress(); };
  checkpoint_writer_ = std::make_unique<checkpoint::CheckpointWriter>(comm_);
  const auto unit_ranges = plan_units(model_, config_);
  require_same_model_and_config(model_, config_, unit_ranges, comm_);
  std::mt19937_64 init_random(config_.seed);
  for (const auto& [first, end] : unit_ranges) {
    auto unit = std::make_unique<Unit>();
    unit->index = units_.size();
    unit->first = first;
    unit->end = end;
    std::vector<sharding::TensorSpec> specs;
    for (std::size_t c = first; c < end; ++c)
      for (nn::Parameter* p : nn::all_parameters(model_.at(c))) {
        unit->params.push_back(p);
        specs.push_back({p->name, p->shape, DType::float32});
      }
    unit->layout = sharding::FlatLayout::build(std::move(specs), n, config_.alignment);
    for (std::size_t i = 0; i < unit->params.size(); ++i) {
      const auto& slot = unit->layout.tensors()[i];
      unit->full_runs.push_back({slot.offset, slot.numel, unit->params[i]->weight_decay});
    }
    for (const sharding::Fragment& f : sharding::fragment_map(unit->layout, r))
      unit->shard_runs.push_back({f.shard_offset, f.length, unit->params[f.tensor]->weight_decay});

    const std::int64_t padded = unit->layout.padded_numel(), shard = unit->shard_elems();
    unit->params_full.assign(padded, 0.0f);
    track(MemoryCategory::parameters_full, unit->held_params_full, padded * 4);
    bind(*unit);
    for (std::size_t c = first; c < end; ++c) nn::initialize_parameters(model_.at(c), init_random);
    std::int64_t unit_params = 0;
    for (const nn::Parameter* p : unit->params) unit_params += p->numel();
    unit->persistent = config_.stage == 3 && unit_params < config_.param_persistence_threshold;
    if (unit->persistent) persistent_bytes_ += padded * 4;
    if (shards_parameters(*unit)) {
      unit->params_shard.assign(unit->params_full.begin() + r * shard, unit->params_full.begin() + (r + 1) * shard);
      track(MemoryCategory::parameters_shard, unit->held_params_shard, shard * 4);
      release_parameters(*unit);
    }
    if (config_.stage <= 1) {
      unit->grads_full.assign(padded, 0.0f);
      track(MemoryCategory::gradients_full, unit->held_grads_full, padded * 4);
    } else {
      unit->grads_shard.assign(shard, 0.0f);
      track(MemoryCategory::gradients_shard, unit->held_grads_shard, shard * 4);
    }
    unit->state.assign((config_.stage == 0 ? padded : shard) * optimizer_.state_per_element(), 0.0f);
    track(MemoryCategory::optimizer_states, unit->held_state, static_cast<std::int64_t>(unit->state.size()) * 4);
    bind(*unit);
    units_.push_back(std::move(unit));
  }
  // Until a forward records otherwise, units are expected in the Sequential's order.
  unit_order_ = std::make_unique<UnitOrder>();
  for (auto& unit : units_) unit_order_->expected[0].push_back(unit.get());
  unit_order_->expected[1] = unit_order_->expected[0];
}

std::uint64_t Engine::dropout_seed(std::uint64_t seed, int rank) {
  return seed + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(rank + 1);
}

Engine::~Engine() {
  // A pending async save is joined (by the writer's destructor) but not committed: commits
  // are collective, and a destructor must not block on other ranks.
  // Parameters must not keep pointing into buffers that die with the engine.
  for (auto& unit : units_)
    for (nn::Parameter* p : unit->params) p->value = p->grad = Tensor();
}

void Engine::track(MemoryCategory category, std::int64_t& held, std::int64_t bytes) {
  if (bytes > held) ledger_.allocate(category, bytes - held);
  else ledger_.release(category, held - bytes);
  held = bytes;
}

void Engine::bind(Unit& unit) {
  for (std::size_t i = 0; i < unit.params.size(); ++i) {
    const auto& slot = unit.layout.tensors()[i];
    nn::Parameter& p = *unit.params[i];
    p.value = unit.params_full.empty() ? Tensor() : Tensor::view(unit.params_full.data() + slot.offset, p.shape);
    p.grad = unit.grads_full.empty() ? Tensor() : Tensor::view(unit.grads_full.data() + slot.offset, p.shape);
  }
}

std::vector<float> Engine::take_buffer(std::int64_t elements) {
  // Best fit among idle buffers; a new one only when none is large enough.
  auto best = idle_buffers_.end();
  for (auto it = idle_buffers_.begin(); it != idle_buffers_.end(); ++it)
    if (static_cast<std::int64_t>(it->capacity()) >= elements &&
        (best == idle_buffers_.end() || it->capacity() < best->capacity()))
      best = it;
  std::vector<float> buffer;
  if (best != idle_buffers_.end()) {
    buffer = std::move(*best);
    idle_buffers_.erase(best);
    track(MemoryCategory::buffers, idle_bytes_, idle_bytes_ - static_cast<std::int64_t>(buffer.capacity()) * 4);
  }
  buffer.resize(elements);
  return buffer;
}

void Engine::give_back(std::vector<float>& buffer) {
  if (buffer.capacity() == 0) return;
  track(MemoryCategory::buffers, idle_bytes_, idle_bytes_ + static_cast<std::int64_t>(buffer.capacity()) * 4);
  idle_buffers_.push_back(std::move(buffer));
  buffer = std::vector<float>();
}

bool Engine::shards_parameters(const Unit& unit) const { return config_.stage == 3 && !unit.persistent; }

void Engine::make_room(std::int64_t bytes, const Unit& for_unit) {
  if (config_.max_live_bytes == 0) return;
  auto live = [&] { return ledger_.current(MemoryCategory::parameters_full) - persistent_bytes_; };
  // Parameters kept from forward for backward go first (they can be gathered again).
  for (auto& unit : units_)
    if (live() + bytes > config_.max_live_bytes && unit->kept_for_backward && unit.get() != &for_unit) {
      unit->kept_for_backward = false;
      release_parameters(*unit);
    }
  if (live() + bytes > config_.max_live_bytes)
    throw InvalidArgument("zero_optimization.max_live_bytes = " + std::to_string(config_.max_live_bytes) +
                          " cannot hold a unit of " + std::to_string(bytes) + " bytes (" +
                          std::to_string(live()) + " already live): raise the cap or split the model into smaller "
                          "units (zero_optimization.auto_wrap_min_params)");
}

void Engine::issue_gather(Unit& unit) {
  if (!shards_parameters(unit) || !unit.params_full.empty()) return;
  make_room(unit.layout.padded_numel() * 4, unit);
  unit.params_full = take_buffer(unit.layout.padded_numel());  // the gather overwrites it all
  track(MemoryCategory::parameters_full, unit.held_params_full, unit.layout.padded_numel() * 4);
  unit.gather = comm_.all_gather(std::span<float>(unit.params_shard), std::span<float>(unit.params_full));
}

void Engine::wait_gather(Unit& unit) {
  issue_gather(unit);
  unit.gather.wait();
  bind(unit);
}

void Engine::prefetch(const std::vector<Unit*>& order, std::size_t position) {
  if (!config_.overlap_comm || config_.stage != 3) return;
  // Sizes alone decide what is prefetched, never timing: every rank issues the same gathers
  // in the same order.
  std::int64_t budget = config_.prefetch_bytes;
  for (std::size_t k = position + 1; k < order.size(); ++k) {
    if (!shards_parameters(*order[k])) continue;
    const std::int64_t bytes = order[k]->layout.padded_numel() * 4;
    const std::int64_t live = ledger_.current(MemoryCategory::parameters_full) - persistent_bytes_;
    if (bytes > budget || (config_.max_live_bytes > 0 && live + bytes > config_.max_live_bytes)) break;
    budget -= bytes;
    issue_gather(*order[k]);
  }
}

void Engine::gather_with_prefetch(const std::vector<Unit*>& order, std::size_t position) {
  issue_gather(*order[position]);  // first: the running unit's gather precedes the prefetches
  prefetch(order, position);
  wait_gather(*order[position]);
}

void Engine::release_parameters(Unit& unit) {
  if (!shards_parameters(unit)) return;
  give_back(unit.params_full);
  track(MemoryCategory::parameters_full, unit.held_params_full, 0);
  bind(unit);
}

void Engine::poll() {
  if (config_.overlap_comm) comm_.progress();
}

void Engine::issue_reduction(Unit& unit) {
  std::span<float> full(unit.grads_full);
  const std::int64_t shard = unit.shard_elems();
  // In place: this rank's reduced chunk lands in its own slice of the full buffer.
  if (config_.stage == 0) unit.reduction = comm_.all_reduce(full);
  else unit.reduction = comm_.reduce_scatter(full, full.subspan(comm_.rank() * shard, shard));
  unit.reduction_pending = true;
  unit.reduced_this_step = true;
  reductions_in_flight_.push_back(&unit);
}

void Engine::finish_reduction(Unit& unit) {
  if (!unit.reduction_pending) return;
  unit.reduction.wait();
  unit.reduction_pending = false;
  if (config_.stage < 2) return;
  // Stages 2-3: add this micro-step's reduced chunk to the shard accumulator and free the
  // unit's full gradients.
  const std::int64_t shard = unit.shard_elems();
  const float* own = unit.grads_full.data() + comm_.rank() * shard;
  for (std::int64_t i = 0; i < shard; ++i) unit.grads_shard[i] += own[i];
  give_back(unit.grads_full);
  track(MemoryCategory::gradients_full, unit.held_grads_full, 0);
  bind(unit);
}

void Engine::finish_reductions_beyond(std::size_t keep) {
  while (reductions_in_flight_.size() > keep) {
    finish_reduction(*reductions_in_flight_.front());
    reductions_in_flight_.pop_front();
  }
}

void Engine::backward(const Tensor& grad_output) {
  if (!forward_was_training_)
    throw InvalidArgument("Engine::backward: the last forward was evaluate() or failed; call forward() before backward()");
  const bool last_micro_step = (micro_steps_ + 1) % config_.gradient_accumulation_steps == 0;
  // Stages 2-3 reduce every micro-step; with overlap, stages 0-1 reduce during the backward of
  // the last micro-step instead of at step().
  const bool reduce_here = config_.stage >= 2 || (config_.overlap_comm && last_micro_step);
  // The forward's runs in reverse. A unit that ran more than once is met first at its last
  // run (its modules hold that run's activations: its gradient buffer starts there) and
  // last at its first run (its gradients are complete: they are reduced there).
  const std::vector<Unit*>& ran = unit_order_->ran;
  const std::vector<Unit*> order(ran.rbegin(), ran.rend());
  std::vector<int> runs_left(units_.size(), 0);
  for (const Unit* unit : order) ++runs_left[unit->index];
  std::vector<bool> met(units_.size(), false);
  const Tensor* g = &grad_output;
  for (std::size_t i = 0; i < order.size(); ++i) {
    Unit& unit = *order[i];
    const bool first_meeting = !met[unit.index];
    met[unit.index] = true;
    const bool last_meeting = --runs_left[unit.index] == 0;
    gather_with_prefetch(order, i);
    if (config_.stage >= 2 && first_meeting) {
      unit.grads_full = take_buffer(unit.layout.padded_numel());
      std::fill(unit.grads_full.begin(), unit.grads_full.end(), 0.0f);
      track(MemoryCategory::gradients_full, unit.held_grads_full, unit.layout.padded_numel() * 4);
      bind(unit);
    }
    if (!first_meeting) recompute_run(order.size() - 1 - i);
    for (std::size_t c = unit.end; c-- > unit.first;) {
      g = &model_.at(c).backward(*g);
      poll();
    }
    if (reduce_here && last_meeting && config_.reduce_bucket_size > 0) {
      pack_gradients(unit);
    } else if (reduce_here && last_meeting) {
      issue_reduction(unit);
      // Completion points are fixed (never "whenever it finished"): memory is the same
      // every step and on every rank.
      finish_reductions_beyond(config_.overlap_comm ? static_cast<std::size_t>(config_.reductions_in_flight) : 0);
    }
    unit.kept_for_backward = false;
    release_parameters(unit);
  }
  issue_bucket();  // the last, partly filled one
  finish_buckets_beyond(0);
  finish_reductions_beyond(0);
}

bool Engine::step() {
  // An async save commits at the first step() after every rank finished writing it.
  if (checkpoint_writer_->pending()) checkpoint_writer_->poll();
  ++micro_steps_;
  if (micro_steps_ % config_.gradient_accumulation_steps != 0) return false;
  const int r = comm_.rank();
  if (config_.stage < 2) {
    // Units not reduced during the last backward (all of them without overlap; those the
    // last forward skipped with it): every collective is issued first, in unit order, then
    // waited on.
    for (auto& unit : units_) {
      if (unit->reduced_this_step) continue;
      if (config_.reduce_bucket_size > 0) pack_gradients(*unit);
      else issue_reduction(*unit);
    }
    issue_bucket();
    finish_buckets_beyond(0);
    finish_reductions_beyond(0);
  }
  for (auto& unit : units_) unit->reduced_this_step = false;
  apply_optimizer();
  if (config_.stage >= 1) {
    std::vector<Work> gathers;
    for (auto& unit : units_) {
      if (shards_parameters(*unit)) continue;  // stage 3 keeps sharded units sharded
      std::span<float> full(unit->params_full);
      gathers.push_back(comm_.all_gather(full.subspan(r * unit->shard_elems(), unit->shard_elems()), full));
    }
    for (Work& w : gathers) w.wait();
  }
  for (auto& unit : units_) {
    std::fill(unit->grads_full.begin(), unit->grads_full.end(), 0.0f);
    std::fill(unit->grads_shard.begin(), unit->grads_shard.end(), 0.0f);
  }
  ++optimizer_steps_;
  return true;
}

void Engine::apply_optimizer() {
  const float scale = 1.0f / static_cast<float>(comm_.size() * config_.gradient_accumulation_steps);
  const double lr = learning_rate();
  const int r = comm_.rank();
  for (auto& unit : units_) {
    const std::int64_t shard = unit->shard_elems();
    std::span<float> params, grads;
    switch (config_.stage) {
      case 0: params = unit->params_full; grads = unit->grads_full; break;
      case 1: params = std::span<float>(unit->params_full).subspan(r * shard, shard);
              grads = std::span<float>(unit->grads_full).subspan(r * shard, shard); break;
      default:
        params = shards_parameters(*unit) ? std::span<float>(unit->params_shard)
                                          : std::span<float>(unit->params_full).subspan(r * shard, shard);
        grads = unit->grads_shard;
        break;
    }
    for (float& g : grads) g *= scale;
    optimizer_.update(params, grads, unit->state, config_.stage == 0 ? unit->full_runs : unit->shard_runs, lr,
                      optimizer_steps_ + 1);
  }
}

double Engine::learning_rate() const {
  return zs::learning_rate(config_.scheduler, config_.optimizer.lr, optimizer_steps_);
}

std::size_t Engine::unit_count() const { return units_.size(); }

std::int64_t Engine::parameter_count() const {
  std::int64_t count = 0;
  for (const auto& unit : units_)
    for (const nn::Parameter* p : unit->params) count += p->numel();
  return count;
}

ModelStateBytes Engine::model_state_bytes() const {
  ModelStateBytes bytes;
  for (const auto& unit : units_) {
    bytes.parameters += unit->held_params_shard + (shards_parameters(*unit) ? 0 : unit->held_params_full);
    bytes.gradients += (config_.stage <= 1 ? unit->held_grads_full : unit->held_grads_shard);
    bytes.optimizer_states += unit->held_state;
  }
  return bytes;
}

std::vector<float> Engine::full_parameters() {
  std::vector<float> out;
  for (auto& unit : units_) {
    wait_gather(*unit);
    for (std::size_t i = 0; i < unit->params.size(); ++i) {
      const auto& slot = unit->layout.tensors()[i];
      out.insert(out.end(), unit->params_full.begin() + slot.offset, unit->params_full.begin() + slot.end());
    }
    release_parameters(*unit);
  }
  return out;
}

}  // namespace zs
