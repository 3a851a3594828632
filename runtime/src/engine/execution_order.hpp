#pragma once
// The order groups run in (FSDP's execution-order record and replay; DeepSpeed's trace).
//
// Every forward records the groups it ran. Backward replays that record in reverse, so its
// gathers and prefetches are always exact. The next forward of the same mode prefetches along
// it; the first run that differs (a branch skipped, a group run twice, groups reordered) ends
// the prefetching for the rest of that forward and counts a change; the new order is recorded
// for the forward after.
//
// A caller's ForwardProgram may pick different groups on different ranks by mistake (a
// branch on rank-local data). agree_on_run compares what the ranks are about to run with one
// small all-reduce, so that all of them throw before any collective could pair one rank's
// group with another's (a hang, or a gather of the wrong group: a silent wrong answer).

#include <cstdint>
#include <random>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/nn/module.hpp"
#include "parameter_group.hpp"

namespace zs::detail {

/// What agree_on_run is told when the program returned instead of running a group.
inline constexpr std::int64_t kForwardEnded = -1;

class ExecutionOrder {
 public:
  /// Until a forward records otherwise, both modes expect `declared`.
  explicit ExecutionOrder(std::vector<ParameterGroup*> declared);

  /// A forward begins: nothing ran yet; `input` is the data the first run must read.
  void begin(bool training, bool program, const float* input);
  /// Records `group` as the next run. Returns false from the first run that leaves the
  /// expected order on (that forward no longer follows it, and it counts as a change).
  bool record(ParameterGroup& group);
  /// The forward ended: what ran becomes the expected order of its mode.
  void finish();
  /// The forward ended by an error.
  void abandon() { in_forward_ = false; }

  bool in_forward() const { return in_forward_; }
  bool training() const { return training_; }
  bool program() const { return program_; }
  bool following() const { return following_; }
  /// The order the current forward is expected to take (the last one of its mode).
  const std::vector<ParameterGroup*>& expected() const { return expected_[training_ ? 1 : 0]; }
  /// The runs of the current (or last) forward.
  const std::vector<ParameterGroup*>& ran() const { return ran_; }
  std::int64_t changes() const { return changes_; }
  /// The chain check: a run's input must be the previous run's output (the first run's, the
  /// forward's input).
  bool continues_chain(const float* input) const { return input == last_output_; }
  void set_last_output(const float* output) { last_output_ = output; }

 private:
  std::vector<ParameterGroup*> expected_[2];  // by mode: evaluate 0, training 1
  std::vector<ParameterGroup*> ran_;
  std::int64_t changes_ = 0;
  bool in_forward_ = false, training_ = false, program_ = false, following_ = true;
  const float* last_output_ = nullptr;
};

/// Collective over `comm`: every rank states what it runs at `position` (a group index, or
/// kForwardEnded) and whether its input continues the chain. Throws InvalidArgument on every
/// rank if the ranks differ or some rank broke the chain.
void agree_on_run(const Communicator& comm, std::size_t position, std::int64_t group, bool chained);

/// Saved inputs of runs (and the dropout stream before each), so that a run can be computed
/// again for its backward: a group run twice in one forward holds only its last run's
/// activations. Reusable for activation checkpointing.
class RunInputs {
 public:
  /// Saves `input` as run `position`'s input with the stream `random` as it was before the
  /// run, and returns what the run must read. `copy`: a deep copy (a ForwardProgram may run a
  /// group again and overwrite the tensor the input came from). Otherwise the saved tensor
  /// shares the input's storage (activation checkpointing: the input is the previous group's
  /// output, or the caller's, both unchanged until this run's backward), costing no memory.
  const Tensor& save(std::size_t position, const Tensor& input, const std::mt19937_64& random, bool copy);
  /// Drops the saved inputs that share storage (after backward: they must not keep a
  /// checkpointed run's input alive into the next step).
  void drop_shared();
  const Tensor& input(std::size_t position) const { return inputs_.at(position); }
  const std::mt19937_64& random(std::size_t position) const { return random_.at(position); }
  /// Bytes of saved inputs (ledgered with activations).
  std::int64_t bytes() const { return bytes_; }

 private:
  std::vector<Tensor> inputs_;
  std::vector<bool> shared_;  // inputs_[i] shares the run's input storage (not a copy)
  std::vector<std::mt19937_64> random_;
  std::int64_t bytes_ = 0;
};

}  // namespace zs::detail
