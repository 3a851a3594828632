#include "zeroshard/runtime/optimizer.hpp"

#include <cmath>

#include "zeroshard/error.hpp"

namespace zs {

std::string to_string(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::adam: return "adam";
    case OptimizerKind::adamw: return "adamw";
  }
  return "optimizer(" + std::to_string(static_cast<int>(kind)) + ")";
}

OptimizerKind parse_optimizer_kind(const std::string& name) {
  for (OptimizerKind k : {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw})
    if (to_string(k) == name) return k;
  throw InvalidArgument("optimizer.type '" + name + "' is unknown: use sgd, adam or adamw");
}

void OptimizerConfig::validate() const {
  auto fail = [](const std::string& what) { throw InvalidArgument("optimizer." + what); };
  if (!(lr >= 0)) fail("lr = " + std::to_string(lr) + " must be >= 0");
  if (!(beta1 >= 0 && beta1 < 1)) fail("betas[0] = " + std::to_string(beta1) + " must be in [0, 1)");
  if (!(beta2 >= 0 && beta2 < 1)) fail("betas[1] = " + std::to_string(beta2) + " must be in [0, 1)");
  if (!(eps > 0)) fail("eps = " + std::to_string(eps) + " must be > 0");
  if (!(momentum >= 0)) fail("momentum = " + std::to_string(momentum) + " must be >= 0");
  if (nesterov && (momentum <= 0 || dampening != 0))
    fail("nesterov needs momentum > 0 and dampening = 0 (as PyTorch requires)");
}

double OptimizerConfig::effective_weight_decay() const {
  if (weight_decay >= 0) return weight_decay;
  return kind == OptimizerKind::adamw ? 0.01 : 0.0;
}

Optimizer::Optimizer(OptimizerConfig config) : config_(config) { config_.validate(); }

int Optimizer::state_per_element() const {
  if (config_.kind == OptimizerKind::sgd) return config_.momentum > 0 ? 1 : 0;
  return 2;
}

std::vector<std::string> Optimizer::state_names() const {
  if (config_.kind == OptimizerKind::sgd) return config_.momentum > 0 ? std::vector<std::string>{"momentum_buffer"}
                                                                      : std::vector<std::string>{};
  return {"exp_avg", "exp_avg_sq"};
}

void Optimizer::update(std::span<float> params, std::span<const float> grads, std::span<float> state,
                       const std::vector<ParameterRun>& runs, double lr, std::int64_t step) const {
  const auto n = static_cast<std::int64_t>(params.size());
  if (static_cast<std::int64_t>(grads.size()) != n ||
      static_cast<std::int64_t>(state.size()) != n * state_per_element())
    throw InvalidArgument("Optimizer::update: " + std::to_string(params.size()) + " params, " +
                          std::to_string(grads.size()) + " grads and " + std::to_string(state.size()) +
                          " state floats do not match");
  const double decay = config_.effective_weight_decay();
  // Scalars are computed in double once, then applied in float32 per element.
  if (config_.kind == OptimizerKind::sgd) {
    const float lr_f = static_cast<float>(lr), momentum = static_cast<float>(config_.momentum);
    const float keep = static_cast<float>(1 - config_.dampening);
    float* buffer = state.data();
    for (const ParameterRun& run : runs) {
      const float wd = run.weight_decay ? static_cast<float>(decay) : 0.0f;
      for (std::int64_t i = run.offset; i < run.offset + run.length; ++i) {
        float g = grads[i] + wd * params[i];
        if (momentum > 0) {
          buffer[i] = step == 1 ? g : momentum * buffer[i] + keep * g;
          g = config_.nesterov ? g + momentum * buffer[i] : buffer[i];
        }
        params[i] -= lr_f * g;
      }
    }
    return;
  }
  const float beta1 = static_cast<float>(config_.beta1), beta2 = static_cast<float>(config_.beta2);
  const float step_size = static_cast<float>(lr / (1 - std::pow(config_.beta1, static_cast<double>(step))));
  const float root_correction2 = static_cast<float>(std::sqrt(1 - std::pow(config_.beta2, static_cast<double>(step))));
  const float eps = static_cast<float>(config_.eps);
  const bool decoupled = config_.kind == OptimizerKind::adamw;
  float* m = state.data();
  float* v = state.data() + n;
  for (const ParameterRun& run : runs) {
    const float wd = run.weight_decay ? static_cast<float>(decay) : 0.0f;
    const float shrink = static_cast<float>(1 - lr * (run.weight_decay ? decay : 0.0));
    for (std::int64_t i = run.offset; i < run.offset + run.length; ++i) {
      float g = grads[i];
      if (decoupled) params[i] *= shrink;
      else g += wd * params[i];
      m[i] = beta1 * m[i] + (1 - beta1) * g;
      v[i] = beta2 * v[i] + (1 - beta2) * g * g;
      params[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_correction2 + eps);
    }
  }
}

}  // namespace zs
