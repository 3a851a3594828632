#pragma once
// What a resumed run keeps from the run it continues, whatever the world size now:
// - the learning-rate schedule: every scheduler.* key as saved (total steps, warmup, floor),
//   so step k has the LR it would have had without the interruption, except the keys the user
//   sets again on the resuming command line (to stretch the schedule over more epochs);
// - the global batch (samples per optimizer step = micro-batch x ranks x accumulation), as
//   DeepSpeed keeps train_batch_size: gradient_accumulation_steps is chosen for this world
//   size so that each step averages the same number of samples, keeping this run's
//   micro-batch where it can, else the largest micro-batch no larger than it that works (with
//   optimizer.in_backward, which cannot accumulate: accumulation 1 and the micro-batch that makes
//   up the global batch alone). A micro-batch or accumulation count given on the resuming
//   command line that would change the global batch is refused, naming the values that keep
//   it: the checkpoint's schedule and data position count in saved global batches. With the
//   sampler's world-size-independent global order, the run then trains on the same global
//   batches in the same order, and an epoch has the same number of steps.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/runtime/config.hpp"

namespace zs::examples {

struct ResumePlan {
  /// "key=value" overrides to apply on top of the command line's.
  std::vector<std::string> overrides;
  /// One line for the log: what was taken from the checkpoint.
  std::string note;
};

/// Reads the configuration recorded by the checkpoint DIR/latest names. Not collective (every
/// rank reads the same files). `single_micro_step`: the run cannot accumulate
/// (optimizer.in_backward), so the plan's accumulation is 1. Throws InvalidArgument if `world`
/// does not divide the saved global batch, naming the numbers and the fix;
/// checkpoint::CheckpointError if the checkpoint cannot be read.
ResumePlan plan_resume(const std::string& save_dir, int world, std::int64_t micro_batch, bool single_micro_step = false);

/// What both examples do before building the engine: when `resume` is set and DIR/latest
/// exists, applies plan_resume's overrides to `config`, validates it and returns the plan's
/// note; otherwise returns nothing and leaves `config` alone. Throws as plan_resume, and
/// InvalidArgument if the adjusted configuration is invalid.
/// The client-state integer `key` (the data position an example saved) of checkpoint
/// `checkpoint` (for the message: e.g. "DIR/latest"), checked to lie in [min, max] and to be a
/// multiple of `multiple_of`. Throws checkpoint::CheckpointError naming the checkpoint, the
/// key, its value (or that it is missing) and `expected`: a hand-edited or foreign checkpoint
/// never becomes a negative index or a skipped epoch.
std::int64_t saved_position(const checkpoint::TrainingState& saved, const std::string& checkpoint, const std::string& key,
                            std::int64_t min, std::int64_t max, const std::string& expected, std::int64_t multiple_of = 1);

/// `command_line_overrides` ("key=value", the user's own): a saved scheduler.* key the user set
/// again on this command line keeps the user's value (named in the note); the others are the
/// saved ones. A train_micro_batch_size_per_gpu or gradient_accumulation_steps the user set that
/// differs from the plan's throws InvalidArgument on every rank (every rank plans alike).
std::optional<std::string> resume_into(TrainingConfig& config, const std::string& save_dir, bool resume, int world,
                                       const std::vector<std::string>& command_line_overrides);

/// Whether the user fixed the cosine schedule's length: a config file (which may set it), an
/// override of scheduler.params.total_steps among `overrides` (command-line `key=value`s), or a
/// resumed run (the saved schedule is kept). The `length_given` of fit_schedule_to_run.
bool schedule_length_given(bool config_file, bool resuming, const std::vector<std::string>& overrides);

/// Both examples' cosine schedule length. Unless `length_given` (a config file, an override of
/// scheduler.params.total_steps, or a resumed schedule), a cosine schedule spans the run:
/// total_steps = run_steps - warmup_steps. Returns a warning for the log when a cosine schedule
/// ends before the run does (warmup_steps + total_steps < run_steps): past its end PyTorch's
/// CosineAnnealingLR, which ZeroShard's follows, rises back towards the base LR. The warning
/// names both steps and the override that stretches the schedule over the run. Not collective.
std::optional<std::string> fit_schedule_to_run(TrainingConfig& config, std::int64_t run_steps, bool length_given);

}  // namespace zs::examples
