#pragma once
// Learning-rate schedules as pure functions of the optimizer step count, so their whole state
// is one integer (saved in checkpoints). Definitions are PyTorch's schedulers' closed forms, in
// their order of operations (tests/unit/test_torch_golden.cpp checks them against torch 1.13's
// own values); `t` is the number of optimizer steps already taken (0 for the first update).
//
//   constant       base                                                     (no scheduler)
//   step           base * gamma^floor(t / step_size)                       (StepLR)
//   exponential    base * gamma^t                                           (ExponentialLR)
//   cosine         min + (base - min) (1 + cos(pi t / total)) / 2          (CosineAnnealingLR)
//                  past total the cosine goes on (back up to base at 2 total), as PyTorch's does
//   cosine_restarts  cosine within cycles of period T_i = period * mult^i  (CosineAnnealingWarmRestarts)
//   cyclic         triangular between base and max_lr, half-period step_size
//                  (CyclicLR(mode='triangular', step_size_up=step_size, cycle_momentum=False))
// Any of them composes with a linear warmup: for t < warmup_steps the rate rises linearly from
// warmup_start_factor * base to base, and the schedule proper then starts at its own t = 0:
// PyTorch's SequentialLR([LinearLR(start_factor=warmup_start_factor, end_factor=1,
// total_iters=warmup_steps), <schedule>], milestones=[warmup_steps]) (not ChainedScheduler,
// which would run both from step 0 and multiply them). "linear warmup" alone is constant +
// warmup_steps: LinearLR alone. warmup_start_factor = 0 (the default) is the limit of LinearLR's
// closed form; torch 1.13's LinearLR object divides by zero at its second step with it.

#include <cstdint>
#include <string>

namespace zs {

enum class ScheduleKind { constant, step, exponential, cosine, cosine_restarts, cyclic };
std::string to_string(ScheduleKind kind);
ScheduleKind parse_schedule_kind(const std::string& name);

struct ScheduleConfig {
  ScheduleKind kind = ScheduleKind::constant;
  std::int64_t warmup_steps = 0;
  double warmup_start_factor = 0.0;
  std::int64_t step_size = 1000;  // step: decay period; cyclic: half period
  double gamma = 0.1;             // step, exponential
  std::int64_t total_steps = 1000;  // cosine
  double min_lr = 0.0;            // cosine, cosine_restarts
  std::int64_t restart_period = 1000;  // cosine_restarts: T_0
  std::int64_t restart_mult = 1;       // cosine_restarts: T_mult (integer, as PyTorch)
  double max_lr = 1e-2;                // cyclic
  /// Throws InvalidArgument naming the bad field.
  void validate() const;
};

/// The learning rate for update number t + 1 (t updates done), from base rate `base`.
double learning_rate(const ScheduleConfig& schedule, double base, std::int64_t t);

}  // namespace zs
