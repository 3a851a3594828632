#pragma once
// The fp16 loss scale: DeepSpeed's DynamicLossScaler (deepspeed/runtime/fp16/loss_scaler.py)
// step for step, so a DeepSpeed user's fp16.* settings mean the same here.
//
//   overflow:    if hysteresis_left == 1: scale = max(scale / 2, min_loss_scale)
//                else: hysteresis_left -= 1
//                last_overflow_iteration = iteration
//   no overflow: if (iteration - last_overflow_iteration) % loss_scale_window == 0:
//                  hysteresis_left = hysteresis; scale *= 2
//   then iteration += 1
//
// With fp16.loss_scale > 0 the scale is fixed and update() only counts, except that
// kFixedScaleOverflowLimit consecutive overflows stop training with an error (DeepSpeed would
// go on skipping every step: the run would end "successfully" with an untrained model). Not
// collective: every
// rank makes the same update from the same agreed overflow flag (the gradient norm's
// all-reduce), so every rank holds the same state.

#include <cstdint>

#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs::detail {

class LossScaler {
 public:
  /// Consecutive overflowing (skipped) steps at a fixed fp16.loss_scale that end training.
  static constexpr std::int64_t kFixedScaleOverflowLimit = 10;

  explicit LossScaler(const LossScaleConfig& config);

  /// The factor the loss gradient is multiplied by now.
  double scale() const { return state_.scale; }
  /// After an accumulation boundary: `overflow` says the step's gradients were not finite
  /// (the step was skipped). Throws InvalidArgument when a dynamic scale already at
  /// fp16.min_loss_scale overflows again with no hysteresis left (DeepSpeed's
  /// raise_error_at_min_scale), or when a fixed scale overflows kFixedScaleOverflowLimit steps
  /// in a row: training would make no progress.
  void update(bool overflow);

  const checkpoint::LossScalerState& state() const { return state_; }
  /// Restores a saved state (checkpoint load). Throws InvalidArgument for a state this
  /// configuration could not have produced: a scale below fp16.min_loss_scale (dynamic) or
  /// other than fp16.loss_scale (fixed), hysteresis outside [1, fp16.hysteresis].
  void restore(const checkpoint::LossScalerState& state);

 private:
  LossScaleConfig config_;
  checkpoint::LossScalerState state_;
  std::int64_t consecutive_overflows_ = 0;  // fixed scale only; restarts at a resume
};

}  // namespace zs::detail
