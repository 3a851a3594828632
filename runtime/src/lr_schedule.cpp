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
  auto fail = [](const std::string& what) { throw InvalidArgument("scheduler." + what); };
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
double cosine_between(double low, double high, double position, double period) {
  return low + (high - low) * (1 + std::cos(std::numbers::pi * position / period)) / 2;
}
}  // namespace

double learning_rate(const ScheduleConfig& s, double base, std::int64_t t) {
  if (t < s.warmup_steps) {
    const double fraction = static_cast<double>(t) / static_cast<double>(s.warmup_steps);
    return base * (s.warmup_start_factor + (1 - s.warmup_start_factor) * fraction);
  }
  t -= s.warmup_steps;
  switch (s.kind) {
    case ScheduleKind::constant: return base;
    case ScheduleKind::step: return base * std::pow(s.gamma, static_cast<double>(t / s.step_size));
    case ScheduleKind::exponential: return base * std::pow(s.gamma, static_cast<double>(t));
    case ScheduleKind::cosine:
      if (t >= s.total_steps) return s.min_lr;
      return cosine_between(s.min_lr, base, static_cast<double>(t), static_cast<double>(s.total_steps));
    case ScheduleKind::cosine_restarts: {
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
      const double cycle = std::floor(1 + static_cast<double>(t) / (2.0 * s.step_size));
      const double x = std::abs(static_cast<double>(t) / s.step_size - 2 * cycle + 1);
      return base + (s.max_lr - base) * std::max(0.0, 1 - x);
    }
  }
  return base;
}

}  // namespace zs
