#include "allocation_replay.hpp"

#include <algorithm>
#include <cstdio>
#include <deque>
#include <optional>

#include "engine/buffer_pool.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/sharding_policy.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs::detail {

std::string mib_text(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return text;
}

namespace {

constexpr std::int64_t kReplayFloat = 4;

// A buffer of the simulated pool: what a detail::Buffer holds, without storage.
struct SimulatedBuffer {
  MemoryCategory category = MemoryCategory::buffers;
  std::int64_t elements = 0, capacity = 0;
  bool empty() const { return elements == 0; }
};

// detail::BufferPool's bookkeeping over capacities: the same detail::IdleStorage choices, a
// held buffer's bytes beyond its request ledgered as "buffers".
class SimulatedPool {
 public:
  explicit SimulatedPool(MemoryLedger& ledger) : ledger_(ledger), idle_(ledger) {}
  SimulatedBuffer take(Lifetime lifetime, MemoryCategory category, std::int64_t elements) {
    SimulatedBuffer buffer{category, elements, elements};
    if (elements == 0) return buffer;  // no storage, as BufferPool::take
    if (std::optional<std::int64_t> capacity = idle_.reuse(elements, lifetime, category)) buffer.capacity = *capacity;
    else ++allocations_;
    ledger_.allocate(category, elements * kReplayFloat);
    return buffer;
  }
  void reset(SimulatedBuffer& buffer) {
    if (buffer.capacity == 0) return;
    idle_.add(buffer.capacity, buffer.elements, buffer.category);
    buffer = {};
  }
  std::int64_t allocations() const { return allocations_; }

 private:
  MemoryLedger& ledger_;
  detail::IdleStorage<std::int64_t> idle_;
  std::int64_t allocations_ = 0;
};

struct SimulatedGroup {
  std::size_t index = 0;
  std::int64_t parameters = 0, padded = 0, shard = 0;
  bool shards_parameters = false;
  std::vector<SimulatedGroup*> needs;  // itself, then the groups it borrows from
  SimulatedBuffer params_full, params_shard, grads_full, grads_shard, state;
  SimulatedBuffer master, params16_full, params16_shard, grads16;  // mixed precision
  bool kept_for_backward = false, reduced_this_step = false, reduction_pending = false;
};

// The engine's schedule over sizes (EngineCore, GatherScheduler, GradientReducer).
class AllocationReplay {
 public:
  AllocationReplay(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                   int optimizer_states)
      : config_(config),
        policy_(ShardingPolicy::from(config, world_size)),
        world_(world_size),
        states_(optimizer_states),
        mixed_(config.precision.enabled()),
        half_gradients_(is_half(config.precision.gradient_dtype())),
        in_backward_(config.optimizer_in_backward),
        gradient_bytes_(static_cast<std::int64_t>(size_of(config.precision.gradient_dtype()))),
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
      if (!g.shards_parameters && !policy_.node_shared_parameters)
        persistent_bytes_ += (mixed_ ? floats_of(g.padded, 2) : g.padded) * kReplayFloat;
  }

  MemoryLedger& ledger() { return ledger_; }
  std::int64_t allocations() const { return pool_.allocations(); }

  // EngineCore::initialize_and_shard.
  void initialize() {
    std::vector<std::size_t> last_user(groups_.size());
    for (SimulatedGroup& g : groups_) {
      last_user[g.index] = g.index;
      for (SimulatedGroup* owner : g.needs) last_user[owner->index] = std::max(last_user[owner->index], g.index);
    }
    for (SimulatedGroup& g : groups_) {
      const bool whole_kept = !mixed_ && !policy_.node_shared_parameters && !g.shards_parameters;  // EngineCore
      g.params_full =
          pool_.take(whole_kept ? Lifetime::kept : Lifetime::step, MemoryCategory::parameters_full, g.padded);
      for (SimulatedGroup& earlier : groups_) {
        if (last_user[earlier.index] != g.index) continue;
        if (mixed_) {  // EngineCore::make_mixed_precision_states
          earlier.master = pool_.take(Lifetime::kept, MemoryCategory::master_parameters,
                                      policy_.shard_optimizer_states ? earlier.shard : earlier.padded);
          if (earlier.shards_parameters)
            earlier.params16_shard =
                pool_.take(Lifetime::kept, MemoryCategory::parameters_shard, floats_of(earlier.shard, 2));
          else
            earlier.params16_full =
                pool_.take(Lifetime::kept, MemoryCategory::parameters_full, floats_of(earlier.padded, 2));
        } else if (policy_.node_shared_parameters) {
          // EngineCore::move_to_shared_parameters: the slice of the node's copy, outside the pool.
          ledger_.allocate(MemoryCategory::parameters_shard, earlier.shard * kReplayFloat);
        } else {
          if (!earlier.shards_parameters) continue;
          earlier.params_shard = pool_.take(Lifetime::kept, MemoryCategory::parameters_shard, earlier.shard);
        }
        pool_.reset(earlier.params_full);
      }
      if (in_backward_) {
        // optimizer.in_backward keeps no gradients between steps.
      } else if (policy_.shard_gradients)
        g.grads_shard =
            pool_.take(Lifetime::kept, MemoryCategory::gradients_shard, floats_of(g.shard, gradient_bytes_));
      else if (half_gradients_)
        g.grads16 = pool_.take(Lifetime::kept, MemoryCategory::gradients_full, floats_of(g.padded, gradient_bytes_));
      else
        g.grads_full = pool_.take(Lifetime::kept, MemoryCategory::gradients_full, g.padded);
      const std::int64_t state = (policy_.shard_optimizer_states ? g.shard : g.padded) * states_;
      g.state = pool_.take(Lifetime::kept, MemoryCategory::optimizer_states, state);
    }
  }

  // EngineCore::forward (plain, in unit order) and run_unit.
  void forward(bool training) {
    release_kept();
    std::vector<SimulatedGroup*> order;
    for (SimulatedGroup& g : groups_) order.push_back(&g);
    for (std::size_t i = 0; i < order.size(); ++i) {
      gather_with_prefetch(order, i);
      // Stage 3: the last unit stays for backward (the engine's run_unit, in the recorded
      // order), as GatherScheduler::keep_for_backward marks it.
      if (training && policy_.shard_parameters && (!policy_.reshard_after_forward || i + 1 == order.size())) {
        for (SimulatedGroup* g : order[i]->needs)
          if (transient(*g)) g->kept_for_backward = true;
      } else {
        release(*order[i]);
      }
    }
    drop_prefetched();
  }

  // EngineCore::backward.
  void backward(bool last_micro_step) {
    const bool reduce_here =
        policy_.reduce_every_micro_step || ((config_.overlap_comm || in_backward_) && last_micro_step);
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
        if (policy_.shard_gradients || half_gradients_ || in_backward_)
          used->grads_full = pool_.take(Lifetime::step, MemoryCategory::gradients_full, used->padded);
      }
      for (SimulatedGroup* used : g.needs) {
        if (--uses_left[used->index] != 0) continue;
        fold(*used);
        if (reduce_here) reduce(*used);
      }
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
    if (mixed_ && !in_backward_) {
      // ShardedOptimizer::step_mixed: one float32 buffer for the largest group's gradients.
      std::int64_t largest = 0;
      for (const SimulatedGroup& g : groups_)
        largest = std::max(largest, policy_.shard_optimizer_states ? g.shard : g.padded);
      SimulatedBuffer unscaled = pool_.take(Lifetime::step, MemoryCategory::gradients_shard, largest);
      pool_.reset(unscaled);
    }
  }

 private:
  std::int64_t live_bytes() const {
    return ledger_.current(MemoryCategory::parameters_full) - persistent_bytes_;
  }
  // GatherScheduler::issue_one / issue / gather_with_prefetch / release / release_kept /
  // drop_prefetched (max_live_bytes is checked by the engine at run time, not here).
  // Storage floats of `elements` of `bytes` each (detail::BufferPool::take).
  static std::int64_t floats_of(std::int64_t elements, std::int64_t bytes) { return (elements * bytes + 3) / 4; }
  std::int64_t gathered_bytes(const SimulatedGroup& g) const {
    return g.padded * (mixed_ ? 4 + (g.shards_parameters ? 2 : 0) : 4);
  }
  bool transient(const SimulatedGroup& g) const { return g.shards_parameters || mixed_; }
  void issue_one(SimulatedGroup& g, const std::vector<SimulatedGroup*>& in_use) {
    if (!g.shards_parameters || !g.params_full.empty() || !g.params16_full.empty()) return;
    make_room(gathered_bytes(g), in_use);
    if (mixed_) g.params16_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, floats_of(g.padded, 2));
    else g.params_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, g.padded);
  }
  // GatherScheduler::materialize (from wait).
  void materialize(SimulatedGroup& g) {
    if (!mixed_ || !g.params_full.empty()) return;
    g.params_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, g.padded);
    if (g.shards_parameters) pool_.reset(g.params16_full);
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
    issue_with_prefetch(order, position);
    for (SimulatedGroup* g : order[position]->needs) materialize(*g);  // GatherScheduler::wait
  }
  void issue_with_prefetch(const std::vector<SimulatedGroup*>& order, std::size_t position) {
    for (SimulatedGroup* g : order[position]->needs) issue_one(*g, order[position]->needs);
    if (!config_.overlap_comm || !policy_.shard_parameters) return;
    std::int64_t budget = config_.prefetch_bytes;
    for (std::size_t k = position + 1; k < order.size(); ++k) {
      std::int64_t bytes = 0;
      for (const SimulatedGroup* g : order[k]->needs)
        if (g->shards_parameters) bytes += gathered_bytes(*g);
      if (bytes == 0) continue;
      if (bytes > budget || (config_.max_live_bytes > 0 && live_bytes() + bytes > config_.max_live_bytes)) break;
      budget -= bytes;
      for (SimulatedGroup* g : order[k]->needs) issue_one(*g, order[k]->needs);
    }
  }
  void release(SimulatedGroup& group) {
    for (SimulatedGroup* g : group.needs) {
      g->kept_for_backward = false;
      if (transient(*g)) pool_.reset(g->params_full);
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
      if (g.shards_parameters && !g.kept_for_backward) {
        pool_.reset(g.params_full);
        pool_.reset(g.params16_full);
      }
  }

  // GradientReducer: reduce / issue / complete_beyond / pack / issue_bucket / finish.
  std::size_t in_flight_limit() const {
    if (!config_.overlap_comm || world_ == 1) return 0;
    return static_cast<std::size_t>(config_.reductions_in_flight);
  }
  void reduce(SimulatedGroup& g) {
    g.reduced_this_step = true;
    if (g.padded == 0) return;  // GradientReducer::reduce: nothing to reduce
    if (config_.reduce_bucket_size > 0) {
      pack(g);
      return;
    }
    if (in_backward_ && policy_.shard_gradients)  // GradientReducer::issue: the shard for this update only
      g.grads_shard = pool_.take(Lifetime::step, MemoryCategory::gradients_shard, floats_of(g.shard, gradient_bytes_));
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
      if (policy_.shard_gradients) pool_.reset(reduced(g));
      if (in_backward_) step_in_backward(g);
    }
  }
  // EngineCore::step_in_backward (ShardedOptimizer::step_group): mixed precision widens the
  // group's gradients into a buffer of its own size; then its gradients go.
  void step_in_backward(SimulatedGroup& g) {
    if (mixed_) {
      SimulatedBuffer unscaled = pool_.take(Lifetime::step, MemoryCategory::gradients_shard,
                                            policy_.shard_optimizer_states ? g.shard : g.padded);
      pool_.reset(unscaled);
    }
    pool_.reset(g.grads_full);
    pool_.reset(g.grads16);
    pool_.reset(g.grads_shard);
  }
  SimulatedBuffer& reduced(SimulatedGroup& g) const { return half_gradients_ ? g.grads16 : g.grads_full; }
  // GradientReducer::fold.
  void fold(SimulatedGroup& g) {
    if (!half_gradients_ || g.grads_full.empty()) return;
    // Stages 2-3, and stages 0-1 under optimizer.in_backward (no accumulator kept): a new buffer.
    if (policy_.shard_gradients || g.grads16.empty())
      g.grads16 = pool_.take(Lifetime::step, MemoryCategory::gradients_full, floats_of(g.padded, gradient_bytes_));
    pool_.reset(g.grads_full);
  }
  struct Bucket {
    SimulatedBuffer data;
    std::int64_t chunk = 0, fill = 0;
  };
  void pack(SimulatedGroup& g) {
    const std::int64_t chunk = std::max<std::int64_t>(1, config_.reduce_bucket_size / world_);
    for (std::int64_t done = 0; done < g.shard;) {
      if (!open_bucket_)
        open_bucket_ = Bucket{
            pool_.take(Lifetime::step, MemoryCategory::communication, floats_of(world_ * chunk, gradient_bytes_)),
            chunk, 0};
      const std::int64_t length = std::min(g.shard - done, open_bucket_->chunk - open_bucket_->fill);
      open_bucket_->fill += length;
      done += length;
      if (open_bucket_->fill == open_bucket_->chunk) issue_bucket();
    }
    if (policy_.shard_gradients) pool_.reset(reduced(g));
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
  bool mixed_, half_gradients_, in_backward_;
  std::int64_t gradient_bytes_;
  MemoryLedger ledger_;
  SimulatedPool pool_;
  std::vector<SimulatedGroup> groups_;
  std::int64_t persistent_bytes_ = 0;
  std::deque<SimulatedGroup*> groups_in_flight_;
  std::optional<Bucket> open_bucket_;
  std::deque<Bucket> buckets_in_flight_;
};

}  // namespace

MemoryLedger replay_allocations(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                                int optimizer_states, std::int64_t activation_bytes) {
  AllocationReplay replay(units, config, world_size, optimizer_states);
  replay.initialize();
  // Optimizer steps until one allocates nothing: the first creates the pool's buffers, a later
  // one may replace some by larger ones (Lifetime::step), then the pool serves every take. Each
  // replacement is by strictly larger storage, so this ends; the bound only guards the proof.
  constexpr int kMostSteps = 64;
  for (int boundary = 0;; ++boundary) {
    const std::int64_t allocated_before = replay.allocations();
    for (int micro = 0; micro < config.gradient_accumulation_steps; ++micro) {
      replay.forward(/*training=*/true);
      // EngineCore::record_activations after the first forward; the same bytes after every
      // later forward and backward of this shape.
      if (boundary == 0 && micro == 0) replay.ledger().allocate(MemoryCategory::activations, activation_bytes);
      const bool last = micro + 1 == config.gradient_accumulation_steps;
      replay.backward(last);
      if (last) replay.step();
    }
    if (boundary > 0 && replay.allocations() == allocated_before) break;
    if (boundary == kMostSteps)
      throw Error("plan_memory: the buffer pool still allocated in optimizer step " + std::to_string(kMostSteps) +
                  " of the replay (it settles after a few steps): a bug in ZeroShard, please report it with the "
                  "model's unit sizes and the configuration");
  }
  return replay.ledger();
}

}  // namespace zs::detail
