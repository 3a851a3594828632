// Forward along a recorded unit order (FSDP's execution-order record and replay).
//
// Every forward records the units it ran. Backward replays that record in reverse, so its
// gathers and prefetches are always exact. The next forward of the same mode prefetches along
// it; the first run that differs (a branch skipped, a unit run twice, units reordered) stops
// the prefetching for the rest of that forward: the gathers already issued along the old
// order are completed and freed, and every later unit is gathered on demand. The new order is
// recorded for the forward after. Whatever is issued depends on the order alone, never on
// timing, so every rank issues the same collectives.
//
// A caller's ForwardProgram may pick different units on different ranks by mistake (a branch
// on rank-local data). Before each run the ranks compare what they are about to run with one
// small all-reduce and all throw on a mismatch, before any collective could pair one rank's
// unit with another's (a hang, or a gather of the wrong unit: a silent wrong answer).
#include <algorithm>
#include <cstring>

#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"
#include "engine_unit.hpp"

namespace zs {

namespace {

constexpr std::int64_t kForwardEnded = -1;

std::string describe_run(std::int64_t unit) {
  return unit == kForwardEnded ? std::string("none (the program returned)") : "unit " + std::to_string(unit);
}

}  // namespace

const Tensor& UnitRunner::run(std::size_t unit, const Tensor& input) { return engine_.run_unit(unit, input); }

const Tensor& Engine::forward(const Tensor& input) { return run_forward(input, true, nullptr); }

const Tensor& Engine::evaluate(const Tensor& input) { return run_forward(input, false, nullptr); }

const Tensor& Engine::forward(const Tensor& input, const ForwardProgram& program) {
  return run_forward(input, true, &program);
}

const Tensor& Engine::evaluate(const Tensor& input, const ForwardProgram& program) {
  return run_forward(input, false, &program);
}

const Tensor& Engine::run_forward(const Tensor& input, bool training, const ForwardProgram* program) {
  UnitOrder& order = *unit_order_;
  if (order.in_forward)
    throw InvalidArgument("Engine::forward/evaluate called from inside a ForwardProgram: run units with "
                          "UnitRunner::run instead");
  release_kept_parameters();  // a new forward ends the last one's claim on them
  order.in_forward = true;
  order.training = training;
  order.program = program != nullptr;
  order.following = true;
  order.ran.clear();
  order.last_output = input.data();
  order.context = {.training = training, .random = &dropout_random_,
                   .progress = config_.overlap_comm ? &progress_hook_ : nullptr};
  forward_was_training_ = false;  // no backward may follow a forward that failed
  const Tensor* output = &input;
  try {
    if (program) {
      UnitRunner runner(*this);
      output = &(*program)(runner, input);
      agree_on_run(order.ran.size(), kForwardEnded, !training || output->data() == order.last_output);
    } else {
      for (auto& unit : units_) output = &run_unit(unit->index, *output);
    }
  } catch (...) {
    // Every rank that failed together (the checks above) completes the same gathers here.
    release_kept_parameters();
    drop_prefetched_gathers(nullptr);
    order.in_forward = false;
    throw;
  }
  drop_prefetched_gathers(nullptr);  // prefetched along the record past where this forward ended
  order.in_forward = false;
  std::vector<Unit*>& expected = order.expected[training ? 1 : 0];
  if (order.ran != expected) {
    if (order.following) ++order.changes;  // ended early: left the order without a wrong run
    expected = order.ran;
  }
  track(MemoryCategory::activations, activations_held_, model_.activation_bytes() + order.saved_bytes);
  forward_was_training_ = training;
  return *output;
}

const Tensor& Engine::run_unit(std::size_t index, const Tensor& input) {
  UnitOrder& order = *unit_order_;
  if (!order.in_forward)
    throw InvalidArgument("UnitRunner::run may only be called by the ForwardProgram that Engine::forward is running");
  const std::size_t position = order.ran.size();
  if (order.program) {
    // Any index out of range is stated as units_.size(), so that ranks agreeing on a bad
    // index all throw the range error below together.
    const auto stated = static_cast<std::int64_t>(std::min(index, units_.size()));
    agree_on_run(position, stated, !order.training || input.data() == order.last_output);
  }
  if (index >= units_.size())
    throw InvalidArgument("UnitRunner::run(" + std::to_string(index) + "): the engine has " +
                          std::to_string(units_.size()) + " units (Engine::unit_of_child maps a child to its unit)");
  Unit& unit = *units_[index];
  const std::vector<Unit*>& expected = order.expected[order.training ? 1 : 0];
  if (order.following && (position >= expected.size() || expected[position] != &unit)) {
    order.following = false;
    ++order.changes;
    drop_prefetched_gathers(&unit);  // before gathering on demand: they count against max_live_bytes
  }
  order.ran.push_back(&unit);
  if (order.following) gather_with_prefetch(expected, position);
  else wait_gather(unit);

  const Tensor* x = &input;
  if (order.program && order.training) {
    if (order.saved_inputs.size() <= position) {
      order.saved_inputs.resize(position + 1);
      order.saved_random.resize(position + 1);
    }
    Tensor& saved = order.saved_inputs[position];
    order.saved_bytes -= saved.numel() * 4;
    saved.resize(input.shape());
    order.saved_bytes += saved.numel() * 4;
    if (input.numel() > 0) std::memcpy(saved.data(), input.data(), input.numel() * sizeof(float));
    order.saved_random[position] = dropout_random_;
    x = &saved;
  }
  x = &forward_children(unit, *x, order.context);
  if (order.training && !config_.reshard_after_forward && shards_parameters(unit)) unit.kept_for_backward = true;
  else release_parameters(unit);
  order.last_output = x->data();
  return *x;
}

void Engine::agree_on_run(std::size_t position, std::int64_t unit, bool chained) {
  // MIN over {u, -u, chained}: the lowest unit, minus the highest, and 0 if any rank broke
  // the chain.
  std::int64_t stated[3] = {unit, -unit, chained ? 1 : 0};
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, stated, 3, MPI_INT64_T, MPI_MIN, comm_.handle()));
  const std::int64_t low = stated[0], high = -stated[1];
  if (low != high)
    throw InvalidArgument(rank_and_host() + ": ranks ran different units at run " + std::to_string(position) +
                          " of this forward (this rank: " + describe_run(unit) + "; across ranks: " +
                          describe_run(low) + " to " + describe_run(high) +
                          "): a ForwardProgram must run the same units in the same order on every rank. Decide "
                          "branches from values every rank shares (the step count, a seed common to all ranks), "
                          "never from rank-local data");
  if (stated[2] == 0)
    throw InvalidArgument(rank_and_host() + ": at run " + std::to_string(position) +
                          " of this forward, some rank's ForwardProgram (this rank: " +
                          (chained ? "not this one" : "this one") +
                          ") passed an input that is not the previous run's output (nor, for the first run, the "
                          "forward's input), or returned something other than the last run's output. Backward "
                          "replays the chain of runs in reverse, so the runs must form one chain: put residual "
                          "connections and other wiring inside a module");
}

void Engine::drop_prefetched_gathers(const Unit* except) {
  for (auto& unit : units_)
    if (unit.get() != except && shards_parameters(*unit) && !unit->params_full.empty() && !unit->kept_for_backward) {
      unit->gather.wait();
      release_parameters(*unit);
    }
}

void Engine::release_kept_parameters() {
  for (auto& unit : units_)
    if (unit->kept_for_backward) {
      unit->kept_for_backward = false;
      release_parameters(*unit);
    }
}

void Engine::recompute_run(std::size_t position) {
  UnitOrder& order = *unit_order_;
  Unit& unit = *order.ran.at(position);
  // A copy: the dropout stream of the forward goes on untouched, and this run draws the
  // same masks as the original one did.
  std::mt19937_64 random = order.saved_random.at(position);
  nn::ForwardContext context = order.context;
  context.random = &random;
  forward_children(unit, order.saved_inputs.at(position), context);
}

const Tensor& Engine::forward_children(Unit& unit, const Tensor& input, const nn::ForwardContext& context) {
  const Tensor* x = &input;
  for (std::size_t c = unit.first; c < unit.end; ++c) {
    x = &model_.at(c).forward(*x, context);
    poll();
  }
  return *x;
}

std::size_t Engine::unit_of_child(std::size_t child) const {
  for (const auto& unit : units_)
    if (child >= unit->first && child < unit->end) return unit->index;
  throw InvalidArgument("Engine::unit_of_child(" + std::to_string(child) + "): the model has " +
                        std::to_string(model_.size()) + " children");
}

std::vector<std::size_t> Engine::last_unit_order() const {
  std::vector<std::size_t> indices;
  for (const Unit* unit : unit_order_->ran) indices.push_back(unit->index);
  return indices;
}

std::int64_t Engine::unit_order_changes() const { return unit_order_->changes; }

}  // namespace zs
