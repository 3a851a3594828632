#include "zeroshard/nn/module.hpp"

namespace zs::nn {

Parameter::Parameter(std::string n, Shape s, bool decay) : name(std::move(n)), shape(std::move(s)), weight_decay(decay) {}

void Module::allocate_parameters() {
  for (Parameter* p : all_parameters(*this)) {
    p->value = Tensor(p->shape);
    p->grad = Tensor(p->shape);
    p->grad_stale = false;
  }
}

GradientWrite claim_gradient(Parameter& p) {
  const bool stale = p.grad_stale;
  p.grad_stale = false;
  return stale ? GradientWrite::overwrite : GradientWrite::accumulate;
}

Tensor& accumulable_gradient(Parameter& p) {
  if (claim_gradient(p) == GradientWrite::overwrite) p.grad.fill(0.0f);
  return p.grad;
}

void prepare_gradients_for_backward(Module& module) {
  if (!module.writes_stale_gradients())
    for (Parameter* p : module.parameters())
      if (p->grad_stale) accumulable_gradient(*p);
  for (Module* child : module.children()) prepare_gradients_for_backward(*child);
}

ForwardContext context_for_input(const ForwardContext& context, Module& module, bool input_gradient_needed) {
  ForwardContext result = context;
  result.input_requires_grad = input_gradient_needed || !module.children().empty();
  return result;
}

std::vector<Parameter*> all_parameters(Module& module) {
  std::vector<Parameter*> out = module.parameters();
  for (Module* child : module.children()) {
    auto inner = all_parameters(*child);
    out.insert(out.end(), inner.begin(), inner.end());
  }
  return out;
}

void initialize_parameters(Module& module, std::mt19937_64& random) {
  module.reset_parameters(random);
  for (Module* child : module.children()) initialize_parameters(*child, random);
}

void initialize_parameters(Module& module, std::uint64_t seed) {
  std::mt19937_64 random(seed);
  initialize_parameters(module, random);
}

std::optional<ActivationPlan> Module::plan_activations(const Shape& input, bool training) const {
  (void)training;
  // A module that caches nothing and keeps the shape (the common case for parameter-free
  // custom modules) is still unknown: its output shape is its own business.
  (void)input;
  return std::nullopt;
}

std::optional<ActivationPlan> plan_chain(const std::vector<const Module*>& modules, const Shape& input, bool training) {
  ActivationPlan total{input, 0};
  for (const Module* module : modules) {
    const std::optional<ActivationPlan> step = module->plan_activations(total.output, training);
    if (!step) return std::nullopt;
    total.output = step->output;
    total.bytes += step->bytes;
    total.kept = step->kept;  // released with keep_output, a chain keeps its last module's
  }
  return total;
}

}  // namespace zs::nn
