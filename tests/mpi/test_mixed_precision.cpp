// Mixed precision under mpirun (docs/mixed-precision.md):
// - stages 0-3 agree bit for bit in bf16 and fp16 (overlap on/off, buckets; accumulation 2
//   within stages 0-1 and within 2-3, which sum micro-steps in another order);
// - N ranks against an independent float64 reference that rounds where the contract says
//   (weights to 16 bits for compute, each rank's gradient to 16 bits, the reduced sum once),
//   and against one process with N-way gradient accumulation;
// - fp16 dynamic loss scaling: DeepSpeed's scale sequence (growth after the window,
//   hysteresis, back-off), an injected overflow on one rank skips the same step on every rank
//   without advancing the LR schedule and training continues like a run that never saw that
//   step, the scaler's state through a checkpoint (bitwise resume);
// - checkpoints across precisions (bf16 -> float32 -> bf16 masters bitwise);
// - model-state memory per stage against the ZeRO paper's K = 12 formula;
// - bad configurations refused on every rank naming the keys.
//
// Model: Linear(5, 11) -> ReLU -> Linear(11, 7), two units, sizes that divide by neither 3
// nor 4 (padded shards). Data as tests/mpi/test_gradient_clipping.cpp: global sample i is the
// same everywhere; at step s rank r of n takes kMicro samples from (s n + r) kMicro.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <algorithm>
#include <limits>
#include <numeric>
#include <memory>
#include <string>
#include <vector>

#include "../support/float64_reference.hpp"
#include "../support/mpi_test.hpp"
#include "../support/small_mlp.hpp"
#include "../support/shared_temp_dir.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

namespace ref = testing::reference;

constexpr std::int64_t kIn = 5, kHidden = 11, kClasses = 7, kMicro = 3;
constexpr double kLr = 0.05, kGamma = 0.8;
const ref::Mlp kReference{.in = kIn, .hidden = kHidden, .classes = kClasses};

std::unique_ptr<nn::Sequential> make_mlp() { return testing::make_small_mlp(kIn, kHidden, kClasses); }

double feature(std::int64_t i, std::int64_t j) { return testing::small_mlp_feature(i, j); }
std::int64_t label_of(std::int64_t i) { return testing::small_mlp_label(i, kClasses); }

std::int64_t first_sample(int step, int accumulation, int micro, int world, int rank) {
  return ((static_cast<std::int64_t>(step) * accumulation + micro) * world + rank) * kMicro;
}

void engine_batch(std::int64_t first, Tensor& x, std::vector<std::int32_t>& labels) {
  x.resize({kMicro, kIn});
  labels.resize(kMicro);
  for (std::int64_t k = 0; k < kMicro; ++k) {
    for (std::int64_t j = 0; j < kIn; ++j) x.data()[k * kIn + j] = static_cast<float>(feature(first + k, j));
    labels[k] = static_cast<std::int32_t>(label_of(first + k));
  }
}

EngineConfig base_config(int stage) {
  EngineConfig c;
  c.stage = stage;
  c.unit_starts = {0, 2};
  c.optimizer = {.kind = OptimizerKind::adamw, .lr = kLr, .weight_decay = 0.01};
  c.memory.print_plan = false;
  return c;
}

EngineConfig bf16_config(int stage) {
  EngineConfig c = base_config(stage);
  c.precision.bf16 = true;
  return c;
}

EngineConfig fp16_config(int stage, int scale_power) {
  EngineConfig c = base_config(stage);
  c.precision.fp16 = true;
  c.precision.fp16_scaling.initial_scale_power = scale_power;
  return c;
}

// What a hook may do to this rank's loss gradient before backward (step, micro-step).
using GradientHook = std::function<void(int step, Tensor& grad)>;

// Trains steps [first, first + steps) of `engine` on this rank's micro-batches (those of
// world size `world` and rank `rank`; a single-process engine plays all ranks of a world as
// accumulation). `skip` names a step whose data is not used at all (-1: none).
void train(Engine& engine, int first, int steps, int world, int rank, const GradientHook& hook = {}, int skip = -1) {
  nn::SoftmaxCrossEntropy loss;
  Tensor x, grad;
  std::vector<std::int32_t> labels;
  const int accumulation = engine.config().gradient_accumulation_steps;
  for (int s = first; s < first + steps; ++s) {
    if (s == skip) continue;
    for (int a = 0; a < accumulation; ++a) {
      engine_batch(first_sample(s, accumulation, a, world, rank), x, labels);
      loss.forward(engine.forward(x), labels);
      grad = loss.gradient();
      if (hook) hook(s, grad);
      engine.backward(grad);
      engine.step();
    }
  }
}

std::vector<float> trained(Communicator& comm, const EngineConfig& config, int steps) {
  auto model = make_mlp();
  Engine engine(*model, config, comm);
  train(engine, 0, steps, comm.size(), comm.rank());
  return engine.full_parameters();
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

class MixedPrecision : public testing::MpiTest {
 protected:
  Communicator comm{MPI_COMM_WORLD};
};

TEST_F(MixedPrecision, StagesAgreeBitwise) {
  for (const bool fp16 : {false, true})
    for (const int accumulation : {1, 2}) {
      std::vector<std::vector<float>> by_stage;
      for (int stage = 0; stage <= 3; ++stage) {
        EngineConfig c = fp16 ? fp16_config(stage, 10) : bf16_config(stage);
        c.gradient_accumulation_steps = accumulation;
        by_stage.push_back(trained(comm, c, 3));
        const std::string what = std::string(fp16 ? "fp16" : "bf16") + " stage " + std::to_string(stage) +
                                 " accumulation " + std::to_string(accumulation);
        for (const bool overlap : {false, true})
          for (const std::int64_t bucket : {std::int64_t{0}, std::int64_t{40}}) {
            EngineConfig v = c;
            v.overlap_comm = overlap;
            v.reduce_bucket_size = bucket;
            EXPECT_TRUE(bitwise_equal(trained(comm, v, 3), by_stage.back()))
                << what << " overlap " << overlap << " bucket " << bucket;
          }
      }
      // Stages 0-1 sum micro-steps before reducing, 2-3 reduce each: one rounding order per pair.
      EXPECT_TRUE(bitwise_equal(by_stage[1], by_stage[0])) << (fp16 ? "fp16" : "bf16") << " accumulation " << accumulation;
      EXPECT_TRUE(bitwise_equal(by_stage[3], by_stage[2])) << (fp16 ? "fp16" : "bf16") << " accumulation " << accumulation;
      if (accumulation == 1) EXPECT_TRUE(bitwise_equal(by_stage[2], by_stage[0])) << (fp16 ? "fp16" : "bf16");
      // And not the float32 result: the 16-bit rounding happened.
      EXPECT_FALSE(bitwise_equal(by_stage[0], trained(comm, base_config(0), 3)));
    }
}

// Hybrid sharding in bf16: groups of 2 (at 4 ranks) give stages 1-3 the same bits, and the
// replicas' 16-bit gradients are all-reduced in bf16 like the shard group's.
TEST_F(MixedPrecision, HybridShardingAgreesAcrossStages) {
  if (testing::world_size() != 4) GTEST_SKIP() << "groups of 2 need 4 ranks here";
  std::vector<std::vector<float>> by_stage;
  for (int stage = 1; stage <= 3; ++stage) {
    EngineConfig c = bf16_config(stage);
    c.shard_group_size = 2;
    by_stage.push_back(trained(comm, c, 3));
  }
  EXPECT_TRUE(bitwise_equal(by_stage[1], by_stage[0]));
  EXPECT_TRUE(bitwise_equal(by_stage[2], by_stage[0]));
  // The same mean gradient as flat sharding, rounded in two levels instead of one ring: equal
  // to within the 16-bit tolerance of RanksMatchOneProcessAccumulating.
  const std::vector<float> flat = trained(comm, bf16_config(1), 3);
  ASSERT_EQ(flat.size(), by_stage[0].size());
  for (std::size_t i = 0; i < flat.size(); ++i)
    EXPECT_NEAR(by_stage[0][i], flat[i], 3 * kLr * 4.0 / 256 * 4) << "element " << i;
}

// ---------------------------------------------------------------------------------------------
// The rounding reference: the contract's rounding points written out independently (bit
// arithmetic for bfloat16, the compiler's _Float16 for float16), everything else float64.

double round_bf16(double v) {
  const auto u = std::bit_cast<std::uint32_t>(static_cast<float>(v));
  const std::uint32_t rounded = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
  return static_cast<double>(std::bit_cast<float>(rounded));
}
double round_fp16(double v) { return static_cast<double>(static_cast<_Float16>(static_cast<float>(v))); }

// One optimizer step of plain SGD (no momentum, no decay: linear in the gradient) at `world`
// ranks: weights rounded for compute; each rank's gradient of its micro-batch mean, times
// `scale`, rounded; the sum over ranks rounded once; divided by world x scale.
void reference_step(ref::Vector& master, int step, int world, bool fp16, double scale) {
  auto round = fp16 ? round_fp16 : round_bf16;
  ref::Vector weights(master.size()), sum(master.size(), 0.0), x, grad;
  for (std::size_t i = 0; i < master.size(); ++i) weights[i] = round(master[i]);
  for (int r = 0; r < world; ++r) {
    const std::int64_t first = first_sample(step, 1, 0, world, r);
    x.resize(kMicro * kIn);
    std::vector<std::int64_t> labels(kMicro);
    for (std::int64_t k = 0; k < kMicro; ++k) {
      for (std::int64_t j = 0; j < kIn; ++j) x[k * kIn + j] = feature(first + k, j);
      labels[k] = label_of(first + k);
    }
    kReference.loss(weights, x, labels, &grad);
    for (std::size_t i = 0; i < grad.size(); ++i) sum[i] += round(grad[i] * scale);
  }
  for (std::size_t i = 0; i < master.size(); ++i) master[i] -= kLr * round(sum[i]) / (world * scale);
}

EngineConfig sgd(EngineConfig c) {
  c.optimizer = {.kind = OptimizerKind::sgd, .lr = kLr};
  return c;
}

// Tolerance. The engine computes each rank's gradient in float32 (~1e-7 relative from the
// float64 reference); rounded to 16 bits, the two agree unless an element lies within that
// distance of a rounding boundary, where they differ by one 16-bit ulp (2^-8 relative for
// bfloat16, 2^-11 for float16). So after one step nearly every master element agrees to
// float32 rounding (1e-6 relative), and the few that do not are off by at most
// lr x |g| x ulp. A missing rounding point (weights or gradients kept in float32) moves about
// half of all elements by a fraction of an ulp: far more than the few allowed here.
//
// The reductions here use the mpi algorithm, which rounds the ranks' sum once; the default
// ring rounds each hop's partial sum (tests/mpi/test_collectives.cpp pins that sequence).
TEST_F(MixedPrecision, MatchesTheRoundingReference) {
  CommunicatorConfig rounded_once;
  rounded_once.reduce_scatter = Algorithm::mpi;
  Communicator mpi(MPI_COMM_WORLD, rounded_once);
  for (const bool fp16 : {false, true})
    for (int stage : {0, 3}) {
      const double scale = fp16 ? 1024.0 : 1.0;
      EngineConfig c = sgd(fp16 ? fp16_config(stage, 10) : bf16_config(stage));
      auto model = make_mlp();
      Engine engine(*model, c, mpi);
      const std::vector<float> initial = engine.full_parameters();
      ref::Vector master(initial.begin(), initial.end());
      ref::Vector unrounded = master;  // the same SGD without any rounding: must differ
      int agree = 0, total = 0, far_from_unrounded = 0;
      double worst = 0;
      for (int s = 0; s < 2; ++s) {
        train(engine, s, 1, comm.size(), comm.rank());
        reference_step(master, s, comm.size(), fp16, scale);
        {
          ref::Vector x, grad, sum(unrounded.size(), 0.0);
          for (int r = 0; r < comm.size(); ++r) {
            std::vector<std::int64_t> labels(kMicro);
            x.resize(kMicro * kIn);
            const std::int64_t first = first_sample(s, 1, 0, comm.size(), r);
            for (std::int64_t k = 0; k < kMicro; ++k) {
              for (std::int64_t j = 0; j < kIn; ++j) x[k * kIn + j] = feature(first + k, j);
              labels[k] = label_of(first + k);
            }
            kReference.loss(unrounded, x, labels, &grad);
            for (std::size_t i = 0; i < grad.size(); ++i) sum[i] += grad[i];
          }
          for (std::size_t i = 0; i < unrounded.size(); ++i) unrounded[i] -= kLr * sum[i] / comm.size();
        }
        const std::vector<float> got = engine.full_parameters();
        for (std::size_t i = 0; i < got.size(); ++i) {
          const double error = std::abs(got[i] - master[i]);
          agree += error <= 1e-6 * std::max(std::abs(master[i]), 1e-2);
          far_from_unrounded += std::abs(got[i] - unrounded[i]) > 1e-6 * std::max(std::abs(unrounded[i]), 1e-2);
          worst = std::max(worst, error);
          ++total;
        }
      }
      const std::string what = std::string(fp16 ? "fp16" : "bf16") + " stage " + std::to_string(stage);
      EXPECT_GE(agree, total * 97 / 100) << what << ": " << agree << " of " << total << " agree";
      EXPECT_LE(worst, 2 * kLr * 4.0 / 256) << what << " (one 16-bit ulp of a gradient <= 4, twice)";
      EXPECT_GE(far_from_unrounded, total / 4) << what << ": the 16-bit rounding must show";
    }
}

// N ranks against one process accumulating the N ranks' micro-batches: the same mean
// gradient, summed in another order (one rounding of the ranks' sum vs one per micro-step),
// so within a few 16-bit ulps of the update, never bitwise required.
TEST_F(MixedPrecision, RanksMatchOneProcessAccumulating) {
  if (testing::world_size() == 1) GTEST_SKIP() << "one rank is the single process";
  Communicator self(MPI_COMM_SELF);
  for (const bool fp16 : {false, true}) {
    EngineConfig c = sgd(fp16 ? fp16_config(2, 10) : bf16_config(2));
    const std::vector<float> ranks = trained(comm, c, 3);
    EngineConfig single = c;
    single.stage = 0;
    single.gradient_accumulation_steps = comm.size();
    auto model = make_mlp();
    Engine engine(*model, single, self);
    // Micro-step a of step s is rank a's batch of the N-rank run.
    train(engine, 0, 3, 1, 0);
    const std::vector<float> one = engine.full_parameters();
    ASSERT_EQ(one.size(), ranks.size());
    for (std::size_t i = 0; i < one.size(); ++i)
      EXPECT_NEAR(ranks[i], one[i], 3 * kLr * 4.0 / 256 * comm.size()) << (fp16 ? "fp16" : "bf16") << " element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// fp16 loss scaling.

// DeepSpeed's DynamicLossScaler.update_scale, written out again for the test.
struct DeepSpeedScaler {
  double scale;
  int window, hysteresis, left;
  long iteration = 0, last_overflow = -1;
  void update(bool overflow) {
    if (overflow) {
      if (hysteresis == 1 || left == 1) scale = std::max(scale / 2, 1.0);
      else --left;
      last_overflow = iteration;
    } else if ((iteration - last_overflow) % window == 0) {
      left = hysteresis;
      scale *= 2;
    }
    ++iteration;
  }
};

GradientHook overflow_at(std::vector<int> steps, int rank) {
  return [steps, rank](int step, Tensor& grad) {
    if (testing::world_rank() == rank && std::find(steps.begin(), steps.end(), step) != steps.end())
      grad.data()[0] = std::numeric_limits<float>::infinity();
  };
}

TEST_F(MixedPrecision, LossScaleFollowsDeepSpeed) {
  EngineConfig c = fp16_config(1, 8);
  c.precision.fp16_scaling.loss_scale_window = 3;
  c.precision.fp16_scaling.hysteresis = 2;
  auto model = make_mlp();
  Engine engine(*model, c, comm);
  DeepSpeedScaler expected{256, 3, 2, 2};
  const std::vector<int> overflows = {4, 5, 9};
  const GradientHook hook = overflow_at(overflows, comm.size() - 1);
  for (int s = 0; s < 12; ++s) {
    EXPECT_EQ(engine.loss_scale(), expected.scale) << "before step " << s;
    train(engine, s, 1, comm.size(), comm.rank(), hook);
    const bool overflow = std::find(overflows.begin(), overflows.end(), s) != overflows.end();
    EXPECT_EQ(engine.last_step_skipped(), overflow) << "step " << s;
    expected.update(overflow);
  }
  EXPECT_EQ(engine.skipped_steps(), 3);
  EXPECT_EQ(engine.optimizer_steps(), 9);
}

// An overflow on one rank at step 1: every rank skips it, the scale halves (hysteresis 1), the
// LR schedule does not advance, and training goes on like a run that never saw step 1 and
// started at the halved scale (power-of-two scales change no rounding away from float16's
// subnormals: compared to float32 rounding, not bitwise).
TEST_F(MixedPrecision, InjectedOverflowSkipsTheSameStepEverywhere) {
  EngineConfig c = fp16_config(3, 12);
  c.precision.fp16_scaling.hysteresis = 1;
  c.scheduler = {.kind = ScheduleKind::exponential, .gamma = kGamma};
  auto model = make_mlp();
  Engine engine(*model, c, comm);
  const GradientHook hook = overflow_at({1}, comm.size() - 1);
  train(engine, 0, 1, comm.size(), comm.rank(), hook);
  const double lr_before = engine.learning_rate();
  train(engine, 1, 1, comm.size(), comm.rank(), hook);
  EXPECT_TRUE(engine.last_step_skipped());
  EXPECT_EQ(engine.loss_scale(), 2048.0);
  EXPECT_EQ(engine.learning_rate(), lr_before) << "a skipped step must not advance the schedule";
  train(engine, 2, 2, comm.size(), comm.rank(), hook);
  EXPECT_EQ(engine.skipped_steps(), 1);
  EXPECT_EQ(engine.optimizer_steps(), 3);

  // The reference: a fixed scale, step 1's data never used.
  EngineConfig fixed = c;
  fixed.precision.fp16_scaling.loss_scale = 2048;
  auto reference_model = make_mlp();
  Engine reference(*reference_model, fixed, comm);
  train(reference, 0, 4, comm.size(), comm.rank(), {}, /*skip=*/1);
  EXPECT_EQ(reference.optimizer_steps(), 3);
  EXPECT_EQ(reference.learning_rate(), engine.learning_rate());
  const std::vector<float> got = engine.full_parameters(), want = reference.full_parameters();
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-6 * std::max(std::abs(want[i]), 1e-2f)) << "element " << i;
}

// Training that cannot progress stops with an error on every rank instead of skipping every
// step and ending "successfully" untrained: a dynamic scale at fp16.min_loss_scale that
// overflows again (DeepSpeed's raise_error_at_min_scale), and a fixed scale that overflows on
// LossScaler::kFixedScaleOverflowLimit (10) consecutive steps; fewer, or interrupted, go on.
TEST_F(MixedPrecision, LossScaleThatCannotAvoidOverflowStopsTraining) {
  const auto stops = [&](Engine& engine, int step, const GradientHook& hook, const std::string& expected) {
    try {
      train(engine, step, 1, comm.size(), comm.rank(), hook);
      ADD_FAILURE() << "step " << step << " did not stop training";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  };
  EngineConfig fixed = fp16_config(2, 12);
  fixed.precision.fp16_scaling.loss_scale = 1024;
  auto model = make_mlp();
  Engine engine(*model, fixed, comm);
  // Overflows at steps 0-8 and 10-19, a clean step 9 between them.
  std::vector<int> overflowing(20);
  std::iota(overflowing.begin(), overflowing.end(), 0);
  overflowing.erase(overflowing.begin() + 9);
  const GradientHook hook = overflow_at(overflowing, comm.size() - 1);
  train(engine, 0, 19, comm.size(), comm.rank(), hook);
  EXPECT_EQ(engine.skipped_steps(), 18);
  stops(engine, 19, hook, "on 10 consecutive steps at the fixed fp16.loss_scale = 1024");

  EngineConfig dynamic = fp16_config(1, 1);  // scale 2
  dynamic.precision.fp16_scaling.hysteresis = 1;
  dynamic.precision.fp16_scaling.min_loss_scale = 1;
  auto dynamic_model = make_mlp();
  Engine at_floor(*dynamic_model, dynamic, comm);
  const GradientHook always = overflow_at({0, 1}, 0);
  train(at_floor, 0, 1, comm.size(), comm.rank(), always);
  EXPECT_EQ(at_floor.loss_scale(), 1.0);
  stops(at_floor, 1, always, "at the minimum loss scale fp16.min_loss_scale = 1");
}

// The scaler's state (scale, iteration, last overflow, hysteresis left) is in the checkpoint:
// a resume continues bit for bit, scale sequence included.
TEST_F(MixedPrecision, LossScalerStateRoundTripsThroughACheckpoint) {
  testing::SharedTempDir dir;
  EngineConfig c = fp16_config(2, 10);
  c.precision.fp16_scaling.loss_scale_window = 2;
  const GradientHook hook = overflow_at({1, 4}, 0);
  std::vector<float> continued;
  double scale_after = 0;
  {
    auto model = make_mlp();
    Engine engine(*model, c, comm);
    train(engine, 0, 3, comm.size(), comm.rank(), hook);
    engine.save(dir.path(), "mid");
    train(engine, 3, 4, comm.size(), comm.rank(), hook);
    continued = engine.full_parameters();
    scale_after = engine.loss_scale();
  }
  auto model = make_mlp();
  Engine resumed(*model, c, comm);
  const checkpoint::TrainingState state = resumed.load(dir.path(), "mid");
  ASSERT_TRUE(state.loss_scaler.has_value());
  EXPECT_EQ(state.loss_scaler->last_overflow_iteration, 1);
  train(resumed, 3, 4, comm.size(), comm.rank(), hook);
  EXPECT_TRUE(bitwise_equal(resumed.full_parameters(), continued));
  EXPECT_EQ(resumed.loss_scale(), scale_after);
}

// Checkpoints hold float32 masters: a bf16 run's loads into a float32 run (and back) with
// every master bit kept, at another stage.
TEST_F(MixedPrecision, CheckpointsMoveBetweenPrecisions) {
  testing::SharedTempDir dir;
  std::vector<float> bf16_masters;
  {
    auto model = make_mlp();
    Engine engine(*model, bf16_config(3), comm);
    train(engine, 0, 2, comm.size(), comm.rank());
    engine.save(dir.path(), "bf16");
    bf16_masters = engine.full_parameters();
  }
  std::vector<float> fp32_after;
  {
    auto model = make_mlp();
    Engine engine(*model, base_config(1), comm);
    engine.load(dir.path(), "bf16");
    EXPECT_TRUE(bitwise_equal(engine.full_parameters(), bf16_masters));
    train(engine, 2, 1, comm.size(), comm.rank());
    engine.save(dir.path(), "fp32");
    fp32_after = engine.full_parameters();
  }
  auto model = make_mlp();
  Engine engine(*model, bf16_config(0), comm);
  engine.load(dir.path(), "fp32");
  EXPECT_TRUE(bitwise_equal(engine.full_parameters(), fp32_after));
  train(engine, 3, 1, comm.size(), comm.rank());
  EXPECT_FALSE(engine.last_step_skipped());
}

// Model states per rank: the ZeRO paper's mixed-precision formula (P = G = 2, K = 12 with
// AdamW's two states and the master) over the padded units: 16 Psi / 4 Psi + 12 Psi/N /
// 2 Psi + 14 Psi/N / 16 Psi/N, counted here from the element counts alone.
TEST_F(MixedPrecision, ModelStatesFollowTheZeroFormula) {
  const int n = comm.size();
  for (int stage = 0; stage <= 3; ++stage) {
    auto model = make_mlp();
    Engine engine(*model, bf16_config(stage), comm);
    train(engine, 0, 1, n, comm.rank());
    // Each unit is padded to a multiple of n x alignment (16) elements: fc1 has 66, fc2 84.
    std::int64_t whole = 0, shard = 0;
    for (const std::int64_t unit : {std::int64_t{66}, std::int64_t{84}}) {
      const std::int64_t padded = (unit + 16 * n - 1) / (16 * n) * (16 * n);
      whole += padded;
      shard += padded / n;
    }
    const bool one = n == 1;  // world size 1 runs every stage as stage 0
    const std::int64_t p = (stage == 3 && !one) ? shard : whole;
    const std::int64_t g = (stage >= 2 && !one) ? shard : whole;
    const std::int64_t k = (stage >= 1 && !one) ? shard : whole;
    const ModelStateBytes bytes = engine.model_state_bytes();
    EXPECT_EQ(bytes.parameters, 2 * p) << "stage " << stage;
    EXPECT_EQ(bytes.gradients, 2 * g) << "stage " << stage;
    EXPECT_EQ(bytes.optimizer_states, 12 * k) << "stage " << stage;
    EXPECT_EQ(engine.memory().current(MemoryCategory::master_parameters), 4 * k) << "stage " << stage;
    const ModelStateBytes planned = engine.plan_memory(std::nullopt).model_states;
    EXPECT_EQ(planned.total(), bytes.total()) << "stage " << stage;
  }
}

TEST_F(MixedPrecision, BadConfigurationsAreRefusedOnEveryRank) {
  auto refused = [&](EngineConfig c, const std::string& key) {
    auto model = make_mlp();
    try {
      Engine engine(*model, c, comm);
      ADD_FAILURE() << "accepted; expected a refusal naming " << key;
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  EngineConfig both = bf16_config(1);
  both.precision.fp16 = true;
  refused(both, "bf16.enabled and fp16.enabled");
  EngineConfig narrower = base_config(1);
  narrower.precision.reduce_dtype = DType::bfloat16;
  refused(narrower, "mixed_precision.reduce_dtype");
  EngineConfig other_half = bf16_config(2);
  other_half.precision.reduce_dtype = DType::float16;
  refused(other_half, "mixed_precision.reduce_dtype");
  EngineConfig window = fp16_config(0, 8);
  window.precision.fp16_scaling.loss_scale_window = 0;
  refused(window, "fp16.loss_scale_window");
  // The keys as a DeepSpeed-style JSON file spells them.
  TrainingConfig parsed;
  parsed.apply_json(R"({"bf16": {"enabled": true}, "fp16": {"enabled": true}})", "test");
  refused(parsed.engine, "bf16.enabled");
  parsed = TrainingConfig();
  EXPECT_THROW(parsed.apply_override("mixed_precision.reduce_dtype=float8"), InvalidArgument);
  parsed.apply_override("mixed_precision.reduce_dtype=float32");
  parsed.apply_override("fp16.enabled=true");
  EXPECT_EQ(parsed.engine.precision.gradient_dtype(), DType::float32);
  EXPECT_EQ(parsed.engine.precision.param_dtype(), DType::float16);
}

// A training forward that no backward follows (its loss was NaN, say), then a rollback with
// load(): the next forward must compute with the loaded parameters. Every compute copy a
// forward keeps for backward (stage 3's last unit; reshard_after_forward = false, with units
// that stay whole) must go with the next forward. Found by a review: at stages 0-2 the last
// unit's float32 copy was neither kept nor freed, and evaluate() computed with stale values.
TEST_F(MixedPrecision, ARollbackAfterAnAbandonedForwardComputesWithTheLoadedParameters) {
  std::vector<EngineConfig> configs;
  for (int stage = 0; stage <= 3; ++stage) configs.push_back(bf16_config(stage));
  EngineConfig kept = bf16_config(3);
  kept.reshard_after_forward = false;
  kept.param_persistence_threshold = kHidden * kClasses + kClasses + 1;  // the head stays whole
  configs.push_back(kept);
  for (const EngineConfig& config : configs) {
    testing::SharedTempDir dir;
    Tensor x;
    std::vector<std::int32_t> labels;
    engine_batch(first_sample(9, 1, 0, comm.size(), comm.rank()), x, labels);
    std::vector<float> rolled_back, fresh;
    {
      auto model = make_mlp();
      Engine engine(*model, config, comm);
      train(engine, 0, 1, comm.size(), comm.rank());
      engine.save(dir.path(), "a");
      train(engine, 1, 2, comm.size(), comm.rank());
      engine.forward(x);  // abandoned micro-step
      engine.load(dir.path(), "a");
      const Tensor& y = engine.evaluate(x);
      rolled_back.assign(y.data(), y.data() + y.numel());
    }
    {
      auto model = make_mlp();
      Engine engine(*model, config, comm);
      engine.load(dir.path(), "a");
      const Tensor& y = engine.evaluate(x);
      fresh.assign(y.data(), y.data() + y.numel());
    }
    EXPECT_TRUE(bitwise_equal(rolled_back, fresh))
        << "stage " << config.stage << " reshard_after_forward " << config.reshard_after_forward;
  }
}

}  // namespace
}  // namespace zs
