// Gradient clipping and the global gradient norm under mpirun, against the independent float64
// reference of tests/support/float64_reference.hpp (never against the engine itself):
// - gradient_norm() at every optimizer step is the norm (2 or inf) of the gradient averaged
//   over ranks and micro-steps, each parameter counted once (no padding, no replicas), and
//   the parameters after K steps are those of torch's clip_grad_norm_ + SGD(momentum), at
//   stages 0-3, clipping off / 2-norm / inf-norm, accumulation 1 and 2;
// - stages 0-3 agree bit for bit (norms and parameters);
// - a non-finite gradient on one rank skips the update on every rank (parameters, optimizer
//   state, step count and LR position untouched, gradients dropped) and training continues
//   like the reference that skipped that step;
// - the configuration keys.
//
// Model: Linear(5, 11) -> ReLU -> Linear(11, 7), sizes that divide by neither 3 nor 4, so
// every unit's shards are padded. Data: global sample i is the same on every rank; at
// micro-step a of step s, rank r of n takes kMicro samples from ((s A + a) n + r) kMicro, so
// step s's global batch is the contiguous n A kMicro samples from s n A kMicro, and the mean
// gradient over it is what the engine's average (sum over ranks and micro-steps divided by
// n A) must equal.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../support/float64_reference.hpp"
#include "../support/mpi_test.hpp"
#include "../support/small_mlp.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

namespace ref = testing::reference;

constexpr std::int64_t kIn = 5, kHidden = 11, kClasses = 7, kMicro = 3;
constexpr int kSteps = 4;
constexpr double kLr = 0.1, kMomentum = 0.9, kWeightDecay = 0.01, kGamma = 0.8;
constexpr double kInf = std::numeric_limits<double>::infinity();
const ref::Mlp kReference{.in = kIn, .hidden = kHidden, .classes = kClasses};

// Tolerances against the float64 reference. The engine computes in float32: each gradient
// element carries a relative rounding error of a few ulps per summation level (micro-batch
// rows, ranks, micro-steps: ~1e-7 here), and so does the norm (a sum of squares is no worse
// than its worst term); 1e-5 leaves two orders of magnitude for that, while any semantic error
// is far above it (a replicated gradient counted n times scales the 2-norm by sqrt(n), a missing
// 1/(n A) by n A, a clip coefficient applied or not changes a step by 1 - coef >= 70%, a
// clip applied after weight decay instead of before changes it by >= lr wd |p| / (lr |g|)).
// Parameters: SGD is linear in the gradient, so after K = 4 steps of lr <= 0.1 the float32
// drift is ~K lr 1e-7 |g| plus a float32 ulp of |p| (~6e-8 relative) per step; relative 1e-5,
// measured against max(|p|, 1e-2) so that elements near zero are held to an absolute 1e-7,
// leaves that a 10x margin.
constexpr double kNormTolerance = 1e-5, kParamTolerance = 1e-5, kParamFloor = 1e-2;

std::unique_ptr<nn::Sequential> make_mlp() { return testing::make_small_mlp(kIn, kHidden, kClasses); }

double feature(std::int64_t i, std::int64_t j) { return testing::small_mlp_feature(i, j); }
std::int64_t label_of(std::int64_t i) { return testing::small_mlp_label(i, kClasses); }

void engine_batch(std::int64_t first, std::int64_t count, Tensor& x, std::vector<std::int32_t>& labels) {
  x.resize({count, kIn});
  labels.resize(count);
  for (std::int64_t k = 0; k < count; ++k) {
    for (std::int64_t j = 0; j < kIn; ++j) x.data()[k * kIn + j] = static_cast<float>(feature(first + k, j));
    labels[k] = static_cast<std::int32_t>(label_of(first + k));
  }
}

void reference_batch(std::int64_t first, std::int64_t count, ref::Vector& x, std::vector<std::int64_t>& labels) {
  x.resize(static_cast<std::size_t>(count * kIn));
  labels.resize(static_cast<std::size_t>(count));
  for (std::int64_t k = 0; k < count; ++k) {
    for (std::int64_t j = 0; j < kIn; ++j) x[k * kIn + j] = feature(first + k, j);
    labels[k] = label_of(first + k);
  }
}

// Clipping settings: max_norm (0 = off) is a fraction of the reference's first-step norm, so
// that clipping happens at every step (the reference asserts it).
struct Clipping {
  std::string name;
  bool on = false;
  double norm_type = 2;
};
const std::vector<Clipping> kClippings = {{"off", false, 2}, {"2-norm", true, 2}, {"inf-norm", true, kInf}};

EngineConfig config_for(int stage, int accumulation, double max_norm, double norm_type) {
  EngineConfig c;
  c.stage = stage;
  c.gradient_accumulation_steps = accumulation;
  c.unit_starts = {0, 2};  // {fc1, act}, {fc2}
  c.optimizer = {.kind = OptimizerKind::sgd, .lr = kLr, .weight_decay = kWeightDecay, .momentum = kMomentum};
  c.scheduler = {.kind = ScheduleKind::exponential, .gamma = kGamma};  // lr_t = lr gamma^t: must not advance on a skip
  c.gradient_clipping = max_norm;
  c.gradient_clipping_norm_type = norm_type;
  return c;
}

// The float64 run: step s takes the global batch of step s; a skipped step consumes its data
// and changes nothing (no update, no LR or momentum step).
struct ReferenceRun {
  std::vector<double> norms;  // pre-clip, per step (NaN for the skipped one)
  std::vector<bool> clipped;
  ref::Vector params;
};

ReferenceRun reference_run(const std::vector<float>& initial, int world, int accumulation, double max_norm,
                           double norm_type, int steps, int skipped_step = -1) {
  ReferenceRun run;
  run.params.assign(initial.begin(), initial.end());
  const std::vector<bool> decay = ref::decay_mask(kReference.slots());
  ref::Sgd sgd({.momentum = kMomentum, .weight_decay = kWeightDecay});
  const std::int64_t global = static_cast<std::int64_t>(world) * accumulation * kMicro;
  std::int64_t updates = 0;
  ref::Vector x, grad;
  std::vector<std::int64_t> labels;
  for (int s = 0; s < steps; ++s) {
    if (s == skipped_step) {
      run.norms.push_back(std::numeric_limits<double>::quiet_NaN());
      run.clipped.push_back(false);
      continue;
    }
    reference_batch(s * global, global, x, labels);
    kReference.loss(run.params, x, labels, &grad);
    const ref::ClipResult clip = ref::clip_grad_norm(grad, max_norm, norm_type);
    run.norms.push_back(clip.norm);
    run.clipped.push_back(clip.clipped);
    sgd.step(run.params, grad, decay, kLr * std::pow(kGamma, static_cast<double>(updates++)));
  }
  return run;
}

// The initial parameters every engine starts from (initialisation does not depend on stage,
// world size or clipping), read from a throwaway engine.
std::vector<float> initial_parameters(Communicator& comm) {
  auto model = make_mlp();
  Engine engine(*model, config_for(0, 1, 0, 2), comm);
  return engine.full_parameters();
}

double max_norm_for(const std::vector<float>& initial, int world, int accumulation, const Clipping& clipping) {
  if (!clipping.on) return 0;
  return 0.3 * reference_run(initial, world, accumulation, 0, clipping.norm_type, 1).norms[0];
}

struct EngineRun {
  std::vector<float> initial;  // full_parameters() before the first step
  std::vector<double> norms;   // gradient_norm() after each optimizer step
  std::vector<float> params;   // full_parameters() after the last
};

// Micro-batch of rank `rank` of `world` at micro-step a of step s (see the file comment).
std::int64_t first_sample(int step, int accumulation, int a, int world, int rank) {
  return ((static_cast<std::int64_t>(step) * accumulation + a) * world + rank) * kMicro;
}

EngineRun train(Communicator& comm, const EngineConfig& config, int steps) {
  auto model = make_mlp();
  Engine engine(*model, config, comm);
  EngineRun run;
  run.initial = engine.full_parameters();
  EXPECT_TRUE(std::isnan(engine.gradient_norm())) << "gradient_norm() before the first step";
  nn::SoftmaxCrossEntropy loss;
  Tensor x;
  std::vector<std::int32_t> labels;
  const int accumulation = config.gradient_accumulation_steps;
  for (int s = 0; s < steps; ++s) {
    for (int a = 0; a < accumulation; ++a) {
      engine_batch(first_sample(s, accumulation, a, comm.size(), comm.rank()), kMicro, x, labels);
      loss.forward(engine.forward(x), labels);
      engine.backward(loss.gradient());
      EXPECT_EQ(engine.step(), a == accumulation - 1);
    }
    run.norms.push_back(engine.gradient_norm());
    EXPECT_FALSE(engine.last_step_skipped()) << "step " << s;
  }
  EXPECT_EQ(engine.optimizer_steps(), steps);
  EXPECT_EQ(engine.skipped_steps(), 0);
  run.params = engine.full_parameters();
  return run;
}

std::string describe(int stage, int accumulation, const Clipping& clipping) {
  return "stage " + std::to_string(stage) + ", accumulation " + std::to_string(accumulation) + ", clipping " +
         clipping.name + ", " + std::to_string(testing::world_size()) + " ranks";
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class GradientClippingTest : public testing::MpiTest {};

TEST_F(GradientClippingTest, NormAndParametersMatchTheFloat64Reference) {
  Communicator comm;
  const std::vector<float> initial = initial_parameters(comm);
  // full_parameters() is the same on every rank, so this ASSERT stops every rank alike.
  ASSERT_EQ(static_cast<std::int64_t>(initial.size()), kReference.size());
  for (int accumulation : {1, 2})
    for (const Clipping& clipping : kClippings) {
      const double max_norm = max_norm_for(initial, comm.size(), accumulation, clipping);
      const ReferenceRun expected =
          reference_run(initial, comm.size(), accumulation, max_norm, clipping.norm_type, kSteps);
      for (int s = 0; s < kSteps; ++s)
        EXPECT_EQ(expected.clipped[s], clipping.on) << "the reference must clip at every step when on: step " << s
                                                    << ", " << describe(0, accumulation, clipping);
      for (int stage = 0; stage <= 3; ++stage) {
        const std::string where = describe(stage, accumulation, clipping);
        const EngineRun run = train(comm, config_for(stage, accumulation, max_norm, clipping.norm_type), kSteps);
        EXPECT_TRUE(bitwise_equal(run.initial, initial)) << where;
        for (int s = 0; s < kSteps; ++s)
          EXPECT_NEAR(run.norms[s], expected.norms[s], kNormTolerance * expected.norms[s])
              << "gradient_norm() at step " << s << ", " << where;
        EXPECT_LT(ref::worst_relative_error(run.params, expected.params, kParamFloor), kParamTolerance)
            << "parameters after " << kSteps << " steps, " << where;
      }
    }
}

// The clipped run must differ from the unclipped one by far more than the tolerance: the test
// above would otherwise pass an engine that ignores gradient_clipping.
TEST_F(GradientClippingTest, ClippingChangesTheTrajectoryMeasurably) {
  Communicator comm;
  const std::vector<float> initial = initial_parameters(comm);
  for (const Clipping& clipping : {kClippings[1], kClippings[2]}) {
    const double max_norm = max_norm_for(initial, comm.size(), 1, clipping);
    const ReferenceRun clipped = reference_run(initial, comm.size(), 1, max_norm, clipping.norm_type, kSteps);
    const ReferenceRun free = reference_run(initial, comm.size(), 1, 0, clipping.norm_type, kSteps);
    EXPECT_GT(ref::worst_relative_error(clipped.params, free.params, kParamFloor), 100 * kParamTolerance) << clipping.name;
    const EngineRun run = train(comm, config_for(3, 1, max_norm, clipping.norm_type), kSteps);
    EXPECT_GT(ref::worst_relative_error(run.params, free.params, kParamFloor), 100 * kParamTolerance)
        << clipping.name << ": the engine's parameters look unclipped";
  }
}

// The norm and the parameters are bit-identical at stages 0-3 for one world size. With
// accumulation, stages 0-1 sum micro-steps before reducing and stages 2-3 after (the
// documented last-bit difference of the gradients themselves), so there the pairs {0, 1} and
// {2, 3} are compared.
TEST_F(GradientClippingTest, StagesZeroToThreeAgreeBitwise) {
  Communicator comm;
  const std::vector<float> initial = initial_parameters(comm);
  for (int accumulation : {1, 2})
    for (const Clipping& clipping : kClippings) {
      const double max_norm = max_norm_for(initial, comm.size(), accumulation, clipping);
      std::vector<EngineRun> runs;
      for (int stage = 0; stage <= 3; ++stage)
        runs.push_back(train(comm, config_for(stage, accumulation, max_norm, clipping.norm_type), kSteps));
      for (int stage = 1; stage <= 3; ++stage) {
        const int against = accumulation == 1 ? 0 : (stage < 2 ? 0 : 2);
        if (stage == against) continue;
        const std::string where = describe(stage, accumulation, clipping) + " vs stage " + std::to_string(against);
        EXPECT_EQ(runs[stage].norms, runs[against].norms) << "gradient_norm(), " << where;
        EXPECT_TRUE(bitwise_equal(runs[stage].params, runs[against].params)) << "parameters, " << where;
      }
    }
}

// One rank feeds a sample with a non-finite feature at one micro-step of step 1: the averaged
// gradient is not finite, so every rank skips that update (DeepSpeed's overflow skip): the
// parameters and the momentum buffers stay bit for bit, optimizer_steps() and the LR schedule
// do not advance, the gradients are dropped, and steps 2-3 train like the reference that
// skipped step 1. Whether clipping is on or off: the norm is computed at every step.
TEST_F(GradientClippingTest, NonFiniteGradientSkipsTheStepOnEveryRank) {
  Communicator comm;
  const std::vector<float> initial = initial_parameters(comm);
  constexpr int kPoisoned = 1;
  const int poisoning_rank = comm.size() - 1;
  for (double poison : {std::numeric_limits<double>::quiet_NaN(), kInf})
    for (int accumulation : {1, 2})
      for (const Clipping& clipping : kClippings)
        for (int stage = 0; stage <= 3; ++stage) {
          const std::string where = describe(stage, accumulation, clipping) + ", poison " + std::to_string(poison);
          const double max_norm = max_norm_for(initial, comm.size(), accumulation, clipping);
          const ReferenceRun expected =
              reference_run(initial, comm.size(), accumulation, max_norm, clipping.norm_type, kSteps, kPoisoned);
          auto model = make_mlp();
          Engine engine(*model, config_for(stage, accumulation, max_norm, clipping.norm_type), comm);
          nn::SoftmaxCrossEntropy loss;
          Tensor x;
          std::vector<std::int32_t> labels;
          std::vector<float> params_before, momentum_before;
          double lr_before = 0;
          for (int s = 0; s < kSteps; ++s) {
            if (s == kPoisoned) {
              params_before = engine.full_parameters();
              momentum_before = engine.full_optimizer_state("momentum_buffer");
              lr_before = engine.learning_rate();
            }
            for (int a = 0; a < accumulation; ++a) {
              engine_batch(first_sample(s, accumulation, a, comm.size(), comm.rank()), kMicro, x, labels);
              // The first micro-step of the poisoned step, so that with accumulation a finite
              // micro-step follows and must not wash it out.
              if (s == kPoisoned && a == 0 && comm.rank() == poisoning_rank) x.data()[1 * kIn + 2] = static_cast<float>(poison);
              loss.forward(engine.forward(x), labels);
              engine.backward(loss.gradient());
              engine.step();
            }
            if (s == kPoisoned) {
              EXPECT_TRUE(engine.last_step_skipped()) << where;
              EXPECT_EQ(engine.skipped_steps(), 1) << where;
              EXPECT_FALSE(std::isfinite(engine.gradient_norm())) << engine.gradient_norm() << ", " << where;
              EXPECT_EQ(engine.optimizer_steps(), kPoisoned) << "a skipped update is not an optimizer step, " << where;
              EXPECT_EQ(engine.learning_rate(), lr_before) << "the LR schedule must not advance, " << where;
              EXPECT_TRUE(bitwise_equal(engine.full_parameters(), params_before)) << "parameters changed, " << where;
              EXPECT_TRUE(bitwise_equal(engine.full_optimizer_state("momentum_buffer"), momentum_before))
                  << "momentum changed, " << where;
            } else {
              EXPECT_FALSE(engine.last_step_skipped()) << "step " << s << ", " << where;
              EXPECT_EQ(engine.skipped_steps(), s > kPoisoned ? 1 : 0) << "step " << s << ", " << where;
              EXPECT_EQ(engine.optimizer_steps(), s > kPoisoned ? s : s + 1) << "step " << s << ", " << where;
              // A finite norm equal to the reference's: the poisoned gradients were dropped.
              EXPECT_NEAR(engine.gradient_norm(), expected.norms[s], kNormTolerance * expected.norms[s])
                  << "gradient_norm() at step " << s << ", " << where;
            }
          }
          EXPECT_LT(ref::worst_relative_error(engine.full_parameters(), expected.params, kParamFloor), kParamTolerance)
              << "parameters after the skipped step and two more, " << where;
        }
}

// DeepSpeed's key (a number) and the norm type (a string: "2" or "inf").
TEST_F(GradientClippingTest, ConfigurationKeys) {
  TrainingConfig config;
  EXPECT_EQ(config.engine.gradient_clipping, 0);
  EXPECT_EQ(config.engine.gradient_clipping_norm_type, 2);
  config.apply_override("gradient_clipping=0.5");
  config.apply_override("gradient_clipping_norm_type=inf");
  EXPECT_EQ(config.engine.gradient_clipping, 0.5);
  EXPECT_EQ(config.engine.gradient_clipping_norm_type, kInf);
  config.apply_json(R"({"gradient_clipping": 1.5, "gradient_clipping_norm_type": "2"})", "inline");
  EXPECT_EQ(config.engine.gradient_clipping, 1.5);
  EXPECT_EQ(config.engine.gradient_clipping_norm_type, 2);
  // Only the two norms the engine computes are accepted, with the key named.
  try {
    TrainingConfig bad;
    bad.apply_override("gradient_clipping_norm_type=1");
    bad.validate();
    ADD_FAILURE() << "gradient_clipping_norm_type=1 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("gradient_clipping_norm_type"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zs
