// The memory planner's advice when a plan exceeds the limit (memory_plan.hpp): each candidate
// setting re-planned, never guessed.
#include <algorithm>
#include <initializer_list>
#include <string>

#include "zeroshard/runtime/memory_plan.hpp"
#include "allocation_replay.hpp"

namespace zs {

std::vector<std::string> settings_that_fit(const std::vector<PlannedUnit>& units, const EngineConfig& config,
                                           int world_size, int optimizer_states, const std::optional<Shape>& input_shape,
                                           std::int64_t limit_bytes) {
  std::vector<std::string> fits;
  auto consider = [&](const std::string& setting, const EngineConfig& changed, int world) {
    const std::int64_t peak = plan_memory(units, changed, world, optimizer_states, input_shape).peak;
    if (peak <= limit_bytes) fits.push_back(setting + " (predicted peak " + detail::mib_text(peak) + ")");
    return peak <= limit_bytes;
  };
  for (int stage = config.stage + 1; stage <= 3; ++stage) {
    EngineConfig changed = config;
    changed.stage = stage;
    consider("zero_optimization.stage=" + std::to_string(stage), changed, world_size);
  }
  if (config.stage >= 1 && !config.node_shared_parameters && !config.precision.enabled()) {
    // A rank's parameters become its slice of one copy per shard group (which must be on one node).
    EngineConfig changed = config;
    changed.node_shared_parameters = true;
    consider("zero_optimization.node_shared_parameters=true", changed, world_size);
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
    // Stage 3 at this world size, when it fits, was proposed above: no more ranks needed.
    if (!prefix.empty() && plan_memory(units, *changed, world_size, optimizer_states, input_shape).peak <= limit_bytes)
      break;
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
  std::string text = "the predicted peak memory of " + detail::mib_text(plan.peak) + " per rank exceeds " + limit_source + " = " +
                     std::to_string(limit_bytes) + " bytes (" + detail::mib_text(limit_bytes) + ")" +
                     (plan.activations ? " (refused before this forward caches its activations)."
                                       : " (nothing allocated yet).") +
                     " Largest:";
  const auto largest = plan.largest();
  for (std::size_t i = 0; i < std::min<std::size_t>(3, largest.size()); ++i)
    text += (i ? ", " : " ") + largest[i].first + " " + detail::mib_text(largest[i].second);
  if (!plan.activations) text += " (activations: " + plan.activations_note + ")";
  if (fixes.empty()) {
    text += ". No single setting fits: shrink the model or the micro-batch, or raise the limit.";
  } else {
    text += ". Settings that fit:";
    for (const std::string& fix : fixes) text += "\n  " + fix;
  }
  return text;
}

}  // namespace zs
