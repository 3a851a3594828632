#pragma once
// Optimizers that update a flat slice of parameters in place: the whole buffer under ZeRO-0,
// this rank's shard under ZeRO-1/2/3. Each update is elementwise, so sharding changes which
// rank computes an element, never its value: stages agree bit for bit.
//
// Hyper-parameters, defaults and arithmetic follow PyTorch (torch.optim.SGD / Adam / AdamW,
// single-tensor path): the same float32 operations in the same order, so results are torch
// 1.13's reference CPU kernels' bits (tests/unit/test_torch_golden.cpp). Per-group
// settings: elements of parameters with weight_decay == false (biases, norm gains) get no
// weight decay, the usual PyTorch parameter-group setup done for you.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace zs {

enum class OptimizerKind { sgd, adam, adamw };
std::string to_string(OptimizerKind kind);
OptimizerKind parse_optimizer_kind(const std::string& name);

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::adamw;
  double lr = 1e-3;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam, AdamW
  /// PyTorch's defaults: 0 for SGD and Adam (L2, added to the gradient), 0.01 for AdamW
  /// (decoupled). A negative value means "the optimizer's default".
  double weight_decay = -1;
  double momentum = 0, dampening = 0;  // SGD
  bool nesterov = false;               // SGD; needs momentum > 0 and dampening == 0
  /// Throws InvalidArgument naming the bad field (negative lr, beta outside [0,1), ...).
  void validate() const;
  double effective_weight_decay() const;
};

/// A run of elements of one parameter inside the slice being updated.
struct ParameterRun {
  std::int64_t offset = 0;  // into the slice
  std::int64_t length = 0;
  bool weight_decay = true;
};

/// Factors applied to each gradient element as the update reads it: `(g * unscale) * clip`,
/// rounded to float after each product, which are the values that DDP's / DeepSpeed's division
/// of the summed gradient by the ranks and micro-steps averaged over (and the loss scale),
/// then torch.nn.utils.clip_grad_norm_'s multiply by max_norm / (norm + 1e-6), leave in the
/// gradient when each is its own pass. Applying them as the update reads saves those passes
/// over the gradients (two reads and two writes of 4 bytes per element) with the same bits.
/// 1 means none (x * 1.0f == x exactly).
struct GradientFactors {
  float unscale = 1.0f;
  float clip = 1.0f;
};

class Optimizer {
 public:
  explicit Optimizer(OptimizerConfig config);
  const OptimizerConfig& config() const { return config_; }
  /// Floats of state per parameter element: SGD 0 (1 with momentum), Adam/AdamW 2.
  int state_per_element() const;
  /// Names of the state arrays, in storage order (PyTorch's): "momentum_buffer"; "exp_avg",
  /// "exp_avg_sq".
  std::vector<std::string> state_names() const;
  /// One update of `params` from `grads`. `state` holds state_per_element() arrays of
  /// params.size() floats, back to back, zero before the first step. `step` counts updates
  /// from 1 (bias correction, SGD's first momentum step). Elements outside `runs` (padding)
  /// are left alone. The gradient used is grads[i] with `factors` applied; `grads` is not
  /// written. Single pass over params, grads and state (AdamW: 28 bytes per element moved).
  void update(std::span<float> params, std::span<const float> grads, std::span<float> state,
              const std::vector<ParameterRun>& runs, double lr, std::int64_t step,
              GradientFactors factors = {}) const;

 private:
  OptimizerConfig config_;
};

}  // namespace zs
