// The memory planner (memory_plan.hpp): the engine's allocation schedule replayed over sizes.
// Every take and reset below stands for one in runtime/src/engine/ (named in the comments);
// tests/mpi/test_memory_plan.cpp holds the two together by comparing the prediction with the
// ledger of real engines at every stage and world size 1-4.
#include "zeroshard/runtime/memory_plan.hpp"

#include <algorithm>
#include <deque>
#include <initializer_list>
#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs {

namespace {

constexpr std::int64_t kFloat = 4;

// A buffer of the simulated pool: what a detail::Buffer holds, without storage.
struct SimulatedBuffer {
  MemoryCategory category = MemoryCategory::buffers;
  std::int64_t elements = 0, capacity = 0;
  bool empty() const { return elements == 0; }
};

// detail::BufferPool's bookkeeping: best-fit reuse of idle storage, idle storage ledgered as
// "buffers", nothing ever handed back.
class SimulatedPool {
 public:
  explicit SimulatedPool(MemoryLedger& ledger) : ledger_(ledger) {}
  SimulatedBuffer take(MemoryCategory category, std::int64_t elements) {
    auto best = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
      if (*it >= elements && (best == idle_.end() || *it < *best)) best = it;
    SimulatedBuffer buffer{category, elements, elements};
    if (best != idle_.end()) {
      buffer.capacity = *best;
      ledger_.release(MemoryCategory::buffers, *best * kFloat);
      idle_.erase(best);
    }
    ledger_.allocate(category, elements * kFloat);
    return buffer;
  }
  void reset(SimulatedBuffer& buffer) {
    if (buffer.capacity == 0) return;
    ledger_.release(buffer.category, buffer.elements * kFloat);
    ledger_.allocate(MemoryCategory::buffers, buffer.capacity * kFloat);
    idle_.push_back(buffer.capacity);
    buffer = {};
  }

 private:
  MemoryLedger& ledger_;
  std::vector<std::int64_t> idle_;
};

struct SimulatedGroup {
  std::size_t index = 0;
  std::int64_t parameters = 0, padded = 0, shard = 0;
  bool shards_parameters = false;
  std::vector<SimulatedGroup*> needs;  // itself, then the groups it borrows from
  SimulatedBuffer params_full, params_shard, grads_full, grads_shard, state;
  bool kept_for_backward = false, reduced_this_step = false, reduction_pending = false;
};

// The engine's schedule over sizes (EngineCore, GatherScheduler, GradientReducer).
class Replay {
 public:
  Replay(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size, int optimizer_states)
      : config_(config), policy_(ShardingPolicy::from(config)), world_(world_size), states_(optimizer_states),
        pool_(ledger_) {
    groups_.resize(units.size());
    for (std::size_t k = 0; k < units.size(); ++k) {
      SimulatedGroup& g = groups_[k];
      g.index = k;
      std::vector<sharding::TensorSpec> specs;
      for (std::size_t i = 0; i < units[k].parameter_shapes.size(); ++i) {
        specs.push_back({"p" + std::to_string(i), units[k].parameter_shapes[i], DType::float32});
        g.parameters += numel_of(units[k].parameter_shapes[i]);
      }
      const sharding::FlatLayout layout = sharding::FlatLayout::build(std::move(specs), world_, config.alignment);
      g.padded = layout.padded_numel();
      g.shard = layout.shard_numel();
      g.shards_parameters = policy_.shards_group_parameters(g.parameters);
      g.needs.push_back(&g);
      for (std::size_t owner : units[k].borrows) {
        if (owner >= k)
          throw InvalidArgument("plan_memory: unit " + std::to_string(k) + " borrows from unit " +
                                std::to_string(owner) + ", which is not an earlier unit");
        if (std::find(g.needs.begin(), g.needs.end(), &groups_[owner]) == g.needs.end())
          g.needs.push_back(&groups_[owner]);
      }
    }
    for (const SimulatedGroup& g : groups_)
      if (!g.shards_parameters) persistent_bytes_ += g.padded * kFloat;
  }

  MemoryLedger& ledger() { return ledger_; }

  // EngineCore::initialize_and_shard.
  void initialize() {
    std::vector<std::size_t> last_user(groups_.size());
    for (SimulatedGroup& g : groups_) {
      last_user[g.index] = g.index;
      for (SimulatedGroup* owner : g.needs) last_user[owner->index] = std::max(last_user[owner->index], g.index);
    }
    for (SimulatedGroup& g : groups_) {
      g.params_full = pool_.take(MemoryCategory::parameters_full, g.padded);
      for (SimulatedGroup& earlier : groups_) {
        if (last_user[earlier.index] != g.index || !earlier.shards_parameters) continue;
        earlier.params_shard = pool_.take(MemoryCategory::parameters_shard, earlier.shard);
        pool_.reset(earlier.params_full);
      }
      if (policy_.shard_gradients) g.grads_shard = pool_.take(MemoryCategory::gradients_shard, g.shard);
      else g.grads_full = pool_.take(MemoryCategory::gradients_full, g.padded);
      const std::int64_t state = (policy_.shard_optimizer_states ? g.shard : g.padded) * states_;
      g.state = pool_.take(MemoryCategory::optimizer_states, state);
    }
  }

  // EngineCore::forward (plain, in unit order) and run_unit.
  void forward(bool training) {
    release_kept();
    std::vector<SimulatedGroup*> order;
    for (SimulatedGroup& g : groups_) order.push_back(&g);
    for (std::size_t i = 0; i < order.size(); ++i) {
      gather_with_prefetch(order, i);
      if (training && !policy_.reshard_after_forward) {
        for (SimulatedGroup* g : order[i]->needs)
          if (g->shards_parameters) g->kept_for_backward = true;
      } else {
        release(*order[i]);
      }
    }
    drop_prefetched();
  }

  // EngineCore::backward.
  void backward(bool last_micro_step) {
    const bool reduce_here = policy_.reduce_every_micro_step || (config_.overlap_comm && last_micro_step);
    std::vector<SimulatedGroup*> reversed;
    for (auto it = groups_.rbegin(); it != groups_.rend(); ++it) reversed.push_back(&*it);
    std::vector<int> uses_left(groups_.size(), 0);
    for (SimulatedGroup* g : reversed)
      for (SimulatedGroup* used : g->needs) ++uses_left[used->index];
    std::vector<bool> started(groups_.size(), false);
    for (std::size_t i = 0; i < reversed.size(); ++i) {
      SimulatedGroup& g = *reversed[i];
      gather_with_prefetch(reversed, i);
      for (SimulatedGroup* used : g.needs) {
        if (started[used->index]) continue;
        started[used->index] = true;
        if (policy_.shard_gradients) used->grads_full = pool_.take(MemoryCategory::gradients_full, used->padded);
      }
      for (SimulatedGroup* used : g.needs)
        if (--uses_left[used->index] == 0 && reduce_here) reduce(*used);
      release(g);
    }
    finish();
  }

  // EngineCore::step at a boundary.
  void step() {
    if (!policy_.reduce_every_micro_step) {
      for (SimulatedGroup& g : groups_)
        if (!g.reduced_this_step) reduce(g);
      finish();
    }
    for (SimulatedGroup& g : groups_) g.reduced_this_step = false;
  }

 private:
  std::int64_t live_bytes() const {
    return ledger_.current(MemoryCategory::parameters_full) - persistent_bytes_;
  }
  // GatherScheduler::issue_one / issue / gather_with_prefetch / release / release_kept /
  // drop_prefetched (max_live_bytes is checked by the engine at run time, not here).
  void issue_one(SimulatedGroup& g, const std::vector<SimulatedGroup*>& in_use) {
    if (!g.shards_parameters || !g.params_full.empty()) return;
    make_room(g.padded * kFloat, in_use);
    g.params_full = pool_.take(MemoryCategory::parameters_full, g.padded);
  }
  void make_room(std::int64_t bytes, const std::vector<SimulatedGroup*>& in_use) {
    if (config_.max_live_bytes == 0) return;
    for (SimulatedGroup& g : groups_)
      if (live_bytes() + bytes > config_.max_live_bytes && g.kept_for_backward &&
          std::find(in_use.begin(), in_use.end(), &g) == in_use.end()) {
        g.kept_for_backward = false;
        release(g);
      }
  }
  void gather_with_prefetch(const std::vector<SimulatedGroup*>& order, std::size_t position) {
    for (SimulatedGroup* g : order[position]->needs) issue_one(*g, order[position]->needs);
    if (!config_.overlap_comm || !policy_.shard_parameters) return;
    std::int64_t budget = config_.prefetch_bytes;
    for (std::size_t k = position + 1; k < order.size(); ++k) {
      std::int64_t bytes = 0;
      for (const SimulatedGroup* g : order[k]->needs)
        if (g->shards_parameters) bytes += g->padded * kFloat;
      if (bytes == 0) continue;
      if (bytes > budget || (config_.max_live_bytes > 0 && live_bytes() + bytes > config_.max_live_bytes)) break;
      budget -= bytes;
      for (SimulatedGroup* g : order[k]->needs) issue_one(*g, order[k]->needs);
    }
  }
  void release(SimulatedGroup& group) {
    for (SimulatedGroup* g : group.needs) {
      g->kept_for_backward = false;
      if (g->shards_parameters) pool_.reset(g->params_full);
    }
  }
  void release_kept() {
    for (SimulatedGroup& g : groups_)
      if (g.kept_for_backward) {
        g.kept_for_backward = false;
        release(g);
      }
  }
  void drop_prefetched() {
    for (SimulatedGroup& g : groups_)
      if (g.shards_parameters && !g.kept_for_backward) pool_.reset(g.params_full);
  }

  // GradientReducer: reduce / issue / complete_beyond / pack / issue_bucket / finish.
  std::size_t in_flight_limit() const {
    return config_.overlap_comm ? static_cast<std::size_t>(config_.reductions_in_flight) : 0;
  }
  void reduce(SimulatedGroup& g) {
    g.reduced_this_step = true;
    if (config_.reduce_bucket_size > 0) {
      pack(g);
      return;
    }
    g.reduction_pending = true;
    groups_in_flight_.push_back(&g);
    complete_groups_beyond(in_flight_limit());
  }
  void complete_groups_beyond(std::size_t keep) {
    while (groups_in_flight_.size() > keep) {
      SimulatedGroup& g = *groups_in_flight_.front();
      groups_in_flight_.pop_front();
      if (!g.reduction_pending) continue;
      g.reduction_pending = false;
      if (policy_.shard_gradients) pool_.reset(g.grads_full);
    }
  }
  struct Bucket {
    SimulatedBuffer data;
    std::int64_t chunk = 0, fill = 0;
  };
  void pack(SimulatedGroup& g) {
    const std::int64_t chunk = std::max<std::int64_t>(1, config_.reduce_bucket_size / world_);
    for (std::int64_t done = 0; done < g.shard;) {
      if (!open_bucket_) open_bucket_ = Bucket{pool_.take(MemoryCategory::communication, world_ * chunk), chunk, 0};
      const std::int64_t length = std::min(g.shard - done, open_bucket_->chunk - open_bucket_->fill);
      open_bucket_->fill += length;
      done += length;
      if (open_bucket_->fill == open_bucket_->chunk) issue_bucket();
    }
    if (policy_.shard_gradients) pool_.reset(g.grads_full);
  }
  void issue_bucket() {
    if (!open_bucket_ || open_bucket_->fill == 0) return;
    buckets_in_flight_.push_back(*open_bucket_);
    open_bucket_.reset();
    complete_buckets_beyond(in_flight_limit());
  }
  void complete_buckets_beyond(std::size_t keep) {
    while (buckets_in_flight_.size() > keep) {
      pool_.reset(buckets_in_flight_.front().data);
      buckets_in_flight_.pop_front();
    }
  }
  void finish() {
    issue_bucket();
    complete_buckets_beyond(0);
    complete_groups_beyond(0);
  }

  const EngineConfig& config_;
  ShardingPolicy policy_;
  int world_;
  int states_;
  MemoryLedger ledger_;
  SimulatedPool pool_;
  std::vector<SimulatedGroup> groups_;
  std::int64_t persistent_bytes_ = 0;
  std::deque<SimulatedGroup*> groups_in_flight_;
  std::optional<Bucket> open_bucket_;
  std::deque<Bucket> buckets_in_flight_;
};

// Activations the modules hold after a training forward of `input` (EngineCore::
// record_activations): a checkpointed unit keeps its last module's output only.
std::optional<std::int64_t> plan_activations(const std::vector<PlannedUnit>& units, const EngineConfig& config,
                                             const Shape& input, std::string& note) {
  Shape x = input;
  std::int64_t bytes = 0;
  for (std::size_t k = 0; k < units.size(); ++k) {
    const bool checkpointed =
        config.activation_checkpointing ||
        std::find(config.checkpointed_units.begin(), config.checkpointed_units.end(), k) != config.checkpointed_units.end();
    for (std::size_t m = 0; m < units[k].modules.size(); ++m) {
      const nn::Module* module = units[k].modules[m];
      const std::optional<nn::ActivationPlan> plan = module->plan_activations(x, /*training=*/true);
      if (!plan) {
        note = "module '" + module->name() + "' (unit " + std::to_string(k) +
               ") does not predict its activations (nn::Module::plan_activations) for input " + to_string(x);
        return std::nullopt;
      }
      x = plan->output;
      if (!checkpointed) bytes += plan->bytes;
      else if (m + 1 == units[k].modules.size()) bytes += plan->kept;  // ParameterGroup::release_activations
    }
  }
  return bytes;
}

std::string mib(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                       int optimizer_states, const std::optional<Shape>& input_shape) {
  if (world_size < 1) throw InvalidArgument("plan_memory: world size " + std::to_string(world_size) + " (must be >= 1)");
  MemoryPlan plan;
  plan.world_size = world_size;
  plan.stage = config.stage;
  const ShardingPolicy policy = ShardingPolicy::from(config);
  const StatePrecision precision = StatePrecision::float32(optimizer_states);
  for (const PlannedUnit& unit : units) {
    std::vector<sharding::TensorSpec> specs;
    std::int64_t parameters = 0;
    for (const Shape& shape : unit.parameter_shapes) {
      specs.push_back({"p" + std::to_string(specs.size()), shape, DType::float32});
      parameters += numel_of(shape);
    }
    const std::int64_t padded = sharding::FlatLayout::build(std::move(specs), world_size, config.alignment).padded_numel();
    plan.parameters += parameters;
    plan.model_states += model_state_bytes_per_rank(padded, world_size, ShardedCategories::of(policy, parameters), precision);
  }
  if (input_shape) plan.activations = plan_activations(units, config, *input_shape, plan.activations_note);
  else plan.activations_note = "no input shape yet (planned at the first training forward)";

  Replay replay(units, config, world_size, optimizer_states);
  MemoryLedger& ledger = replay.ledger();
  replay.initialize();
  // Two optimizer steps: the first creates the pool's buffers, the second shows they are reused.
  for (int boundary = 0; boundary < 2; ++boundary)
    for (int micro = 0; micro < config.gradient_accumulation_steps; ++micro) {
      replay.forward(/*training=*/true);
      // EngineCore::record_activations after the first forward; the same bytes after every
      // later forward and backward of this shape.
      if (boundary == 0 && micro == 0 && plan.activations) ledger.allocate(MemoryCategory::activations, *plan.activations);
      replay.backward(micro + 1 == config.gradient_accumulation_steps);
      if (micro + 1 == config.gradient_accumulation_steps) replay.step();
    }
  plan.peak = ledger.high_water_total();
  for (std::size_t i = 0; i < kMemoryCategories; ++i) plan.category_peaks[i] = ledger.high_water(static_cast<MemoryCategory>(i));
  // The pool never shrinks and activations stay once recorded, so the ledger's total is at its
  // peak at the end of the replay: its categories now are those at the peak.
  for (std::size_t i = 0; i < kMemoryCategories; ++i) plan.at_peak[i] = ledger.current(static_cast<MemoryCategory>(i));
  return plan;
}

std::vector<std::pair<std::string, std::int64_t>> MemoryPlan::largest() const {
  std::vector<std::pair<std::string, std::int64_t>> out;
  for (std::size_t i = 0; i < kMemoryCategories; ++i)
    if (at_peak[i] > 0) out.emplace_back(to_string(static_cast<MemoryCategory>(i)), at_peak[i]);
  std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

std::string MemoryPlan::table() const {
  std::string text = "memory plan per rank (ZeRO stage " + std::to_string(stage) + ", " + std::to_string(world_size) +
                     " ranks, " + std::to_string(parameters) + " parameters):\n";
  char line[160];
  for (std::size_t i = 0; i < kMemoryCategories; ++i) {
    if (at_peak[i] == 0 && category_peaks[i] == 0) continue;
    std::snprintf(line, sizeof line, "  %-20s %12s  %5.1f%%  (own peak %s)\n",
                  to_string(static_cast<MemoryCategory>(i)).c_str(), mib(at_peak[i]).c_str(),
                  peak > 0 ? 100.0 * static_cast<double>(at_peak[i]) / static_cast<double>(peak) : 0.0,
                  mib(category_peaks[i]).c_str());
    text += line;
  }
  if (!activations) text += "  activations          not predicted: " + activations_note + "\n";
  std::snprintf(line, sizeof line, "  %-20s %12s  (model states %s = params %s + grads %s + optimizer %s)\n",
                "predicted peak", mib(peak).c_str(), mib(model_states.total()).c_str(),
                mib(model_states.parameters).c_str(), mib(model_states.gradients).c_str(),
                mib(model_states.optimizer_states).c_str());
  return text + line;
}

std::vector<std::string> settings_that_fit(const std::vector<PlannedUnit>& units, const EngineConfig& config,
                                           int world_size, int optimizer_states, const std::optional<Shape>& input_shape,
                                           std::int64_t limit_bytes) {
  std::vector<std::string> fits;
  auto consider = [&](const std::string& setting, const EngineConfig& changed, int world) {
    const std::int64_t peak = plan_memory(units, changed, world, optimizer_states, input_shape).peak;
    if (peak <= limit_bytes) fits.push_back(setting + " (predicted peak " + mib(peak) + ")");
    return peak <= limit_bytes;
  };
  for (int stage = config.stage + 1; stage <= 3; ++stage) {
    EngineConfig changed = config;
    changed.stage = stage;
    consider("zero_optimization.stage=" + std::to_string(stage), changed, world_size);
  }
  if (config.stage == 3 && config.overlap_comm && config.prefetch_bytes > 0) {
    EngineConfig changed = config;
    changed.prefetch_bytes = 0;
    consider("zero_optimization.prefetch_bytes=0", changed, world_size);
  }
  if (config.stage >= 2) {
    // A bucket per reduce-scatter instead of whole units in flight: the largest bucket that fits.
    for (std::int64_t bucket : {std::int64_t{1} << 24, std::int64_t{1} << 22, std::int64_t{1} << 20, std::int64_t{1} << 18}) {
      if (config.reduce_bucket_size != 0 && bucket >= config.reduce_bucket_size) continue;
      EngineConfig changed = config;
      changed.reduce_bucket_size = bucket;
      changed.reductions_in_flight = 1;
      if (consider("zero_optimization.reduce_bucket_size=" + std::to_string(bucket) +
                       " zero_optimization.reductions_in_flight=1",
                   changed, world_size))
        break;
    }
  }
  if (!config.activation_checkpointing && input_shape) {
    EngineConfig changed = config;
    changed.activation_checkpointing = true;
    consider("activation_checkpointing.units=all", changed, world_size);
  }
  // More ranks: the smallest world size (up to 64x) that fits at this stage, else at stage 3
  // (more ranks shrink only what a stage shards).
  EngineConfig fully_sharded = config;
  fully_sharded.stage = 3;
  for (const EngineConfig* changed : std::initializer_list<const EngineConfig*>{&config, &fully_sharded}) {
    const std::string prefix = changed->stage == config.stage ? "" : "zero_optimization.stage=3 and ";
    bool found = false;
    for (int world = world_size * 2; world <= world_size * 64 && !found; world *= 2) {
      // The smallest power-of-two multiple that fits; then the smallest count below it.
      if (plan_memory(units, *changed, world, optimizer_states, input_shape).peak > limit_bytes) continue;
      int low = world / 2 + 1;
      while (low < world && plan_memory(units, *changed, low, optimizer_states, input_shape).peak > limit_bytes) ++low;
      found = consider(prefix + "a world size of " + std::to_string(low) + " ranks", *changed, low);
    }
    if (found || config.stage == 3) break;
  }
  return fits;
}

std::string memory_limit_message(const MemoryPlan& plan, std::int64_t limit_bytes, const std::string& limit_source,
                                 const std::vector<std::string>& fixes) {
  std::string text = "the predicted peak memory of " + mib(plan.peak) + " per rank exceeds " + limit_source + " = " +
                     mib(limit_bytes) + " (nothing allocated yet). Largest:";
  const auto largest = plan.largest();
  for (std::size_t i = 0; i < std::min<std::size_t>(3, largest.size()); ++i)
    text += (i ? ", " : " ") + largest[i].first + " " + mib(largest[i].second);
  if (!plan.activations) text += " (activations not predicted yet: " + plan.activations_note + ")";
  if (fixes.empty()) {
    text += ". No single setting fits: shrink the model or the micro-batch, or raise the limit.";
  } else {
    text += ". Settings that fit:";
    for (const std::string& fix : fixes) text += "\n  " + fix;
  }
  return text + "\n" + plan.table();
}

}  // namespace zs
