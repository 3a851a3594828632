// EngineCore's training step: forward (per run: gather, modules, release, record), backward
// (the recorded runs in reverse: gather, recompute, modules, reduce after a group's last use)
// and step() at the accumulation boundary (reduce the rest, the sharded optimizer, re-gather).
#include <algorithm>

#include "engine_core.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

void EngineCore::poll() {
  if (config.overlap_comm) shard_groups->progress();
}

void EngineCore::record_activations() {
  std::int64_t bytes = run_inputs.bytes();
  for (auto& group : groups)
    for (const nn::Module* module : group->modules) bytes += module->activation_bytes();
  if (bytes > activation_bytes_) ledger.allocate(MemoryCategory::activations, bytes - activation_bytes_);
  else ledger.release(MemoryCategory::activations, activation_bytes_ - bytes);
  activation_bytes_ = bytes;
}

const Tensor& EngineCore::forward(const Tensor& input, bool training, const ForwardProgram* program) {
  if (order->in_forward())
    throw InvalidArgument("Engine::forward/evaluate called from inside a ForwardProgram: run units with "
                          "UnitRunner::run instead");
  // The first training forward knows the batch shape: the whole plan, checked before it runs.
  if (training && !memory_plan)
    memory_plan = check_memory_plan(planned_units(groups), config, optimizer->optimizer().state_per_element(),
                                    input.shape(), memory_limit, comm, config.memory.print_plan, shard_groups->size());
  if (profiler && training) profiler->before_forward(optimizer_steps + skipped_steps);
  gathers->release_kept();  // a new forward ends the last one's claim on them
  order->begin(training, program != nullptr, input.data());
  context_ = {.training = training, .random = &dropout_random, .progress = config.overlap_comm ? &progress_hook_ : nullptr};
  forward_was_training = false;  // no backward may follow a forward that failed
  const Tensor* output = &input;
  try {
    if (program) {
      UnitRunner runner(*this);
      output = &(*program)(runner, input);
      agree_on_run(comm, order->ran().size(), kForwardEnded, !training || order->continues_chain(output->data()));
    } else {
      for (auto& group : groups) output = &run_unit(group->index, *output);
    }
  } catch (...) {
    // Every rank that failed together (the checks) completes the same gathers here. After a
    // timeout the communicator is abandoned and these waits fail as well ("abandoned
    // part-way"): the first error, the one with the hang report, is what propagates.
    try {
      gathers->release_kept();
      gathers->drop_prefetched(nullptr);
    } catch (...) {
    }
    order->abandon();
    throw;
  }
  gathers->drop_prefetched(nullptr);  // prefetched along the record past where this forward ended
  order->finish();
  record_activations();
  forward_was_training = training;
  return *output;
}

const Tensor& EngineCore::run_unit(std::size_t index, const Tensor& input) {
  if (!order->in_forward())
    throw InvalidArgument("UnitRunner::run may only be called by the ForwardProgram that Engine::forward is running");
  const std::size_t position = order->ran().size();
  if (order->program()) {
    // Any index out of range is stated as groups.size(), so that ranks agreeing on a bad
    // index all throw the range error below together.
    const auto stated = static_cast<std::int64_t>(std::min(index, groups.size()));
    agree_on_run(comm, position, stated, !order->training() || order->continues_chain(input.data()));
  }
  if (index >= groups.size())
    throw InvalidArgument("UnitRunner::run(" + std::to_string(index) + "): the engine has " +
                          std::to_string(groups.size()) + " units (Engine::unit_of_child maps a child to its unit)");
  ParameterGroup& group = *groups[index];
  const bool was_following = order->following();
  const bool following = order->record(group);
  // Leaving the order: gathers issued along it are completed and freed before gathering on
  // demand (they count against max_live_bytes).
  if (was_following && !following) gathers->drop_prefetched(&group);
  if (following) gathers->gather_with_prefetch(order->expected(), position);
  else gathers->wait(group);

  // Programs save every run's input (a group may run again and overwrite its caches);
  // checkpointed groups save theirs to recompute from it.
  const bool checkpointed = order->training() && group.checkpoint_activations;
  const Tensor* x = &input;
  if (order->training() && (order->program() || checkpointed))
    x = &run_inputs.save(position, input, dropout_random, /*copy=*/order->program());
  {
    Phase phase(comm, "forward", group.name);
    x = &forward_modules(group, *x, context_, position);
  }
  if (checkpointed) group.release_activations();
  // Stage 3, FSDP's heuristic for its root: the last unit of a training forward is the first
  // one backward runs, so its gathered parameters stay (one all-gather less per step, and
  // backward does not open on a gather nothing can hide). Known only while the forward
  // follows the recorded order; reshard_after_forward = false keeps every unit.
  const bool runs_first_in_backward = following && position + 1 == order->expected().size();
  if (order->training() && policy.shard_parameters && (!policy.reshard_after_forward || runs_first_in_backward))
    gathers->keep_for_backward(group);
  else
    gathers->release(group);
  order->set_last_output(x->data());
  return *x;
}

const Tensor& EngineCore::forward_modules(ParameterGroup& group, const Tensor& input, const nn::ForwardContext& context,
                                          std::size_t position) {
  const Tensor* x = &input;
  // Backward stops at the first run: the gradient of its input (the batch) is never read.
  bool input_gradient_needed = position != 0;
  for (nn::Module* module : group.modules) {
    x = &module->forward(*x, nn::context_for_input(context, *module, input_gradient_needed));
    input_gradient_needed = true;
    poll();
  }
  return *x;
}

void EngineCore::recompute_run(std::size_t position) {
  ParameterGroup& group = *order->ran().at(position);
  Phase phase(comm, "recompute", group.name);
  // A copy: the dropout stream of the forward goes on untouched, and this run draws the
  // same masks as the original one did.
  std::mt19937_64 random = run_inputs.random(position);
  nn::ForwardContext context = context_;
  context.random = &random;
  forward_modules(group, run_inputs.input(position), context, position);
}

void EngineCore::backward(const Tensor& grad_output) {
  if (!forward_was_training)
    throw InvalidArgument("Engine::backward: the last forward was evaluate() or failed; call forward() before backward()");
  // A second backward before step() would be reduced twice at some stages and once at others
  // (stages 0-1 reduce during the last micro-step's backward): refused, the same on every rank
  // since every rank makes the same calls.
  if (backward_ran)
    throw InvalidArgument("Engine::backward called twice without step() in between: each micro-step is one forward, "
                          "one backward and one step(); to sum several micro-batches' gradients set "
                          "gradient_accumulation_steps and call step() after each backward");
  backward_ran = true;
  if (loss_scaler) {
    // fp16: the loss is scaled (through its gradient) so that small gradients survive the
    // rounding to float16; the optimizer step divides the scale out again.
    scaled_grad_output_.resize(grad_output.shape());
    const auto scale = static_cast<float>(loss_scaler->scale());
    const float* in = grad_output.data();
    float* out = scaled_grad_output_.data();
    for (std::int64_t i = 0; i < grad_output.numel(); ++i) out[i] = in[i] * scale;
  }
  const bool last_micro_step = window_micro_steps + 1 == config.gradient_accumulation_steps;
  // Stages 2-3 reduce every micro-step; with overlap, stages 0-1 reduce during the backward of
  // the last micro-step instead of at step().
  // optimizer.in_backward reduces here too: each group is updated as its reduction completes.
  const bool reduce_here =
      policy.reduce_every_micro_step || ((config.overlap_comm || config.optimizer_in_backward) && last_micro_step);
  // The forward's runs in reverse. A group that ran more than once is met first at its last
  // run (its modules hold that run's activations) and recomputed at the earlier ones. A
  // group's gradient buffer is written by its own runs and by the runs of groups borrowing its
  // parameters: it starts at the first of those uses and is reduced after the last.
  const std::vector<ParameterGroup*>& ran = order->ran();
  const std::vector<ParameterGroup*> reversed(ran.rbegin(), ran.rend());
  std::vector<int> uses_left(groups.size(), 0);
  for (ParameterGroup* group : reversed)
    for (const ParameterGroup* g : group->needs()) ++uses_left[g->index];
  std::vector<bool> ran_in_backward(groups.size(), false), gradient_started(groups.size(), false);
  const Tensor* g = loss_scaler ? &scaled_grad_output_ : &grad_output;
  ParameterGroup* released_after_next = nullptr;
  for (std::size_t i = 0; i < reversed.size(); ++i) {
    ParameterGroup& group = *reversed[i];
    const bool first_meeting = !ran_in_backward[group.index];
    ran_in_backward[group.index] = true;
    gathers->gather_with_prefetch(reversed, i);
    const std::vector<ParameterGroup*> needs = group.needs();
    for (ParameterGroup* used : needs) {
      if (gradient_started[used->index]) continue;
      gradient_started[used->index] = true;
      // Whole float32 gradients are the accumulator (stages 0-1) unless they are 16-bit or
      // held only until the group's update (optimizer.in_backward).
      if (!policy.shard_gradients && !half_gradients && !config.optimizer_in_backward) continue;
      // Not cleared: the first backward to use each parameter writes its gradient whole.
      used->grads_full = pool.take(Lifetime::step, MemoryCategory::gradients_full, used->padded_elems());
      used->bind();
      used->mark_gradients_unwritten();
    }
    // The modules hold this run's activations only if it was the group's last run and the
    // group is not checkpointed; otherwise the run is computed again first.
    if (!first_meeting || group.checkpoint_activations) recompute_run(reversed.size() - 1 - i);
    {
      Phase phase(comm, "backward", group.name);
      for (auto module = group.modules.rbegin(); module != group.modules.rend(); ++module) {
        nn::prepare_gradients_for_backward(**module);  // zeroes stale gradients a module would add into
        g = &(*module)->backward(*g);
        poll();
      }
    }
    // A checkpointed group's recomputed activations go once the next group's backward has
    // read the input gradient they hold (`g`); not when that was the same group again.
    if (released_after_next && released_after_next != &group) released_after_next->release_activations();
    released_after_next = group.checkpoint_activations ? &group : nullptr;
    for (ParameterGroup* used : needs) {
      if (--uses_left[used->index] != 0) continue;
      reducer->fold(*used);
      if (reduce_here) reducer->reduce(*used);
    }
    gathers->release(group);
  }
  if (released_after_next) released_after_next->release_activations();
  run_inputs.drop_shared();
  record_activations();
  Phase phase(comm, "finish gradient reductions");
  reducer->finish();
}

bool EngineCore::step() {
  // An async save commits at the first step() after every rank finished writing it.
  if (checkpoint_writer->pending()) checkpoint_writer->poll();
  if (!backward_ran)
    throw InvalidArgument("Engine::step without a backward since the last step(): each micro-step is one forward, "
                          "one backward and one step() (a step with no gradients would still move Adam's moments)");
  ++micro_steps;
  backward_ran = false;
  if (++window_micro_steps < config.gradient_accumulation_steps) return false;
  window_micro_steps = 0;
  step_boundary();
  if (profiler) profiler->after_step(optimizer_steps + skipped_steps);
  return true;
}

void EngineCore::step_boundary() {
  if (config.optimizer_in_backward) {
    step_boundary_in_backward();
    return;
  }
  Phase phase(comm, "step");
  if (!policy.reduce_every_micro_step) {
    Phase reduce(comm, "reduce gradients");
    // Groups not reduced during the last backward (all of them without overlap; those the
    // last forward did not use with it).
    for (auto& group : groups)
      if (!group->reduced_this_step) reducer->reduce(*group);
    reducer->finish();
  }
  for (auto& group : groups) {
    group->reduced_this_step = false;
    group->zero_unwritten_shard();  // stages 2-3: a group no backward of this window used
  }
  const double loss_scale = loss_scaler ? loss_scaler->scale() : 1.0;
  // Node-shared parameters: no rank may still read them (its backward, an evaluate) when another
  // starts updating its slice.
  synchronize_shared_parameters();
  const StepOutcome outcome = optimizer->step(groups, learning_rate(), optimizer_steps + 1, loss_scale);
  gradient_norm = outcome.gradient_norm;
  last_step_skipped = !outcome.applied;
  // Every rank saw the same norm (one all-reduce), so every rank updates the scale alike.
  if (loss_scaler) loss_scaler->update(/*overflow=*/!outcome.applied);
  if (outcome.applied) {
    if (policy.gather_after_update) gathers->gather_whole_parameters();
    ++optimizer_steps;
  } else {
    ++skipped_steps;
  }
  clear_gradients();
}

void EngineCore::step_in_backward(ParameterGroup& group) {
  Phase phase(comm, "optimizer update", group.name);
  optimizer->step_group(group, learning_rate(), optimizer_steps + 1);
  group.grads_full.reset();
  group.grads16.reset();
  group.grads_shard.reset();
  group.bind();
}

void EngineCore::step_boundary_in_backward() {
  Phase phase(comm, "step");
  // A group no backward of this step used (a ForwardProgram skipped its unit) is updated now
  // from zero gradients, as step() would (Adam's moments and the weight decay still move it).
  // Every rank agreed on the runs, so every rank reduces the same groups here.
  for (auto& group : groups) {
    if (group->reduced_this_step) continue;
    Buffer& whole = half_gradients ? group->grads16 : group->grads_full;
    whole = pool.take(Lifetime::step, MemoryCategory::gradients_full, group->padded_elems(), config.precision.gradient_dtype(),
                      /*zeroed=*/true);
    group->bind();
    reducer->reduce(*group);
  }
  reducer->finish();
  for (auto& group : groups) group->reduced_this_step = false;
  gradient_norm = optimizer->norm_of_groups_stepped(groups.size());
  last_step_skipped = false;
  if (policy.gather_after_update) gathers->gather_whole_parameters();
  ++optimizer_steps;
  clear_gradients();
  if (!std::isfinite(gradient_norm))
    throw Error(rank_and_host() + ": the gradient norm of optimizer step " + std::to_string(optimizer_steps) +
                " is not finite (" + std::to_string(gradient_norm) + "). With optimizer.in_backward = true every unit was "
                "already updated during backward, so the step could not be skipped and the parameters now hold "
                "non-finite values: restore the last checkpoint (and lower the learning rate), or set "
                "optimizer.in_backward = false, under which such a step is skipped");
}

void EngineCore::clear_gradients() {
  for (auto& group : groups) {
    // Stages 0-1 in float32 keep whole gradients: marked stale, not cleared (PyTorch's
    // zero_grad(set_to_none=True)); the next backward writes them whole.
    group->mark_gradients_unwritten();
    group->grads_shard_unwritten = !group->grads_shard.empty();
    group->grads16.fill(0.0f);
  }
}

}  // namespace zs::detail
