#pragma once
// Learning-rate schedules as pure functions of the optimizer step count, so their whole state
// is one integer (saved in checkpoints). Definitions follow PyTorch's schedulers; `t` is the
// number of optimizer steps already taken (0 for the first update).
//
//   constant       base
//   step           base * gamma^floor(t / step_size)                       (StepLR)
//   exponential    base * gamma^t                                           (ExponentialLR)
//   cosine         min + (base - min) (1 + cos(pi t / total)) / 2, min after total (CosineAnnealingLR)
//   cosine_restarts  cosine within cycles of period T_i = period * mult^i  (CosineAnnealingWarmRestarts)
//   cyclic         triangular between base and max_lr, half-period step_size (CyclicLR 'triangular')
// Any of them composes with a linear warmup: for t < warmup_steps the rate rises linearly from
// warmup_start_factor * base to base, and the schedule proper then starts at its own t = 0.
// "linear warmup" alone is constant + warmup_steps.

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
