// Layer backward passes against central finite differences of a scalar probe loss
// L = sum_i c_i * y_i (c fixed, random), accumulated in float64.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "zeroshard/error.hpp"
#include "zeroshard/nn/layers.hpp"

namespace zs::nn {
namespace {

double probe_loss(Module& m, const Tensor& x, const std::vector<float>& c) {
  ForwardContext context{.training = false, .random = nullptr};
  const Tensor& y = m.forward(x, context);
  double total = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) total += static_cast<double>(c[i]) * y.data()[i];
  return total;
}

// Checks d(probe)/d(input) and d(probe)/d(each parameter) element by element.
void check_gradients(Module& m, Tensor x, bool input_has_gradient = true, double tolerance = 2e-2) {
  std::mt19937_64 random(3);
  m.allocate_parameters();
  initialize_parameters(m, 11);
  ForwardContext context{.training = false, .random = nullptr};
  const Tensor& y = m.forward(x, context);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> c(y.numel());
  for (float& v : c) v = uniform(random);
  Tensor grad_output(y.shape());
  std::copy(c.begin(), c.end(), grad_output.data());
  const Tensor grad_input = m.backward(grad_output);

  const float h = 1e-2f;
  auto numeric = [&](float& slot) {
    const float saved = slot;
    slot = saved + h;
    const double plus = probe_loss(m, x, c);
    slot = saved - h;
    const double minus = probe_loss(m, x, c);
    slot = saved;
    return (plus - minus) / (2 * h);
  };
  auto close = [&](double analytic, double expected) {
    return std::abs(analytic - expected) <= tolerance * std::max(1.0, std::abs(expected));
  };
  if (input_has_gradient)
    for (std::int64_t i = 0; i < x.numel(); ++i) {
      const double want = numeric(x.data()[i]);
      ASSERT_TRUE(close(grad_input.data()[i], want)) << m.name() << " input " << i << ": " << grad_input.data()[i] << " vs " << want;
    }
  for (Parameter* p : all_parameters(m))
    for (std::int64_t i = 0; i < p->value.numel(); ++i) {
      const double want = numeric(p->value.data()[i]);
      ASSERT_TRUE(close(p->grad.data()[i], want)) << p->name << " " << i << ": " << p->grad.data()[i] << " vs " << want;
    }
}

Tensor random_input(Shape shape, unsigned seed) {
  Tensor x(std::move(shape));
  std::mt19937_64 random(seed);
  std::normal_distribution<float> normal(0, 1);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = normal(random);
  return x;
}

TEST(Layers, LinearGradients) {
  Linear m("fc", 5, 3);
  check_gradients(m, random_input({4, 5}, 1));
}

// An input nobody differentiates (ForwardContext::input_requires_grad = false, the engine's
// batch): Linear skips dx, returns an empty tensor, and its parameter gradients are those of
// the full backward, bit for bit. A Sequential passes the flag to its first child only.
TEST(Layers, LinearSkipsTheGradientOfAnInputNobodyReads) {
  auto gradients = [](bool input_requires_grad) {
    Sequential m("mlp");
    m.add<Linear>("fc1", 5, 4);
    m.add<Linear>("fc2", 4, 3);
    m.allocate_parameters();
    initialize_parameters(m, 11);
    ForwardContext context{.training = true, .random = nullptr, .input_requires_grad = input_requires_grad};
    const Tensor x = random_input({4, 5}, 1);
    const Tensor& y = m.forward(x, context);
    Tensor grad_output(y.shape());
    for (std::int64_t i = 0; i < grad_output.numel(); ++i) grad_output.data()[i] = 0.1f * static_cast<float>(i % 5);
    const Tensor grad_input = m.backward(grad_output);
    std::vector<float> values(grad_input.data(), grad_input.data() + grad_input.numel());
    for (Parameter* p : all_parameters(m)) values.insert(values.end(), p->grad.data(), p->grad.data() + p->grad.numel());
    return std::pair(grad_input.numel(), values);
  };
  const auto [full_numel, full] = gradients(true);
  const auto [skipped_numel, skipped] = gradients(false);
  EXPECT_EQ(full_numel, 4 * 5);
  EXPECT_EQ(skipped_numel, 0);
  // Parameter gradients (after the full run's dx): identical.
  EXPECT_EQ(std::vector<float>(full.begin() + full_numel, full.end()), skipped);
}

// Parameter::grad_stale (the engine's "no gradient yet this step", instead of clearing its
// buffers): a built-in layer writes a stale gradient whole, so garbage in it (NaN here) never
// reaches the result, and the gradients equal those of a backward into zeroed storage, bit for
// bit; a gradient not stale is added to. Covers the GEMM (Linear), the row sums (bias,
// LayerNorm) and the scatter (Embedding), and a weight two modules share (TiedLinear's LM head
// writes it first, the Embedding then adds its rows).
TEST(Layers, StaleGradientsAreWrittenWholeNotAddedTo) {
  Sequential m("model");
  auto& embedding = m.add<Embedding>("wte", 6, 4);
  m.add<LayerNorm>("ln", 4);
  m.add<Linear>("fc", 4, 4);
  m.add<TiedLinear>("head", embedding.weight, /*bias=*/true);
  m.allocate_parameters();
  initialize_parameters(m, 5);
  Tensor indices({3});
  const float ids[] = {1, 4, 1};
  std::copy(ids, ids + 3, indices.data());
  const ForwardContext context{.training = true, .random = nullptr};
  const Tensor& y = m.forward(indices, context);
  Tensor grad_output(y.shape());
  for (std::int64_t i = 0; i < grad_output.numel(); ++i) grad_output.data()[i] = 0.01f * static_cast<float>(i % 7 - 3);
  auto gradients = [&] {
    std::vector<float> all;
    for (Parameter* p : all_parameters(m)) all.insert(all.end(), p->grad.data(), p->grad.data() + p->grad.numel());
    return all;
  };
  m.backward(grad_output);
  const std::vector<float> reference = gradients();  // into zeroed storage

  for (Parameter* p : all_parameters(m)) {
    p->grad.fill(std::nanf(""));
    p->grad_stale = true;
  }
  m.backward(grad_output);
  EXPECT_EQ(gradients(), reference);
  for (Parameter* p : all_parameters(m)) EXPECT_FALSE(p->grad_stale) << p->name;

  m.backward(grad_output);  // not stale: accumulates
  const std::vector<float> twice = gradients();
  ASSERT_EQ(twice.size(), reference.size());
  for (std::size_t i = 0; i < twice.size(); ++i) EXPECT_FLOAT_EQ(twice[i], 2 * reference[i]) << i;
}

// A module that simply adds into `grad` (writes_stale_gradients() false, every custom module
// written before grad_stale existed): prepare_gradients_for_backward zeroes its stale
// gradients, also inside a container, and leaves a built-in layer's stale gradient to it.
TEST(Layers, PrepareGradientsZeroesOnlyForModulesThatAddIntoThem) {
  class AddsIntoGrad final : public Module {
   public:
    AddsIntoGrad() : Module("adds"), scale("adds.scale", {2}) {}
    const Tensor& forward(const Tensor& input, const ForwardContext&) override { return input; }
    const Tensor& backward(const Tensor& grad_output) override {
      for (std::int64_t i = 0; i < 2; ++i) scale.grad.data()[i] += 1.0f;
      return grad_output;
    }
    std::vector<Parameter*> parameters() override { return {&scale}; }
    Parameter scale;
  };
  Sequential m("model");
  auto& adds = m.add<AddsIntoGrad>();
  auto& fc = m.add<Linear>("fc", 2, 2);
  m.allocate_parameters();
  for (Parameter* p : all_parameters(m)) {
    p->grad.fill(std::nanf(""));
    p->grad_stale = true;
  }
  prepare_gradients_for_backward(m);
  EXPECT_FALSE(adds.scale.grad_stale);
  EXPECT_EQ(adds.scale.grad.data()[0], 0.0f);
  EXPECT_TRUE(fc.weight.grad_stale);  // Linear writes it whole itself
  EXPECT_TRUE(std::isnan(fc.weight.grad.data()[0]));
  adds.backward(Tensor({1, 2}));
  EXPECT_EQ(adds.scale.grad.data()[1], 1.0f);
}

TEST(Layers, GeluGradients) {
  GELU m("gelu");
  check_gradients(m, random_input({3, 7}, 2));
}

TEST(Layers, ReluGradientsAwayFromTheKink) {
  ReLU m("relu");
  Tensor x = random_input({3, 7}, 3);
  for (std::int64_t i = 0; i < x.numel(); ++i)
    if (std::abs(x.data()[i]) < 0.05f) x.data()[i] = 0.5f;  // finite differences cannot straddle 0
  check_gradients(m, x);
}

TEST(Layers, LayerNormGradients) {
  LayerNorm m("ln", 6);
  m.allocate_parameters();
  check_gradients(m, random_input({4, 6}, 4));
}

TEST(Layers, LayerNormMatchesDefinition) {
  LayerNorm m("ln", 4);
  m.allocate_parameters();
  initialize_parameters(m, 1);
  Tensor x({1, 4});
  for (int i = 0; i < 4; ++i) x.data()[i] = static_cast<float>(i);  // mean 1.5, var 1.25
  const Tensor& y = m.forward(x, {.training = false, .random = nullptr});
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(y.data()[i], (i - 1.5) / std::sqrt(1.25 + 1e-5), 1e-5);
}

TEST(Layers, EmbeddingGradientsAndBadIndex) {
  Embedding m("emb", 5, 3);
  Tensor indices({4});
  const float ids[] = {0, 3, 3, 4};
  std::copy(ids, ids + 4, indices.data());
  check_gradients(m, indices, /*input_has_gradient=*/false);
  indices.data()[1] = 7;
  EXPECT_THROW(m.forward(indices, ForwardContext{.training = false, .random = nullptr}), InvalidArgument);
}

TEST(Layers, DropoutKeepsExpectationAndIsIdentityInEval) {
  Dropout m("drop", 0.25f);
  Tensor x({1, 100000});
  x.fill(1.0f);
  std::mt19937_64 random(5);
  const Tensor& y = m.forward(x, {.training = true, .random = &random});
  double sum = 0;
  for (std::int64_t i = 0; i < y.numel(); ++i) sum += y.data()[i];
  EXPECT_NEAR(sum / y.numel(), 1.0, 0.01);
  const Tensor& eval = m.forward(x, {.training = false, .random = nullptr});
  EXPECT_EQ(eval.data()[7], 1.0f);
  EXPECT_THROW(Dropout("bad", 1.0f), InvalidArgument);
}

TEST(Layers, SequentialChainsAndCrossEntropyMatchesReference) {
  Sequential model("mlp");
  model.add<Linear>("fc1", 4, 8);
  model.add<GELU>("act");
  model.add<Linear>("fc2", 8, 3);
  check_gradients(model, random_input({5, 4}, 6));

  SoftmaxCrossEntropy loss;
  Tensor logits({2, 3});
  const float z[] = {1, 2, 3, 0, 0, 0};
  std::copy(z, z + 6, logits.data());
  const float value = loss.forward(logits, {2, 1});
  const double want = (-std::log(std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0))) + std::log(3.0)) / 2;
  EXPECT_NEAR(value, want, 1e-6);
  EXPECT_NEAR(loss.gradient().data()[2], (std::exp(3.0) / (std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 1) / 2, 1e-6);
  EXPECT_EQ(loss.correct(), 1);  // row 0 right, row 1 a tie resolved to class 0
}

}  // namespace
}  // namespace zs::nn
