#include "loss_scaler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

std::string number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

}  // namespace

LossScaler::LossScaler(const LossScaleConfig& config) : config_(config) {
  state_.scale = config.loss_scale > 0 ? config.loss_scale : std::ldexp(1.0, config.initial_scale_power);
  state_.hysteresis_left = config.hysteresis;
}

void LossScaler::update(bool overflow) {
  const bool dynamic = config_.loss_scale == 0;
  consecutive_overflows_ = overflow ? consecutive_overflows_ + 1 : 0;
  if (!dynamic && consecutive_overflows_ >= kFixedScaleOverflowLimit)
    throw InvalidArgument("fp16: the gradients overflowed (inf/NaN) on " + std::to_string(consecutive_overflows_) +
                          " consecutive steps at the fixed fp16.loss_scale = " + number(config_.loss_scale) +
                          " (every one skipped): training makes no progress. Use a lower fp16.loss_scale, "
                          "or fp16.loss_scale = 0 for a dynamic scale, or train in bf16 (bf16.enabled)");
  if (dynamic && overflow) {
    if (state_.hysteresis_left == 1) {
      if (state_.scale <= config_.min_loss_scale)
        throw InvalidArgument("fp16: the gradients overflow (inf/NaN) at the minimum loss scale fp16.min_loss_scale = " +
                              number(config_.min_loss_scale) + " after " + std::to_string(state_.iteration) +
                              " steps: training makes no progress. Lower the learning rate, clip gradients "
                              "(gradient_clipping), or train in bf16 (bf16.enabled), whose range is float32's");
      state_.scale = std::max(state_.scale / 2, config_.min_loss_scale);
    } else {
      --state_.hysteresis_left;
    }
    state_.last_overflow_iteration = state_.iteration;
  } else if (dynamic && (state_.iteration - state_.last_overflow_iteration) % config_.loss_scale_window == 0) {
    state_.hysteresis_left = config_.hysteresis;
    state_.scale *= 2;
  }
  ++state_.iteration;
}

void LossScaler::restore(const checkpoint::LossScalerState& state) {
  const bool dynamic = config_.loss_scale == 0;
  if (dynamic ? !(state.scale >= config_.min_loss_scale) : state.scale != config_.loss_scale)
    throw InvalidArgument("the checkpoint's fp16 loss scale " + number(state.scale) +
                          (dynamic ? " is below fp16.min_loss_scale = " + number(config_.min_loss_scale)
                                   : " differs from the fixed fp16.loss_scale = " + number(config_.loss_scale)) +
                          ": resume with the fp16.* settings that saved it");
  if (state.hysteresis_left < 1 || state.hysteresis_left > config_.hysteresis)
    throw InvalidArgument("the checkpoint's fp16 loss scaler has " + std::to_string(state.hysteresis_left) +
                          " overflows of hysteresis left, outside [1, fp16.hysteresis = " +
                          std::to_string(config_.hysteresis) + "]: resume with the fp16.* settings that saved it");
  state_ = state;
}

}  // namespace zs::detail
