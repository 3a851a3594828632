// plan_activations of the built-in modules: each mirrors its module's activation_bytes() (what
// its forward caches for backward), from shapes alone, for the engine's memory planner. Kept
// next to one another so that a change to what a module caches is checked against one file;
// tests/unit/test_activation_plans.cpp runs each forward and compares.
#include <optional>

#include "zeroshard/nn/layers.hpp"
#include "zeroshard/nn/transformer.hpp"
#include "layer_kernels.hpp"

namespace zs::nn {

namespace {

constexpr std::int64_t kFloat = 4;
using detail::with_last;

}  // namespace

std::optional<ActivationPlan> Affine::plan_activations(const Shape& input, bool) const {
  if (input.empty() || input.back() != in_) return std::nullopt;
  const Shape output = with_last(input, out_);
  return ActivationPlan{output, (numel_of(input) + numel_of(output)) * kFloat, numel_of(output) * kFloat};
}

std::optional<ActivationPlan> ReLU::plan_activations(const Shape& input, bool) const {
  return ActivationPlan{input, numel_of(input) * kFloat, numel_of(input) * kFloat};
}

std::optional<ActivationPlan> GELU::plan_activations(const Shape& input, bool) const {
  return ActivationPlan{input, 2 * numel_of(input) * kFloat, numel_of(input) * kFloat};  // input and output
}

std::optional<ActivationPlan> LayerNorm::plan_activations(const Shape& input, bool) const {
  if (input.empty() || input.back() != features_) return std::nullopt;
  return ActivationPlan{input, 2 * numel_of(input) * kFloat, numel_of(input) * kFloat};  // normalised input, output
}

std::optional<ActivationPlan> Embedding::plan_activations(const Shape& input, bool) const {
  Shape output = input;
  output.push_back(dim_);
  return ActivationPlan{output, numel_of(output) * kFloat, numel_of(output) * kFloat};
}

std::optional<ActivationPlan> Dropout::plan_activations(const Shape& input, bool training) const {
  const bool active = training && p_ > 0.0f;  // the mask is drawn only then
  return ActivationPlan{input, (active ? 2 : 1) * numel_of(input) * kFloat, numel_of(input) * kFloat};
}

std::optional<ActivationPlan> Sequential::plan_activations(const Shape& input, bool training) const {
  std::vector<const Module*> modules;
  for (const auto& child : children_) modules.push_back(child.get());
  return plan_chain(modules, input, training);
}

std::optional<ActivationPlan> CausalSelfAttention::plan_activations(const Shape& input, bool training) const {
  if (input.size() != 3 || input[2] != n_embd_) return std::nullopt;
  const std::optional<ActivationPlan> qkv = c_attn.plan_activations(input, training);
  const std::optional<ActivationPlan> projection = c_proj.plan_activations(input, training);
  if (!qkv || !projection) return std::nullopt;
  const std::int64_t scores = input[0] * n_head_ * input[1] * input[1];  // probs, and the mask with dropout
  const bool active = training && p_ > 0.0f;
  return ActivationPlan{projection->output, qkv->bytes + projection->bytes + (active ? 2 : 1) * scores * kFloat,
                        projection->kept};
}

std::optional<ActivationPlan> TransformerBlock::plan_activations(const Shape& input, bool training) const {
  if (input.size() != 3 || input[2] != n_embd_) return std::nullopt;
  const std::optional<ActivationPlan> attention = plan_chain({&ln_1, &attn, &attn_resid_dropout}, input, training);
  const std::optional<ActivationPlan> mlp =
      plan_chain({&ln_2, &mlp_fc, &mlp_gelu, &mlp_proj, &mlp_dropout}, input, training);
  if (!attention || !mlp) return std::nullopt;
  return ActivationPlan{input, attention->bytes + mlp->bytes + 2 * numel_of(input) * kFloat,  // + residual, output
                        numel_of(input) * kFloat};
}

std::optional<ActivationPlan> TokenPositionEmbedding::plan_activations(const Shape& input, bool training) const {
  if (input.size() != 2 || input[1] > block_size_) return std::nullopt;
  const std::optional<ActivationPlan> tokens = wte.plan_activations(input, training);
  const std::optional<ActivationPlan> positions = wpe.plan_activations({input[1]}, training);
  if (!tokens || !positions) return std::nullopt;
  const std::optional<ActivationPlan> dropped = dropout.plan_activations(tokens->output, training);
  // Released with keep_output it keeps the sum before dropout too.
  return ActivationPlan{tokens->output,
                        tokens->bytes + positions->bytes + dropped->bytes + numel_of(tokens->output) * kFloat,
                        dropped->kept + numel_of(tokens->output) * kFloat};
}

}  // namespace zs::nn
