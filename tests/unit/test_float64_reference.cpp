// The float64 reference of tests/support/float64_reference.hpp, verified on its own (it is
// what the engine's clipping and tied-parameter tests trust): every gradient against central
// finite differences of its loss, the optimizers and clip_grad_norm against closed forms and
// values worked out by hand from PyTorch's definitions. Needs only GoogleTest.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "../support/float64_reference.hpp"

namespace zs::testing::reference {
namespace {

Vector random_vector(std::size_t n, std::mt19937_64& random, double scale) {
  std::uniform_real_distribution<double> uniform(-scale, scale);
  Vector v(n);
  for (double& x : v) x = uniform(random);
  return v;
}

double smallest_magnitude(const Vector& v) {
  double m = std::numeric_limits<double>::infinity();
  for (double x : v) m = std::min(m, std::abs(x));
  return m;
}

// Central differences (f(p + h e_i) - f(p - h e_i)) / 2h: error O(h^2 f''') + O(eps f / h).
// With h = 1e-5 and losses O(1) both are ~1e-10, far below the 1e-7 allowed; an analytic
// gradient missing a term is off by O(1e-2) or more.
template <class Loss>
void expect_matches_finite_differences(const Vector& p, const Vector& analytic, Loss&& loss) {
  constexpr double h = 1e-5;
  ASSERT_EQ(p.size(), analytic.size());
  Vector probe = p;
  double worst = 0;
  for (std::size_t i = 0; i < p.size(); ++i) {
    probe[i] = p[i] + h;
    const double up = loss(probe);
    probe[i] = p[i] - h;
    const double down = loss(probe);
    probe[i] = p[i];
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-7 + 1e-6 * std::abs(numeric)) << "element " << i;
    worst = std::max(worst, std::abs(analytic[i] - numeric));
  }
  ::testing::Test::RecordProperty("worst_abs_error", std::to_string(worst));
}

TEST(Float64Reference, MlpGradientMatchesFiniteDifferences) {
  const Mlp model{.in = 5, .hidden = 11, .classes = 7};
  std::mt19937_64 random(7);
  const Vector p = random_vector(static_cast<std::size_t>(model.size()), random, 0.6);
  const Vector x = random_vector(6 * 5, random, 1.5);
  const std::vector<std::int64_t> labels = {0, 6, 3, 3, 1, 5};
  // Finite differences must not straddle the ReLU's kink: every pre-activation stays farther
  // from 0 than any probe can move it (h x |x| x in < 1e-4).
  ASSERT_GT(smallest_magnitude(model.preactivations(p, x)), 1e-3);
  Vector grad;
  const double loss = model.loss(p, x, labels, &grad);
  EXPECT_GT(loss, 0);
  expect_matches_finite_differences(p, grad, [&](const Vector& q) { return model.loss(q, x, labels, nullptr); });
  // Biases' gradients are the column sums of the pre-activation gradients: not all zero here.
  double bias_mass = 0;
  for (std::int64_t i = 0; i < model.hidden; ++i) bias_mass += std::abs(grad[model.hidden * model.in + i]);
  EXPECT_GT(bias_mass, 1e-3);
}

TEST(Float64Reference, TiedModelGradientIsTheSumOfBothUsesAndMatchesFiniteDifferences) {
  const TiedLm model{.vocab = 13, .dim = 6};
  std::mt19937_64 random(11);
  Vector p = random_vector(static_cast<std::size_t>(model.size()), random, 0.8);
  // Tokens 12 never appears as input: its embedding row gets the head's gradient only.
  const std::vector<std::int64_t> tokens = {0, 3, 7, 7, 11, 2, 9, 5};
  const std::vector<std::int64_t> labels = {3, 7, 7, 11, 2, 9, 5, 12};
  ASSERT_GT(smallest_magnitude(model.preactivations(p, tokens)), 1e-3);
  Vector grad;
  model.loss(p, tokens, labels, &grad);
  expect_matches_finite_differences(p, grad, [&](const Vector& q) { return model.loss(q, tokens, labels, nullptr); });
  // Row 12 (never looked up) still moves through the head; row 7 (looked up twice) gets both.
  double row12 = 0;
  for (std::int64_t d = 0; d < model.dim; ++d) row12 += std::abs(grad[12 * model.dim + d]);
  EXPECT_GT(row12, 1e-4);
}

// Untying the model (the lookup reads table L, the head reads table H, both holding E's values)
// splits E's gradient into dLoss/dL + dLoss/dH, each measured alone by finite differences: the
// tied gradient must be their sum (both uses counted, each once).
TEST(Float64Reference, TiedGradientEqualsLookupPlusHeadContributions) {
  const TiedLm model{.vocab = 13, .dim = 6};
  std::mt19937_64 random(5);
  const Vector p = random_vector(static_cast<std::size_t>(model.size()), random, 0.8);
  const std::vector<std::int64_t> tokens = {1, 4, 4, 8, 12};
  const std::vector<std::int64_t> labels = {4, 4, 8, 12, 0};
  ASSERT_GT(smallest_magnitude(model.preactivations(p, tokens)), 1e-3);
  Vector tied;
  model.loss(p, tokens, labels, &tied);
  const std::int64_t V = model.vocab, D = model.dim, rows = 5;
  auto untied_loss = [&](const Vector& lookup, const Vector& head) {
    Vector e(rows * D), h(rows * D), a(rows * D), z(rows * V);
    embedding_forward(tokens, lookup.data(), V, D, e.data());
    linear_forward(e.data(), rows, D, p.data() + V * D, p.data() + V * D + D * D, D, h.data());
    relu_forward(h.data(), rows * D, a.data());
    linear_forward(a.data(), rows, D, head.data(), nullptr, V, z.data());
    return softmax_cross_entropy(z.data(), rows, V, labels, nullptr);
  };
  const Vector table(p.begin(), p.begin() + V * D);
  auto derivative = [&](std::size_t i, bool of_lookup) {
    Vector moved = table;
    moved[i] = table[i] + 1e-5;
    const double up = of_lookup ? untied_loss(moved, table) : untied_loss(table, moved);
    moved[i] = table[i] - 1e-5;
    const double down = of_lookup ? untied_loss(moved, table) : untied_loss(table, moved);
    return (up - down) / 2e-5;
  };
  double lookup_mass = 0, head_mass = 0;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const double lookup_part = derivative(i, true), head_part = derivative(i, false);
    EXPECT_NEAR(tied[i], lookup_part + head_part, 1e-7 + 1e-6 * std::abs(tied[i])) << "element " << i;
    lookup_mass += std::abs(lookup_part);
    head_mass += std::abs(head_part);
    // Rows never looked up (all but 1, 4, 8, 12) get no lookup part.
    const std::size_t row = i / static_cast<std::size_t>(D);
    if (row != 1 && row != 4 && row != 8 && row != 12) EXPECT_NEAR(lookup_part, 0.0, 1e-9) << "element " << i;
  }
  EXPECT_GT(lookup_mass, 1e-3) << "both uses contribute";
  EXPECT_GT(head_mass, 1e-3);
}

TEST(Float64Reference, CrossEntropyOfEqualLogitsIsLogClasses) {
  const Vector z(3 * 13, 0.25);
  Vector dz(z.size());
  EXPECT_NEAR(softmax_cross_entropy(z.data(), 3, 13, {0, 5, 12}, dz.data()), std::log(13.0), 1e-15);
  EXPECT_NEAR(dz[0], (1.0 / 13 - 1) / 3, 1e-15);
  EXPECT_NEAR(dz[1], 1.0 / 13 / 3, 1e-15);
}

TEST(Float64Reference, ClipGradNormFollowsTorch) {
  // 2-norm: ||(3, 4)|| = 5; max_norm 1 scales by 1 / (5 + 1e-6).
  Vector g = {3, 4};
  ClipResult r = clip_grad_norm(g, 1.0, 2);
  EXPECT_DOUBLE_EQ(r.norm, 5);
  EXPECT_TRUE(r.clipped);
  EXPECT_DOUBLE_EQ(r.coefficient, 1 / (5 + 1e-6));
  EXPECT_DOUBLE_EQ(g[0], 3 / (5 + 1e-6));
  EXPECT_DOUBLE_EQ(g[1], 4 / (5 + 1e-6));
  // inf-norm: max |g| = 4 (a negative element).
  g = {3, -4, 1};
  r = clip_grad_norm(g, 2.0, std::numeric_limits<double>::infinity());
  EXPECT_DOUBLE_EQ(r.norm, 4);
  EXPECT_DOUBLE_EQ(g[1], -4 * 2 / (4 + 1e-6));
  // Below the threshold (coefficient >= 1): untouched. max_norm exactly the norm: coefficient
  // 5 / (5 + 1e-6) < 1, so torch still scales (by a hair).
  g = {3, 4};
  r = clip_grad_norm(g, 10.0, 2);
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(g, (Vector{3, 4}));
  r = clip_grad_norm(g, 5.0, 2);
  EXPECT_TRUE(r.clipped);
  // max_norm 0: measured, never clipped.
  g = {30, 40};
  r = clip_grad_norm(g, 0.0, 2);
  EXPECT_DOUBLE_EQ(r.norm, 50);
  EXPECT_FALSE(r.clipped);
  EXPECT_EQ(g, (Vector{30, 40}));
  // Non-finite gradients give a non-finite norm for both types and are never scaled here.
  for (double type : {2.0, std::numeric_limits<double>::infinity()}) {
    g = {1, std::numeric_limits<double>::quiet_NaN(), 2};
    EXPECT_TRUE(std::isnan(clip_grad_norm(g, 1.0, type).norm)) << type;
    g = {1, -std::numeric_limits<double>::infinity()};
    EXPECT_TRUE(std::isinf(clip_grad_norm(g, 1.0, type).norm)) << type;
  }
}

TEST(Float64Reference, SgdMatchesClosedForms) {
  const std::vector<bool> decay = {true, false};
  // Plain with weight decay on the first element only: p -= lr (g + wd p).
  Sgd plain({.weight_decay = 0.1});
  Vector p = {2.0, 2.0};
  plain.step(p, {0.5, 0.5}, decay, 0.1);
  EXPECT_DOUBLE_EQ(p[0], 2.0 - 0.1 * (0.5 + 0.1 * 2.0));
  EXPECT_DOUBLE_EQ(p[1], 2.0 - 0.1 * 0.5);
  // Momentum, constant gradient g: buf_1 = g (torch's first step), buf_t = mu buf + g, so
  // buf_t = g (1 - mu^t) / (1 - mu) and p_T = p_0 - lr g sum_t (1 - mu^t) / (1 - mu).
  Sgd momentum({.momentum = 0.9});
  p = {1.0, -1.0};
  double expected_shift = 0;
  for (int t = 1; t <= 6; ++t) {
    momentum.step(p, {0.3, 0.3}, decay, 0.05);
    expected_shift += 0.05 * 0.3 * (1 - std::pow(0.9, t)) / (1 - 0.9);
    EXPECT_NEAR(p[0], 1.0 - expected_shift, 1e-14) << t;
    EXPECT_NEAR(momentum.momentum_buffer()[0], 0.3 * (1 - std::pow(0.9, t)) / 0.1, 1e-14) << t;
  }
  // Dampening: buf_1 = g, buf_2 = mu g + (1 - d) g.
  Sgd damped({.momentum = 0.5, .dampening = 0.25});
  p = {0.0, 0.0};
  damped.step(p, {1.0, 1.0}, decay, 1.0);
  damped.step(p, {1.0, 1.0}, decay, 1.0);
  EXPECT_DOUBLE_EQ(p[0], -(1.0 + (0.5 + 0.75)));
}

TEST(Float64Reference, AdamWMatchesClosedForms) {
  // Constant gradient g: m_t = (1 - b1^t) g and v_t = (1 - b2^t) g^2, so the bias-corrected
  // step is lr g / (|g| + eps) every time; decoupled decay first multiplies p by 1 - lr wd
  // (decayed elements only).
  AdamW adamw({.weight_decay = 0.1});
  const std::vector<bool> decay = {true, false, true};
  const Vector g = {0.5, -2.0, 1e-3};
  Vector p = {1.0, 1.0, -0.5}, expected = p;
  const double lr = 0.01;
  for (int t = 1; t <= 5; ++t) {
    adamw.step(p, g, decay, lr);
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (decay[i]) expected[i] *= 1 - lr * 0.1;
      expected[i] -= lr * g[i] / (std::abs(g[i]) + 1e-8);
      EXPECT_NEAR(p[i], expected[i], 1e-13) << "step " << t << " element " << i;
    }
    EXPECT_NEAR(adamw.exp_avg()[0], (1 - std::pow(0.9, t)) * 0.5, 1e-15);
    EXPECT_NEAR(adamw.exp_avg_sq()[0], (1 - std::pow(0.999, t)) * 0.25, 1e-15);
  }
  // A worked first step with a changing gradient afterwards (by hand from torch.optim.AdamW):
  // step 1: m = 0.1 g1, v = 0.001 g1^2 -> p -= lr g1/(|g1| + eps); step 2 with g2:
  // m = 0.09 g1 + 0.1 g2, v = 0.000999 g1^2 + 0.001 g2^2, m_hat = m / 0.19, v_hat = v / 0.001999.
  AdamW two({.weight_decay = 0});
  Vector q = {0.0};
  two.step(q, {1.0}, {true}, 0.1);
  two.step(q, {-3.0}, {true}, 0.1);
  const double m = 0.09 * 1 + 0.1 * -3, v = 0.000999 * 1 + 0.001 * 9;
  const double step2 = 0.1 * (m / 0.19) / (std::sqrt(v / (1 - 0.999 * 0.999)) + 1e-8);
  EXPECT_NEAR(q[0], -0.1 * 1 / (1 + 1e-8) - step2, 1e-13);
}

TEST(Float64Reference, DecayMaskAndWorstRelativeError) {
  const Mlp model{.in = 2, .hidden = 3, .classes = 2};
  const std::vector<bool> mask = decay_mask(model.slots());
  ASSERT_EQ(static_cast<std::int64_t>(mask.size()), model.size());
  EXPECT_TRUE(mask[0]);           // fc1.weight
  EXPECT_FALSE(mask[6]);          // fc1.bias
  EXPECT_TRUE(mask[9]);           // fc2.weight
  EXPECT_FALSE(mask[15]);         // fc2.bias
  const TiedLm lm{.vocab = 13, .dim = 6};
  EXPECT_EQ(lm.size(), 13 * 6 + 6 * 6 + 6);
  EXPECT_DOUBLE_EQ(worst_relative_error(std::vector<float>{1.0f, 0.0f}, {1.0, 1e-3}, 1e-2), 0.1);
  EXPECT_TRUE(std::isinf(worst_relative_error(std::vector<float>{std::nanf("")}, {1.0}, 1e-2)));
}

}  // namespace
}  // namespace zs::testing::reference
