// optimizer.in_backward (EngineConfig::optimizer_in_backward): each unit is updated during
// backward once its reduction completes and its gradients are freed. The reference is the
// engine's step() path, itself checked against float64 and PyTorch (test_engine, the golden
// tests): the same parameters, optimizer states and gradient norms, bit for bit, at every
// stage, in float32 and bf16, with and without overlap, hybrid sharding, and a unit a
// ForwardProgram skipped; the gradients are never held whole and the memory planner predicts
// the ledger's peak; the settings it cannot honour are refused naming the key; a non-finite
// norm ends the step with an error on every rank.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "../support/small_mlp.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

// Units: emb | fc1 | act | norm | fc2 (make_model); sizes that do not divide by 3 or 4.
const std::vector<std::size_t> kUnitStarts = {0, 1, 2, 3, 4};

struct Trained {
  std::vector<float> params, exp_avg, exp_avg_sq;
  std::vector<double> norms;
};

// Four steps; with `skip_norm_unit` the second runs a ForwardProgram that leaves out the
// LayerNorm unit (its parameters get no gradient that step).
Trained train(Communicator& comm, EngineConfig config, bool skip_norm_unit = false) {
  auto model = testing::make_model(0.0f);
  config.unit_starts = kUnitStarts;
  Engine engine(*model, config, comm);
  const ForwardProgram without_norm = [](UnitRunner& units, const Tensor& input) -> const Tensor& {
    const Tensor* x = &input;
    for (std::size_t unit : {0, 1, 2, 4}) x = &units.run(unit, *x);
    return *x;
  };
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  Trained out;
  for (int step = 0; step < 4; ++step) {
    testing::batch(step * 8 + comm.rank() * 3, 8, tokens, labels);
    const Tensor& logits = skip_norm_unit && step == 1 ? engine.forward(tokens, without_norm) : engine.forward(tokens);
    loss.forward(logits, labels);
    engine.backward(loss.gradient());
    EXPECT_TRUE(engine.step());
    out.norms.push_back(engine.gradient_norm());
  }
  out.params = engine.full_parameters();
  if (config.optimizer.kind != OptimizerKind::sgd) {
    out.exp_avg = engine.full_optimizer_state("exp_avg");
    out.exp_avg_sq = engine.full_optimizer_state("exp_avg_sq");
  }
  return out;
}

std::int64_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return count;
}

void expect_same_training(Communicator& comm, EngineConfig config, const std::string& where, bool skip = false) {
  config.optimizer_in_backward = false;
  const Trained stepped = train(comm, config, skip);
  config.optimizer_in_backward = true;
  const Trained in_backward = train(comm, config, skip);
  EXPECT_EQ(differing(in_backward.params, stepped.params), 0) << where << ": parameters";
  EXPECT_EQ(differing(in_backward.exp_avg, stepped.exp_avg), 0) << where << ": exp_avg";
  EXPECT_EQ(differing(in_backward.exp_avg_sq, stepped.exp_avg_sq), 0) << where << ": exp_avg_sq";
  ASSERT_EQ(in_backward.norms.size(), stepped.norms.size());
  for (std::size_t s = 0; s < stepped.norms.size(); ++s) {
    EXPECT_GT(stepped.norms[s], 0) << where;
    EXPECT_EQ(std::memcmp(&in_backward.norms[s], &stepped.norms[s], sizeof(double)), 0)
        << where << " step " << s << ": norm " << in_backward.norms[s] << " in backward, " << stepped.norms[s]
        << " at step()";
  }
  // The parameters moved: a run that updated nothing would match too.
  EngineConfig untrained = config;
  auto model = testing::make_model(0.0f);
  untrained.unit_starts = kUnitStarts;
  Engine fresh(*model, untrained, comm);
  EXPECT_GT(differing(fresh.full_parameters(), in_backward.params), 0) << where << ": nothing was updated";
}

class OptimizerInBackwardTest : public testing::MpiTest {};

TEST_F(OptimizerInBackwardTest, SameParametersStatesAndNormsAsStepAtEveryStage) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage)
    for (bool bf16 : {false, true})
      for (bool overlap : {true, false}) {
        EngineConfig config;
        config.stage = stage;
        config.precision.bf16 = bf16;
        config.overlap_comm = overlap;
        config.optimizer = {.kind = OptimizerKind::adamw, .lr = 0.01, .weight_decay = 0.1};
        expect_same_training(comm, config,
                             "stage " + std::to_string(stage) + (bf16 ? " bf16" : " float32") +
                                 (overlap ? " overlap" : " no overlap"));
      }
}

TEST_F(OptimizerInBackwardTest, SameResultsWithSgdHybridShardingAndASkippedUnit) {
  Communicator comm;
  EngineConfig sgd;
  sgd.stage = 2;
  sgd.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1, .momentum = 0.9};
  expect_same_training(comm, sgd, "stage 2 SGD with momentum");
  for (int stage : {0, 3}) {
    EngineConfig skipping;
    skipping.stage = stage;
    skipping.optimizer = {.kind = OptimizerKind::adam, .lr = 0.01};
    expect_same_training(comm, skipping, "stage " + std::to_string(stage) + ", unit 3 skipped at step 1", /*skip=*/true);
  }
  if (comm.size() % 2 == 0 && comm.size() > 2) {
    EngineConfig hybrid;
    hybrid.stage = 3;
    hybrid.shard_group_size = 2;  // shard within pairs, replicate across them
    expect_same_training(comm, hybrid, "stage 3, hybrid sharding over pairs");
  }
}

// The high-water of the gradient buffers during two steps.
std::int64_t gradient_high_water(const MemoryLedger& ledger) {
  return ledger.high_water(MemoryCategory::gradients_full) + ledger.high_water(MemoryCategory::gradients_shard);
}

TEST_F(OptimizerInBackwardTest, GradientsAreNeverHeldWholeAndThePlanPredictsThePeak) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage) {
    EngineConfig config;
    config.stage = stage;
    config.unit_starts = kUnitStarts;
    auto stepping_model = testing::make_model(0.0f);
    Engine stepping(*stepping_model, config, comm);
    testing::run_steps(stepping, 0, 2);
    config.optimizer_in_backward = true;
    auto model = testing::make_model(0.0f);
    Engine engine(*model, config, comm);
    testing::run_steps(engine, 0, 2);
    const MemoryLedger& ledger = engine.memory();
    const std::string where = "stage " + std::to_string(stage);
    // After a step nothing of the gradients is held: every group's went after its update.
    EXPECT_EQ(engine.model_state_bytes().gradients, 0) << where;
    EXPECT_EQ(ledger.current(MemoryCategory::gradients_full) + ledger.current(MemoryCategory::gradients_shard), 0)
        << where;
    // During backward, less than the step() path holds. At one rank (nothing in flight) one
    // unit's at a time: the largest unit, the embedding, is 161 of the model's 451 elements.
    const std::int64_t stepping_peak = gradient_high_water(stepping.memory());
    EXPECT_LT(gradient_high_water(ledger), stepping_peak) << where << "\n" << ledger.report();
    if (comm.size() == 1 && stage <= 1) {
      EXPECT_LE(gradient_high_water(ledger) * 2, stepping_peak) << where;
      // And the whole peak is lower by the gradients not held: the units' gradient buffers of
      // different sizes do not stay in the pool, idle, one of each size (they did: the peak
      // was the step() path's).
      EXPECT_EQ(ledger.high_water_total(),
                stepping.memory().high_water_total() - stepping_peak + gradient_high_water(ledger))
          << where << "\nin backward:\n" << ledger.report() << "step():\n" << stepping.memory().report();
    }
    // The planner replays the same schedule: its peak is the ledger's.
    ASSERT_NE(engine.memory_plan(), nullptr);
    EXPECT_EQ(engine.memory_plan()->peak, ledger.high_water_total())
        << where << "\nplan:\n" << engine.memory_plan()->table() << "ledger:\n" << ledger.report();
  }
}

TEST_F(OptimizerInBackwardTest, SettingsThatNeedEveryGradientFirstAreRefusedNamingTheKey) {
  Communicator comm;
  auto refused = [&](EngineConfig config, const std::string& key) {
    config.optimizer_in_backward = true;
    auto model = testing::make_model(0.0f);
    try {
      Engine engine(*model, config, comm);
      ADD_FAILURE() << key << ": accepted";
    } catch (const InvalidArgument& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(key), std::string::npos) << message;
      EXPECT_NE(message.find("optimizer.in_backward"), std::string::npos) << message;
    }
  };
  EngineConfig accumulation;
  accumulation.gradient_accumulation_steps = 2;
  refused(accumulation, "gradient_accumulation_steps = 2");
  EngineConfig clipping;
  clipping.gradient_clipping = 1.0;
  refused(clipping, "gradient_clipping = 1");
  EngineConfig fp16;
  fp16.precision.fp16 = true;
  refused(fp16, "bf16.enabled");
  EngineConfig buckets;
  buckets.reduce_bucket_size = 1000;
  refused(buckets, "reduce_bucket_size = 1000");
  EngineConfig shared;
  shared.stage = 1;
  shared.node_shared_parameters = true;
  refused(shared, "node_shared_parameters");
}

TEST_F(OptimizerInBackwardTest, ANonFiniteNormEndsTheStepWithAnErrorOnEveryRank) {
  Communicator comm;
  for (int stage : {0, 3}) {
    auto model = testing::make_small_mlp(5, 6, 3);
    EngineConfig config;
    config.stage = stage;
    config.unit_starts = {0, 2};
    config.optimizer_in_backward = true;
    Engine engine(*model, config, comm);
    Tensor x({4, 5});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>(i % 7) / 7.0f;
    x.data()[3] = std::numeric_limits<float>::quiet_NaN();  // on every rank
    nn::SoftmaxCrossEntropy loss;
    loss.forward(engine.forward(x), std::vector<std::int32_t>{0, 1, 2, 0});
    engine.backward(loss.gradient());
    std::string message;
    try {
      engine.step();
    } catch (const Error& e) {
      message = e.what();
    }
    EXPECT_NE(message.find("is not finite"), std::string::npos) << "stage " << stage << ": " << message;
    EXPECT_NE(message.find("restore the last checkpoint"), std::string::npos) << message;
    EXPECT_TRUE(std::isnan(engine.gradient_norm()));
  }
}

}  // namespace
}  // namespace zs
