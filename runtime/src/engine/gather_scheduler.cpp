#include "gather_scheduler.hpp"
#include "parallel_conversion.hpp"

#include <algorithm>
#include <string>

#include "zeroshard/dtype_convert.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/timeline.hpp"

namespace zs::detail {

namespace {

bool contains(const std::vector<ParameterGroup*>& groups, const ParameterGroup* group) {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

}  // namespace

std::int64_t GatherScheduler::gathered_bytes(const ParameterGroup& group) const {
  // Mixed precision: the float32 compute copy, and while it is widened the 16-bit gather.
  if (mixed_) return group.padded_elems() * (4 + (group.shards_parameters ? 2 : 0));
  return group.padded_elems() * 4;
}

GatherScheduler::GatherScheduler(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm,
                                 BufferPool& pool, std::vector<std::unique_ptr<ParameterGroup>>& groups)
    : policy_(policy), config_(config), comm_(group_comm), pool_(pool), groups_(groups),
      mixed_(config.precision.enabled()), dtype_(config.precision.param_dtype()) {
  // Whole parameters held for good: float32 ones, or under mixed precision the 16-bit ones
  // (their storage, as the ledger counts it).
  // (Node-shared parameters are ledgered as this rank's slice, under parameters_shard.)
  for (const auto& group : groups_)
    if (!group->shards_parameters && !group->params_full.is_external())
      persistent_bytes_ += mixed_ ? (group->padded_elems() * 2 + 3) / 4 * 4 : gathered_bytes(*group);
}

bool GatherScheduler::transient(const ParameterGroup& group) const { return group.shards_parameters || mixed_; }

void GatherScheduler::materialize(ParameterGroup& group) {
  if (!mixed_ || !group.params_full.empty()) return;
  group.params_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, group.padded_elems());
  const void* narrow_values = group.params16_full.raw();
  float* wide = group.params_full.data();
  detail::for_each_chunk(group.padded_elems(), [&](std::int64_t first, std::int64_t count) {
    widen(detail::element_at(narrow_values, dtype_, first), dtype_, wide + first, count);
  });
  if (group.shards_parameters) group.params16_full.reset();  // gathered for this copy only
}

std::int64_t GatherScheduler::live_bytes() const {
  return pool_.ledger().current(MemoryCategory::parameters_full) - persistent_bytes_;
}

void GatherScheduler::make_room(std::int64_t bytes, const std::vector<ParameterGroup*>& in_use) {
  if (config_.max_live_bytes == 0) return;
  // Parameters kept from forward for backward go first (they can be gathered again).
  for (auto& group : groups_)
    if (live_bytes() + bytes > config_.max_live_bytes && group->kept_for_backward && !contains(in_use, group.get())) {
      group->kept_for_backward = false;
      release(*group);
    }
  if (live_bytes() + bytes > config_.max_live_bytes)
    throw InvalidArgument("zero_optimization.max_live_bytes = " + std::to_string(config_.max_live_bytes) +
                          " cannot hold a unit of " + std::to_string(bytes) + " bytes (" +
                          std::to_string(live_bytes()) + " already live): raise the cap or split the model into "
                          "smaller units (zero_optimization.auto_wrap_min_params)");
}

void GatherScheduler::issue_one(ParameterGroup& group, const std::vector<ParameterGroup*>& in_use) {
  if (!group.shards_parameters || !group.params_full.empty() || !group.params16_full.empty()) return;
  make_room(gathered_bytes(group), in_use);
  // The gather overwrites every element: no fill. Mixed precision gathers the 16-bit shards.
  if (mixed_) {
    group.params16_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, group.padded_elems(), dtype_, /*zeroed=*/false);
    group.gather = comm_.all_gather(group.params16_shard.host(), group.params16_full.host(), labelled(group.name));
    return;
  }
  group.params_full = pool_.take(Lifetime::step, MemoryCategory::parameters_full, group.padded_elems());
  group.gather = comm_.all_gather(group.params_shard.span(), group.params_full.span(), labelled(group.name));
}

void GatherScheduler::issue(ParameterGroup& group) {
  const std::vector<ParameterGroup*> needs = group.needs();
  for (ParameterGroup* g : needs) issue_one(*g, needs);
}

void GatherScheduler::wait(ParameterGroup& group) {
  issue(group);
  for (ParameterGroup* g : group.needs()) {
    g->gather.wait();
    materialize(*g);
    g->bind();
  }
}

void GatherScheduler::gather_with_prefetch(const std::vector<ParameterGroup*>& order, std::size_t position) {
  issue(*order[position]);  // first: the running group's gathers precede the prefetches
  if (config_.overlap_comm && policy_.shard_parameters) {
    std::int64_t budget = config_.prefetch_bytes;
    for (std::size_t k = position + 1; k < order.size(); ++k) {
      // A group already gathered still spends its bytes of the budget: the budget bounds how
      // far ahead gathered parameters reach, not only what is issued now.
      const std::vector<ParameterGroup*> needs = order[k]->needs();
      std::int64_t bytes = 0;
      for (const ParameterGroup* g : needs)
        if (g->shards_parameters) bytes += gathered_bytes(*g);
      if (bytes == 0) continue;
      if (bytes > budget || (config_.max_live_bytes > 0 && live_bytes() + bytes > config_.max_live_bytes)) break;
      budget -= bytes;
      for (ParameterGroup* g : needs) issue_one(*g, needs);
    }
  }
  wait(*order[position]);
}

void GatherScheduler::release(ParameterGroup& group) {
  for (ParameterGroup* g : group.needs()) {
    g->kept_for_backward = false;
    if (!transient(*g) || g->params_full.empty()) continue;
    g->params_full.reset();
    g->bind();
  }
}

void GatherScheduler::keep_for_backward(ParameterGroup& group) {
  // Everything release() would free is marked, so that release_kept() (the next forward,
  // before it gathers) frees it; what is not transient stays anyway.
  for (ParameterGroup* g : group.needs())
    if (transient(*g)) g->kept_for_backward = true;
}

void GatherScheduler::release_kept() {
  for (auto& group : groups_)
    if (group->kept_for_backward) {
      group->kept_for_backward = false;
      release(*group);
    }
}

void GatherScheduler::drop_prefetched(ParameterGroup* except) {
  const std::vector<ParameterGroup*> spared = except ? except->needs() : std::vector<ParameterGroup*>{};
  for (auto& group : groups_)
    if (!contains(spared, group.get()) && group->shards_parameters &&
        (!group->params_full.empty() || !group->params16_full.empty()) && !group->kept_for_backward) {
      group->gather.wait();
      group->params_full.reset();
      group->params16_full.reset();
      group->bind();
    }
}

void GatherScheduler::gather_whole_parameters() {
  const int r = comm_.rank();
  std::vector<Work> gathers;
  bool node_shared = false;
  for (auto& group : groups_) {
    if (group->shards_parameters) continue;
    // Node-shared: every rank updated its slice of the one copy in place; nothing to move.
    if (group->params_full.is_external()) {
      node_shared = true;
      continue;
    }
    Buffer& full = mixed_ ? group->params16_full : group->params_full;
    const std::int64_t shard = group->shard_elems();
    gathers.push_back(comm_.all_gather(full.host(r * shard, shard), full.host(), labelled(group->name)));
  }
  timeline::Span span("gather updated parameters");
  for (Work& w : gathers) w.wait();
  if (node_shared) comm_.barrier();  // every slice written before anyone reads the next forward
}

}  // namespace zs::detail
