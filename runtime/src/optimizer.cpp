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
  auto fail = [](const std::string& what) { throw InvalidArgument("optimizer.params." + what); };  // the documented keys
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

namespace {
// Runs of at least this many elements are updated by the compute threads
// (nn/compute_threads.hpp, through OpenMP): each thread a contiguous slice, the same arithmetic
// per element, so the result does not depend on the thread count. Shorter runs (biases, norm
// gains) are not worth waking the threads for.
constexpr std::int64_t kParallelElements = std::int64_t{1} << 15;
}  // namespace

void Optimizer::update(std::span<float> params, std::span<const float> grads, std::span<float> state,
                       const std::vector<ParameterRun>& runs, double lr, std::int64_t step,
                       GradientFactors factors) const {
  const auto n = static_cast<std::int64_t>(params.size());
  if (static_cast<std::int64_t>(grads.size()) != n ||
      static_cast<std::int64_t>(state.size()) != n * state_per_element())
    throw InvalidArgument("Optimizer::update: " + std::to_string(params.size()) + " params, " +
                          std::to_string(grads.size()) + " grads and " + std::to_string(state.size()) +
                          " state floats do not match");
  const double decay = config_.effective_weight_decay();
  // Locals: the loops below must not reread them through memory `params` may alias.
  const float unscale = factors.unscale, clip = factors.clip;
  // The arithmetic is PyTorch 1.13's single-tensor (foreach=False) CPU path, op for op
  // (torch/optim/sgd.py, adam.py, adamw.py): Python-double scalars are combined in double and
  // cast to float32 once (at::Scalar::to<float>), and every tensor op rounds its float32 result
  // (ATen's reference kernels, ATEN_CPU_CAPABILITY=default; its AVX2/AVX-512 kernels fuse
  // `a + alpha * b` into one FMA rounding, which this file, built with -ffp-contract=off, does
  // not). tests/unit/test_torch_golden.cpp checks both against torch's own output.
  if (config_.kind == OptimizerKind::sgd) {
    // param.add_(d_p, alpha=-lr): p + float(-lr) * d_p, i.e. p - float(lr) * d_p.
    const float lr_f = static_cast<float>(lr), momentum = static_cast<float>(config_.momentum);
    // buf.mul_(momentum).add_(d_p, alpha=1 - dampening): 1 - dampening in double, then float.
    const float keep = static_cast<float>(1 - config_.dampening);
    const bool first = step == 1;  // torch: the momentum buffer does not exist yet, buf = d_p
    // Locals, not members: a store through `params` may alias config_ as far as the compiler
    // knows, which kept this loop scalar (14.7 ns/element against Adam's 1.6, zs_kernel_bench).
    const bool nesterov = config_.nesterov;
    float* buffer = state.data();
    for (const ParameterRun& run : runs) {
      // d_p = grad.add(param, alpha=weight_decay), only when weight_decay != 0 (as torch).
      const float wd = run.weight_decay ? static_cast<float>(decay) : 0.0f;
      const bool l2 = wd != 0.0f;
      const std::int64_t begin = run.offset, end = run.offset + run.length;
#pragma omp parallel for schedule(static) if (end - begin >= kParallelElements)
      for (std::int64_t i = begin; i < end; ++i) {
        const float grad = (grads[i] * unscale) * clip;
        float g = l2 ? grad + wd * params[i] : grad;
        if (momentum > 0) {
          buffer[i] = first ? g : buffer[i] * momentum + keep * g;
          g = nesterov ? g + momentum * buffer[i] : buffer[i];  // d_p.add(buf, alpha=momentum)
        }
        params[i] -= lr_f * g;
      }
    }
    return;
  }
  const float beta1 = static_cast<float>(config_.beta1), beta2 = static_cast<float>(config_.beta2);
  // torch passes alpha=1 - beta1 and value=1 - beta2, computed in double and cast to float once:
  // float(1 - 0.999) = 0.001 rounded, not 1 - 0.999f = 0.00099998713 (which put v 1.3e-5 and
  // every step 6.5e-6 relative off torch).
  const float one_minus_beta1 = static_cast<float>(1 - config_.beta1);
  const float one_minus_beta2 = static_cast<float>(1 - config_.beta2);
  // step_size = lr / (1 - beta1**step) and sqrt(1 - beta2**step) in double (Python floats).
  const float step_size = static_cast<float>(lr / (1 - std::pow(config_.beta1, static_cast<double>(step))));
  const float root_correction2 = static_cast<float>(std::sqrt(1 - std::pow(config_.beta2, static_cast<double>(step))));
  const float eps = static_cast<float>(config_.eps);
  const bool decoupled = config_.kind == OptimizerKind::adamw;
  float* m = state.data();
  float* v = state.data() + n;
  for (const ParameterRun& run : runs) {
    const double run_decay = run.weight_decay ? decay : 0.0;
    const float wd = static_cast<float>(run_decay);
    const bool l2 = !decoupled && wd != 0.0f;  // Adam: grad.add(param, alpha=wd) only if wd != 0
    // AdamW: param.mul_(1 - lr * weight_decay), the factor in double (1 exactly without decay).
    const float shrink = static_cast<float>(1 - lr * run_decay);
    const std::int64_t begin = run.offset, end = run.offset + run.length;
#pragma omp parallel for schedule(static) if (end - begin >= kParallelElements)
    for (std::int64_t i = begin; i < end; ++i) {
      const float grad = (grads[i] * unscale) * clip;
      const float g = l2 ? grad + wd * params[i] : grad;
      if (decoupled) params[i] *= shrink;
      m[i] = m[i] * beta1 + one_minus_beta1 * g;      // exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
      v[i] = v[i] * beta2 + one_minus_beta2 * g * g;  // .mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
      // denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps);
      // param.addcdiv_(exp_avg, denom, value=-step_size): p + (-step_size * m) / denom.
      params[i] -= step_size * m[i] / (std::sqrt(v[i]) / root_correction2 + eps);
    }
  }
}

}  // namespace zs
