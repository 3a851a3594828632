#include "zeroshard/runtime/lr_schedule.hpp"

#include <cmath>
#include <numbers>

#include "zeroshard/error.hpp"

namespace zs {

std::string to_string(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::constant: return "constant";
    case ScheduleKind::step: return "step";
    case ScheduleKind::exponential: return "exponential";
    case ScheduleKind::cosine: return "cosine";
    case ScheduleKind::cosine_restarts: return "cosine_restarts";
    case ScheduleKind::cyclic: return "cyclic";
  }
  return "schedule(" + std::to_string(static_cast<int>(kind)) + ")";
}

ScheduleKind parse_schedule_kind(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::constant, ScheduleKind::step, ScheduleKind::exponential, ScheduleKind::cosine,
                         ScheduleKind::cosine_restarts, ScheduleKind::cyclic})
    if (to_string(k) == name) return k;
  throw InvalidArgument("scheduler.type '" + name +
                        "' is unknown: use constant, step, exponential, cosine, cosine_restarts or cyclic");
}

void ScheduleConfig::validate() const {
  auto fail = [](const std::string& what) { throw InvalidArgument("scheduler.params." + what); };  // the documented keys
  if (warmup_steps < 0) fail("warmup_steps = " + std::to_string(warmup_steps) + " must be >= 0");
  if (!(warmup_start_factor >= 0 && warmup_start_factor <= 1))
    fail("warmup_start_factor = " + std::to_string(warmup_start_factor) + " must be in [0, 1]");
  if (step_size < 1) fail("step_size = " + std::to_string(step_size) + " must be >= 1");
  if (!(gamma > 0)) fail("gamma = " + std::to_string(gamma) + " must be > 0");
  if (total_steps < 1) fail("total_steps = " + std::to_string(total_steps) + " must be >= 1");
  if (!(min_lr >= 0)) fail("min_lr = " + std::to_string(min_lr) + " must be >= 0");
  if (restart_period < 1) fail("restart_period = " + std::to_string(restart_period) + " must be >= 1");
  if (restart_mult < 1) fail("restart_mult = " + std::to_string(restart_mult) + " must be >= 1");
  if (!(max_lr >= 0)) fail("max_lr = " + std::to_string(max_lr) + " must be >= 0");
}

namespace {
// eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * T_cur / T_max)) / 2
double cosine_between(double low, double high, double position, double period) {
  return low + (high - low) * (1 + std::cos(std::numbers::pi * position / period)) / 2;
}
}  // namespace

// Each formula is PyTorch's closed form, in its order of operations (torch/optim/lr_scheduler.py,
// 1.13: _get_closed_form_lr, or get_lr where that is already a function of the step count), so
// the values are its closed forms' bits; the scheduler objects' step() uses recursive
// ("chainable") forms that drift from them by a few double ulps (tests/unit/test_torch_golden.cpp).
double learning_rate(const ScheduleConfig& s, double base, std::int64_t t) {
  if (t < s.warmup_steps) {
    // LinearLR(start_factor=f, end_factor=1, total_iters=W):
    // base_lr * (start + (end - start) * min(total_iters, t) / total_iters), left to right.
    const double f = s.warmup_start_factor;
    return base * (f + (1 - f) * static_cast<double>(t) / static_cast<double>(s.warmup_steps));
  }
  t -= s.warmup_steps;  // SequentialLR(milestones=[W]) restarts the schedule proper at 0
  switch (s.kind) {
    case ScheduleKind::constant: return base;
    // StepLR: base_lr * gamma ** (t // step_size); ExponentialLR: base_lr * gamma ** t.
    case ScheduleKind::step: return base * std::pow(s.gamma, static_cast<double>(t / s.step_size));
    case ScheduleKind::exponential: return base * std::pow(s.gamma, static_cast<double>(t));
    case ScheduleKind::cosine:
      // CosineAnnealingLR: no clamp at T_max; past it the cosine continues (back up to base at
      // 2 T_max), as PyTorch documents and does.
      return cosine_between(s.min_lr, base, static_cast<double>(t), static_cast<double>(s.total_steps));
    case ScheduleKind::cosine_restarts: {
      // CosineAnnealingWarmRestarts stepped one step at a time: integer T_cur and T_i.
      std::int64_t period = s.restart_period, position = t;
      if (s.restart_mult == 1) {
        position = t % period;
      } else {
        // Cycle i spans period * mult^i steps; find the cycle holding t.
        while (position >= period) {
          position -= period;
          period *= s.restart_mult;
        }
      }
      return cosine_between(s.min_lr, base, static_cast<double>(position), static_cast<double>(period));
    }
    case ScheduleKind::cyclic: {
      // CyclicLR(mode='triangular', step_size_up = step_size_down = step_size).get_lr():
      //   cycle = floor(1 + t / total_size); x = 1. + t / total_size - cycle
      //   scale = x / step_ratio if x <= step_ratio else (x - 1) / (step_ratio - 1)
      //   lr = base_lr + (max_lr - base_lr) * scale * 1.
      const double up = static_cast<double>(s.step_size), total_size = up + up, step_ratio = up / total_size;
      const double position = static_cast<double>(t) / total_size;
      const double cycle = std::floor(1 + position);
      const double x = 1.0 + position - cycle;
      const double scale = x <= step_ratio ? x / step_ratio : (x - 1) / (step_ratio - 1);
      return base + (s.max_lr - base) * scale;  // scale_fn(cycle) = 1. for 'triangular'
    }
  }
  return base;
}

}  // namespace zs
