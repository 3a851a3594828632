// nn::Module::plan_activations of every built-in module against the module itself: a real
// training forward on the planned input shape, then activation_bytes() and the output shape.
#include <gtest/gtest.h>

#include <memory>
#include <random>

#include "zeroshard/nn/layers.hpp"
#include "zeroshard/nn/transformer.hpp"

namespace zs::nn {
namespace {

void expect_plan_matches_forward(Module& module, const Shape& input, float max_index = 0) {
  module.allocate_parameters();
  initialize_parameters(module, 7);
  Tensor x(input);
  std::mt19937_64 random(3);
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x.data()[i] = max_index > 0 ? static_cast<float>(random() % static_cast<std::uint64_t>(max_index))
                                : std::uniform_real_distribution<float>(-1, 1)(random);
  for (bool training : {false, true}) {
    const std::optional<ActivationPlan> plan = module.plan_activations(input, training);
    ASSERT_TRUE(plan.has_value()) << module.name();
    Module& fresh = module;  // caches are overwritten by each forward
    const ForwardContext context{.training = training, .random = &random};
    const Tensor& y = fresh.forward(x, context);
    EXPECT_EQ(plan->output, y.shape()) << module.name() << " training " << training;
    if (!training) continue;  // evaluation after training keeps a stale dropout mask: planned for training only
    EXPECT_EQ(plan->bytes, fresh.activation_bytes()) << module.name();
    fresh.release_activations(/*keep_output=*/true);  // what activation checkpointing keeps
    EXPECT_EQ(plan->kept, fresh.activation_bytes()) << module.name();
  }
}

TEST(ActivationPlans, LayersMatchTheirForward) {
  Linear linear("fc", 12, 5);
  expect_plan_matches_forward(linear, {3, 4, 12});
  ReLU relu("relu");
  expect_plan_matches_forward(relu, {6, 7});
  GELU gelu("gelu");
  expect_plan_matches_forward(gelu, {2, 9});
  LayerNorm norm("ln", 9);
  expect_plan_matches_forward(norm, {2, 3, 9});
  Embedding embedding("wte", 20, 6);
  expect_plan_matches_forward(embedding, {2, 5}, 20);
  Dropout dropout("drop", 0.3f);
  expect_plan_matches_forward(dropout, {4, 8});
  Sequential seq("seq");
  seq.add<Linear>("a", 8, 16);
  seq.add<GELU>("g");
  seq.add<Dropout>("d", 0.1f);
  seq.add<Linear>("b", 16, 4);
  expect_plan_matches_forward(seq, {5, 8});
}

TEST(ActivationPlans, TransformerModulesMatchTheirForward) {
  CausalSelfAttention attention("attn", 16, 4, 0.1f);
  expect_plan_matches_forward(attention, {2, 6, 16});
  TransformerBlock block("h0", 16, 4, 0.1f);
  expect_plan_matches_forward(block, {2, 6, 16});
  TokenPositionEmbedding embed("embed", 30, 8, 16, 0.1f);
  expect_plan_matches_forward(embed, {3, 8}, 30);
}

TEST(ActivationPlans, UnknownForAShapeTheModuleWouldRefuse) {
  Linear linear("fc", 12, 5);
  EXPECT_FALSE(linear.plan_activations({3, 11}, true).has_value());
  TransformerBlock block("h0", 16, 4);
  EXPECT_FALSE(block.plan_activations({2, 16}, true).has_value());
}

}  // namespace
}  // namespace zs::nn
