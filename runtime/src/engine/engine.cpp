// Engine: the public facade. It builds the units of a Sequential, checks the public calls'
// preconditions, and hands everything else to EngineCore and StateDict.
#include "zeroshard/runtime/engine.hpp"

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "engine_core.hpp"
#include "state_dict.hpp"

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

std::unique_ptr<detail::EngineCore> core_over(nn::Sequential& model, EngineConfig config, Communicator& comm) {
  config.validate();
  std::vector<std::vector<nn::Module*>> units;
  std::vector<std::size_t> first_child;
  for (const auto& [first, end] : plan_units(model, config)) {
    units.emplace_back();
    for (std::size_t c = first; c < end; ++c) units.back().push_back(&model.at(c));
    first_child.push_back(first);
  }
  first_child.push_back(model.size());
  return std::make_unique<detail::EngineCore>(std::move(units), std::move(config), comm, std::move(first_child));
}

}  // namespace

const Tensor& UnitRunner::run(std::size_t unit, const Tensor& input) { return core_.run_unit(unit, input); }

Engine::Engine(nn::Sequential& model, EngineConfig config, Communicator& comm)
    : core_(core_over(model, std::move(config), comm)) {}

Engine::Engine(nn::Sequential& model, const TrainingConfig& config, Communicator& comm)
    : core_(core_over(model, config.engine, comm)) {
  core_->run_config = config.entries();
}

Engine::Engine(std::vector<std::vector<nn::Module*>> units, EngineConfig config, Communicator& comm)
    : core_(std::make_unique<detail::EngineCore>(std::move(units), std::move(config), comm,
                                                 std::vector<std::size_t>{})) {}

Engine::Engine(std::vector<std::vector<nn::Module*>> units, const TrainingConfig& config, Communicator& comm)
    : Engine(std::move(units), config.engine, comm) {
  core_->run_config = config.entries();
}

Engine::~Engine() = default;

std::uint64_t Engine::dropout_seed(std::uint64_t seed, int rank) {
  return seed + 0x9E3779B97F4A7C15ull * static_cast<std::uint64_t>(rank + 1);
}

const Tensor& Engine::forward(const Tensor& input) { return core_->forward(input, true, nullptr); }
const Tensor& Engine::evaluate(const Tensor& input) { return core_->forward(input, false, nullptr); }
const Tensor& Engine::forward(const Tensor& input, const ForwardProgram& program) {
  return core_->forward(input, true, &program);
}
const Tensor& Engine::evaluate(const Tensor& input, const ForwardProgram& program) {
  return core_->forward(input, false, &program);
}
void Engine::backward(const Tensor& grad_output) { core_->backward(grad_output); }
bool Engine::step() { return core_->step(); }

double Engine::gradient_norm() const { return core_->gradient_norm; }
bool Engine::last_step_skipped() const { return core_->last_step_skipped; }
std::int64_t Engine::skipped_steps() const { return core_->skipped_steps; }

double Engine::loss_scale() const { return core_->loss_scaler ? core_->loss_scaler->scale() : 1.0; }
int Engine::stage() const { return core_->policy.stage; }
int Engine::shard_group_size() const { return core_->shard_groups->size(); }
int Engine::shard_replicas() const { return core_->shard_groups->replicas(); }
Engine::CollectiveBytes Engine::collective_bytes_sent() const {
  return {core_->shard_groups->shard_bytes_sent(), core_->shard_groups->replica_bytes_sent()};
}
const EngineConfig& Engine::config() const { return core_->config; }
const ShardingPolicy& Engine::policy() const { return core_->policy; }
std::int64_t Engine::optimizer_steps() const { return core_->optimizer_steps; }
std::int64_t Engine::micro_steps() const { return core_->micro_steps; }
double Engine::learning_rate() const { return core_->learning_rate(); }
std::size_t Engine::unit_count() const { return core_->groups.size(); }
std::size_t Engine::unit_of_child(std::size_t child) const { return core_->unit_of_child(child); }
std::vector<std::size_t> Engine::last_unit_order() const {
  std::vector<std::size_t> indices;
  for (const detail::ParameterGroup* group : core_->order->ran()) indices.push_back(group->index);
  return indices;
}
std::int64_t Engine::unit_order_changes() const { return core_->order->changes(); }
std::int64_t Engine::parameter_count() const { return core_->parameter_count(); }
int Engine::compute_threads() const { return core_->compute_threads; }
ModelStateBytes Engine::model_state_bytes() const { return core_->model_state_bytes(); }
MemoryPlan Engine::plan_memory(const std::optional<Shape>& input_shape) const { return core_->plan_memory(input_shape); }
const MemoryPlan* Engine::memory_plan() const { return core_->memory_plan ? &*core_->memory_plan : nullptr; }
const MemoryLedger& Engine::memory() const { return core_->ledger; }
std::vector<float> Engine::full_parameters() { return core_->full_parameters(); }
std::vector<float> Engine::full_optimizer_state(const std::string& name) { return core_->full_optimizer_state(name); }
std::vector<std::string> Engine::optimizer_state_names() const { return core_->optimizer->optimizer().state_names(); }

std::string Engine::save(const std::string& dir, const std::string& tag, const ClientState& client_state) {
  const EngineConfig& config = core_->config;
  if (core_->window_micro_steps != 0)
    throw InvalidArgument("Engine::save in the middle of gradient accumulation (micro-step " +
                          std::to_string(core_->window_micro_steps) + " of " +
                          std::to_string(config.gradient_accumulation_steps) +
                          "): save right after a step() that returned true");
  const std::string chosen = tag.empty() ? "step_" + std::to_string(core_->optimizer_steps) : tag;
  detail::Phase phase(core_->comm, "checkpoint save");
  core_->checkpoint_writer->save(dir, chosen, detail::StateDict(*core_).contents(client_state), config.checkpoint);
  return chosen;
}

checkpoint::TrainingState Engine::load(const std::string& dir, const std::string& tag) {
  // A pending save commits first (collectively): loading `latest` then sees it.
  core_->checkpoint_writer->wait();
  if (core_->window_micro_steps != 0)
    throw InvalidArgument("Engine::load in the middle of gradient accumulation (micro-step " +
                          std::to_string(core_->window_micro_steps) + " of " +
                          std::to_string(core_->config.gradient_accumulation_steps) +
                          "): load before training or right after a step() that returned true");
  return detail::StateDict(*core_).load(dir, tag);
}

void Engine::wait_for_checkpoint() {
  detail::Phase phase(core_->comm, "checkpoint commit");
  core_->checkpoint_writer->wait();
}

std::string Engine::finish_profiler() {
  if (!core_->profiler) return "";
  core_->profiler->finish();
  return core_->profiler->written();
}

std::string Engine::profiler_trace() const { return core_->profiler ? core_->profiler->written() : ""; }

void Engine::set_checkpoint_config(const checkpoint::CheckpointConfig& config) {
  config.validate();
  core_->config.checkpoint = config;
}

}  // namespace zs
