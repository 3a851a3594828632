// The memory planner (memory_plan.hpp): model states by the formula, activations by the
// modules' plans, and the peak from the engine's allocation schedule replayed over sizes
// (allocation_replay.hpp).
#include "zeroshard/runtime/memory_plan.hpp"

#include <cstdio>

#include <algorithm>
#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/sharding/flat_layout.hpp"
#include "allocation_replay.hpp"

namespace zs {

namespace {

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

}  // namespace

MemoryPlan plan_memory(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                       int optimizer_states, const std::optional<Shape>& input_shape) {
  if (world_size < 1) throw InvalidArgument("plan_memory: world size " + std::to_string(world_size) + " (must be >= 1)");
  MemoryPlan plan;
  plan.world_size = world_size;
  plan.stage = config.stage;
  plan.param_dtype = config.precision.param_dtype();
  const ShardingPolicy policy = ShardingPolicy::from(config, world_size);
  const StatePrecision precision = StatePrecision::of(config, optimizer_states);
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
  else plan.activations_note = "not known before the first training forward shows the batch shape";

  const MemoryLedger ledger =
      detail::replay_allocations(units, config, world_size, optimizer_states, plan.activations.value_or(0));
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
  std::string text = "memory plan per rank (ZeRO stage " + std::to_string(stage) + ", sharded over " +
                     std::to_string(world_size) + (world_size == 1 ? " rank, " : " ranks, ") +
                     std::to_string(parameters) + " parameters in " + to_string(param_dtype) + "):\n";
  char line[160];
  for (std::size_t i = 0; i < kMemoryCategories; ++i) {
    if (at_peak[i] == 0 && category_peaks[i] == 0) continue;
    std::snprintf(line, sizeof line, "  %-20s %12s  %5.1f%%  (own peak %s)\n",
                  to_string(static_cast<MemoryCategory>(i)).c_str(), detail::mib_text(at_peak[i]).c_str(),
                  peak > 0 ? 100.0 * static_cast<double>(at_peak[i]) / static_cast<double>(peak) : 0.0,
                  detail::mib_text(category_peaks[i]).c_str());
    text += line;
  }
  if (!activations) text += "  activations          not predicted: " + activations_note + "\n";
  std::snprintf(line, sizeof line, "  %-20s %12s  (model states %s = params %s + grads %s + optimizer %s)\n",
                "predicted peak", detail::mib_text(peak).c_str(), detail::mib_text(model_states.total()).c_str(),
                detail::mib_text(model_states.parameters).c_str(), detail::mib_text(model_states.gradients).c_str(),
                detail::mib_text(model_states.optimizer_states).c_str());
  return text + line;
}

}  // namespace zs
