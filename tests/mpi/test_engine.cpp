// The engine under mpirun: stage invariance (bitwise), data-parallel equivalence with a
// single-process reference, gradient accumulation, and model-state memory per the formulas.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using testing::world_rank;
using testing::world_size;
using testing::batch;
using testing::make_model;
using testing::run_steps;

// Trains `steps` optimizer steps; rank r of n takes micro-batch `micro` at offset r*micro of
// each global micro-batch of n*micro samples, and `accumulation` micro-steps per step.
std::vector<float> train(Communicator& comm, EngineConfig config, int steps, std::int64_t micro, float dropout = 0) {
  auto model = make_model(dropout);
  Engine engine(*model, config, comm);
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  std::int64_t next = 0;
  const std::int64_t global = micro * comm.size();
  for (int s = 0; s < steps; ++s)
    for (int a = 0; a < config.gradient_accumulation_steps; ++a) {
      batch(next + comm.rank() * micro, micro, tokens, labels);
      next += global;
      loss.forward(engine.forward(tokens), labels);
      engine.backward(loss.gradient());
      engine.step();
    }
  EXPECT_EQ(engine.optimizer_steps(), steps);
  return engine.full_parameters();
}

EngineConfig adamw(int stage) {
  EngineConfig c;
  c.stage = stage;
  c.optimizer = {.kind = OptimizerKind::adamw, .lr = 1e-2};
  c.scheduler = {.kind = ScheduleKind::cosine, .warmup_steps = 2, .total_steps = 10};
  return c;
}

class EngineTest : public testing::MpiTest {};

TEST_F(EngineTest, StagesZeroToThreeGiveBitIdenticalParameters) {
  Communicator comm;
  const auto reference = train(comm, adamw(0), 6, 5, /*dropout=*/0.2f);
  for (int stage = 1; stage <= 3; ++stage) {
    const auto params = train(comm, adamw(stage), 6, 5, 0.2f);
    ASSERT_EQ(params.size(), reference.size());
    std::int64_t differing = 0;
    for (std::size_t i = 0; i < params.size(); ++i)
      differing += std::memcmp(&params[i], &reference[i], sizeof(float)) != 0;
    EXPECT_EQ(differing, 0) << "stage " << stage << " vs stage 0";
  }
  // The same holds with another unit split (one unit for the whole model). Its values differ
  // from the split above in the last bits: a different layout puts elements in different
  // reduce-scatter chunks, and each chunk is summed starting at a different rank.
  EngineConfig one_unit_stage0 = adamw(0), one_unit_stage3 = adamw(3);
  one_unit_stage0.unit_starts = one_unit_stage3.unit_starts = {0};
  EXPECT_EQ(train(comm, one_unit_stage3, 6, 5, 0.2f), train(comm, one_unit_stage0, 6, 5, 0.2f));
}

// zero_optimization.node_shared_parameters: one copy of the whole parameters per node, each
// rank updating its slice in place, nothing gathered. Every stage 1-3 must still give stage 0's
// parameters bit for bit (flat, and with accumulation, buckets, overlap off, one unit), the
// ledger must hold a rank's slice of them (the stage-3 formula for parameters), and the engine
// must stay usable after a load. One rank: a no-op (nothing is shared).
TEST_F(EngineTest, NodeSharedParametersGiveBitIdenticalParametersAtEveryStage) {
  Communicator comm;
  const int n = comm.size();
  const auto reference = train(comm, adamw(0), 6, 5, /*dropout=*/0.2f);
  for (int stage = 1; stage <= 3; ++stage) {
    EngineConfig config = adamw(stage);
    config.node_shared_parameters = true;
    EXPECT_EQ(train(comm, config, 6, 5, 0.2f), reference) << "stage " << stage;
    EngineConfig accumulation = config, reference_config = adamw(stage);
    accumulation.gradient_accumulation_steps = reference_config.gradient_accumulation_steps = 2;
    accumulation.reduce_bucket_size = 7;
    accumulation.overlap_comm = false;
    EXPECT_EQ(train(comm, accumulation, 3, 5, 0.2f), train(comm, reference_config, 3, 5, 0.2f))
        << "stage " << stage << ", accumulation 2, buckets of 7, overlap off";

    auto model = make_model(0);
    Engine engine(*model, config, comm);
    const double psi = static_cast<double>(engine.parameter_count());
    const double slack = 16.0 * (16 * 8 + 16 * n) * engine.unit_count();
    if (n == 1) continue;  // nothing shared: stage 0's whole private parameters
    EXPECT_NEAR(static_cast<double>(engine.model_state_bytes().parameters), 4 * psi / n, slack) << "stage " << stage;
    EXPECT_EQ(engine.memory().current(MemoryCategory::parameters_full), 0) << "stage " << stage << ": nothing gathered";
    run_steps(engine, 0, 3);
    EXPECT_EQ(engine.memory().current(MemoryCategory::parameters_full), 0)
        << "stage " << stage << ": a gathered or whole private copy appeared while training";
  }
  EngineConfig one_unit = adamw(3), one_unit_stage0 = adamw(0);
  one_unit.unit_starts = one_unit_stage0.unit_starts = {0};
  one_unit.node_shared_parameters = true;
  EXPECT_EQ(train(comm, one_unit, 6, 5, 0.2f), train(comm, one_unit_stage0, 6, 5, 0.2f)) << "one unit";
}

// Overlap on or off changes when collectives run, never what they compute.
TEST_F(EngineTest, OverlapOnAndOffGiveBitIdenticalParameters) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage)
    for (int accumulation : {1, 2}) {
      EngineConfig on = adamw(stage);
      on.gradient_accumulation_steps = accumulation;
      on.prefetch_bytes = 3000;  // some units fit the prefetch budget, some do not
      EngineConfig off = on;
      off.overlap_comm = false;
      EXPECT_EQ(train(comm, on, 4, 5, 0.2f), train(comm, off, 4, 5, 0.2f))
          << "stage " << stage << " accumulation " << accumulation;
    }
}

// Gradient buckets change how gradients travel (packed, several units per collective or
// several collectives per unit), never the sums: every element is still reduced in its owner
// rank's chunk. Sizes of 1 element per rank, sizes that split units unevenly, and sizes
// holding the whole model; overlap on and off; with accumulation.
TEST_F(EngineTest, GradientBucketsKeepParametersBitIdentical) {
  Communicator comm;
  for (int accumulation : {1, 2})
    for (int stage = 0; stage <= 3; ++stage) {
      // The reference is the same stage reducing each unit in place (reduce_bucket_size 0):
      // with accumulation stages 0-1 reduce the micro-steps' sum once, stages 2-3 every
      // micro-step, so stages differ by rounding there.
      EngineConfig reference_config = adamw(stage);
      reference_config.gradient_accumulation_steps = accumulation;
      const auto reference = train(comm, reference_config, 3, 5, 0.2f);
      for (std::int64_t bucket : {1, 7, 64, 500, 100000})
        for (bool overlap : {true, false}) {
          EngineConfig config = adamw(stage);
          config.gradient_accumulation_steps = accumulation;
          config.reduce_bucket_size = bucket;
          config.overlap_comm = overlap;
          EXPECT_EQ(train(comm, config, 3, 5, 0.2f), reference)
              << "stage " << stage << " bucket " << bucket << " overlap " << overlap << " accumulation " << accumulation;
        }
    }
}

// With buckets a unit's full gradients are freed as soon as they are packed: at most one
// unit's full gradients live, and bucket memory stays within the buckets allowed in flight
// plus the one being filled.
TEST_F(EngineTest, GradientBucketMemoryIsBounded) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  auto model = make_model(0.0f);
  EngineConfig config = adamw(3);
  config.reduce_bucket_size = 40;
  config.reductions_in_flight = 2;
  Engine engine(*model, config, comm);
  run_steps(engine, 0, 3);
  std::int64_t largest_unit = 0;
  for (const auto& spec : std::vector<std::int64_t>{23 * 7, 19 * 7 + 19, 19 * 2, 19 * 5 + 5})
    largest_unit = std::max(largest_unit, spec);
  const std::int64_t chunk = std::max<std::int64_t>(1, 40 / comm.size());
  const auto& memory = engine.memory();
  // A unit's padded buffer exceeds its parameters by at most alignment x (tensors + ranks).
  EXPECT_LE(memory.high_water(MemoryCategory::gradients_full), (largest_unit + 16 * (2 + comm.size())) * 4);
  EXPECT_GT(memory.high_water(MemoryCategory::communication), 0);
  EXPECT_LE(memory.high_water(MemoryCategory::communication),
            (config.reductions_in_flight + 1) * comm.size() * chunk * 4);
  EXPECT_EQ(memory.current(MemoryCategory::communication), 0);
}

// Stage-3 memory knobs change what is held when, never the values.
TEST_F(EngineTest, StageThreeMemoryKnobsKeepParametersBitIdentical) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  const auto reference = train(comm, adamw(0), 4, 5, 0.2f);
  EngineConfig persistent = adamw(3);
  persistent.param_persistence_threshold = 200;  // the embedding (161) and the norm (38) stay whole
  EngineConfig kept = adamw(3);
  kept.reshard_after_forward = false;
  EngineConfig capped = adamw(3);
  capped.reshard_after_forward = false;  // the cap forces kept units to be resharded early
  capped.max_live_bytes = 2000;
  for (const EngineConfig& config : {persistent, kept, capped})
    EXPECT_EQ(train(comm, config, 4, 5, 0.2f), reference)
        << "persistence " << config.param_persistence_threshold << " reshard " << config.reshard_after_forward
        << " max_live " << config.max_live_bytes;
  EngineConfig too_small = adamw(3);
  too_small.max_live_bytes = 100;  // below the largest unit: every rank must refuse
  EXPECT_THROW(train(comm, too_small, 1, 5), InvalidArgument);
}

// FSDP's heuristic for its root, at stage 3: the last unit of a training forward keeps its
// gathered parameters, because backward runs it first. With k units of one size, a step's
// backward then gathers k - 1 units, so it sends (k - 1) unit-gathers more than with
// reshard_after_forward = false (no backward gathers at all; everything else the same).
// Compared across k = 2 and 4 the unknown bytes of one unit-gather cancel: 3x, not 2x.
TEST_F(EngineTest, StageThreeKeepsTheLastUnitOfForwardForBackward) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  auto extra_bytes_per_step = [&](int units) {
    std::vector<std::int64_t> sent[2];
    for (bool reshard : {true, false}) {
      nn::Sequential model("mlp");
      for (int l = 0; l < units; ++l) {
        model.add<nn::Linear>("fc" + std::to_string(l), 16, 16);
        model.add<nn::ReLU>("act" + std::to_string(l));
      }
      EngineConfig config = adamw(3);
      config.reshard_after_forward = reshard;
      Engine engine(model, config, comm);
      Tensor x({4, 16}), grad({4, 16});
      for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = grad.data()[i] = 0.01f * static_cast<float>(i % 7);
      for (int step = 0; step < 3; ++step) {
        const std::int64_t before = engine.collective_bytes_sent().within_shard_group;
        engine.forward(x);
        engine.backward(grad);
        engine.step();
        sent[reshard].push_back(engine.collective_bytes_sent().within_shard_group - before);
      }
    }
    std::vector<std::int64_t> extra;
    for (int step = 0; step < 3; ++step) extra.push_back(sent[true][step] - sent[false][step]);
    return extra;
  };
  const std::vector<std::int64_t> two = extra_bytes_per_step(2), four = extra_bytes_per_step(4);
  for (int step = 0; step < 3; ++step) {
    EXPECT_GT(two[step], 0) << "step " << step + 1;
    EXPECT_EQ(four[step], 3 * two[step]) << "step " << step + 1 << ": backward gathered the last unit again";
  }
}

// Many steps: no high-water mark grows after the first steps.
TEST_F(EngineTest, FiveHundredStepsDoNotLeak) {
  Communicator comm;
  for (int stage : {0, 3}) {
    auto model = make_model(0.1f);
    Engine engine(*model, adamw(stage), comm);
    run_steps(engine, 0, 5);
    std::vector<std::int64_t> after_warmup;
    for (std::size_t c = 0; c < kMemoryCategories; ++c)
      after_warmup.push_back(engine.memory().high_water(static_cast<MemoryCategory>(c)));
    run_steps(engine, 5, 495);
    for (std::size_t c = 0; c < kMemoryCategories; ++c)
      EXPECT_EQ(engine.memory().high_water(static_cast<MemoryCategory>(c)), after_warmup[c])
          << "stage " << stage << " " << to_string(static_cast<MemoryCategory>(c)) << " grew after step 5";
  }
}

// Custom modules that only add into `grad` (writes_stale_gradients() false, as every module
// written before the engine stopped clearing gradients): y = x * a (per feature) in one unit,
// z = y + b in the next, loss = sum(z). Both gradients are constants of the data, G_a[j] =
// sum over rows of x[:, j] and G_b[j] = rows, so plain SGD gives a = 1 - k lr G_a and
// b = -k lr G_b after k steps, in closed form. Were a stale gradient added to rather than
// zeroed, step k would apply k G: every stage, with accumulation and buckets, at any world size.
class AddsIntoGradient : public nn::Module {
 public:
  AddsIntoGradient(std::string name, bool multiply)
      : Module(name), weight(name + ".weight", {kFeatures}, false), multiply_(multiply) {}
  const Tensor& forward(const Tensor& x, const nn::ForwardContext&) override {
    input_ = x;
    output_.resize(x.shape());
    for (std::int64_t i = 0; i < x.numel(); ++i)
      output_.data()[i] = multiply_ ? x.data()[i] * weight.value.data()[i % kFeatures]
                                    : x.data()[i] + weight.value.data()[i % kFeatures];
    return output_;
  }
  const Tensor& backward(const Tensor& g) override {
    grad_input_.resize(g.shape());
    for (std::int64_t i = 0; i < g.numel(); ++i) {
      weight.grad.data()[i % kFeatures] += multiply_ ? g.data()[i] * input_.data()[i] : g.data()[i];
      grad_input_.data()[i] = multiply_ ? g.data()[i] * weight.value.data()[i % kFeatures] : g.data()[i];
    }
    return grad_input_;
  }
  std::vector<nn::Parameter*> parameters() override { return {&weight}; }
  void reset_parameters(std::mt19937_64&) override { weight.value.fill(multiply_ ? 1.0f : 0.0f); }
  static constexpr std::int64_t kFeatures = 5;  // shards padded at 2-4 ranks
  nn::Parameter weight;

 private:
  bool multiply_;
  Tensor input_, output_, grad_input_;
};

TEST_F(EngineTest, ModulesThatOnlyAddIntoGradientsSeeZerosEveryStep) {
  Communicator comm;
  constexpr std::int64_t rows = 3, features = AddsIntoGradient::kFeatures;
  constexpr int steps = 3;
  constexpr double lr = 0.01;
  Tensor x({rows, features});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 0.25f * static_cast<float>(i % 7) - 0.5f;
  Tensor ones({rows, features});
  ones.fill(1.0f);
  for (int stage = 0; stage <= 3; ++stage)
    for (int accumulation : {1, 2})
      for (std::int64_t bucket : {0, 4}) {
        nn::Sequential model("model");
        model.add<AddsIntoGradient>("scale", true);
        model.add<AddsIntoGradient>("shift", false);
        EngineConfig config;
        config.stage = stage;
        config.optimizer = {.kind = OptimizerKind::sgd, .lr = lr};
        config.gradient_accumulation_steps = accumulation;
        config.reduce_bucket_size = bucket;
        config.unit_starts = {0, 1};
        Engine engine(model, config, comm);
        for (int s = 0; s < steps * accumulation; ++s) {
          engine.forward(x);
          engine.backward(ones);
          engine.step();
        }
        const std::vector<float> params = engine.full_parameters();
        ASSERT_EQ(params.size(), static_cast<std::size_t>(2 * features));
        for (std::int64_t j = 0; j < features; ++j) {
          double column = 0;
          for (std::int64_t r = 0; r < rows; ++r) column += x.data()[r * features + j];
          const std::string where = "stage " + std::to_string(stage) + ", accumulation " + std::to_string(accumulation) +
                                    ", bucket " + std::to_string(bucket) + ", feature " + std::to_string(j);
          EXPECT_NEAR(params[j], 1.0 - steps * lr * column, 1e-5) << where;
          EXPECT_NEAR(params[features + j], -steps * lr * rows, 1e-5) << where;
        }
      }
}

// N ranks x micro-batch b must match one process accumulating the same N micro-batches.
// Tolerance: the only difference is the order in which per-rank gradients are summed (ring
// order vs sequential accumulation), a few float32 ulps per element per step; SGD is linear in
// the gradient, so after 5 steps differences stay within 2e-6 relative to the parameter size.
TEST_F(EngineTest, DataParallelMatchesSingleProcessAccumulation) {
  Communicator comm;
  Communicator self = comm.split(comm.rank(), 0);  // a world of one, for the reference
  for (int stage : {0, 3}) {
    EngineConfig config;
    config.stage = stage;
    config.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1, .momentum = 0.9};
    const auto distributed = train(comm, config, 5, 4);
    EngineConfig reference_config = config;
    reference_config.gradient_accumulation_steps = comm.size();
    // One process with N micro-steps of 4 walks the same global sample order.
    const auto reference = train(self, reference_config, 5, 4);
    ASSERT_EQ(distributed.size(), reference.size());
    double worst = 0;
    for (std::size_t i = 0; i < reference.size(); ++i)
      worst = std::max(worst, static_cast<double>(std::abs(distributed[i] - reference[i]) / std::max(1.0f, std::abs(reference[i]))));
    EXPECT_LT(worst, 2e-6) << "stage " << stage;
  }
}

// Accumulating k micro-batches of b equals one batch of k*b (means of equal-sized micro-batches
// average to the mean of the whole), within float32 rounding of the different summation order.
TEST_F(EngineTest, GradientAccumulationMatchesTheLargerBatch) {
  Communicator comm;
  for (int k : {1, 2, 4}) {
    EngineConfig accumulate;
    accumulate.stage = 2;
    accumulate.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1};
    accumulate.gradient_accumulation_steps = k;
    EngineConfig large = accumulate;
    large.gradient_accumulation_steps = 1;
    // Accumulating: rank r's micro-steps are disjoint from other ranks' at each micro-step; the
    // larger batch must hold the same samples per rank, so compare on one rank's view: a world
    // of one keeps the sample sets identical.
    Communicator self = comm.split(comm.rank(), 0);
    const auto a = train(self, accumulate, 4, 3);
    const auto b = train(self, large, 4, 3 * k);
    double worst = 0;
    for (std::size_t i = 0; i < a.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i])));
    EXPECT_LT(worst, 2e-6) << "k=" << k;
  }
}

TEST_F(EngineTest, ModelStateBytesFollowTheStageFormulas) {
  Communicator comm;
  const int n = comm.size();
  for (int stage = 0; stage <= 3; ++stage) {
    auto model = make_model(0);
    EngineConfig config = adamw(stage);
    Engine engine(*model, config, comm);
    const double psi = static_cast<double>(engine.parameter_count());
    // fp32 Adam: 4 bytes params + 4 grads + 8 optimizer per parameter, sharded per the table.
    const double formula[4] = {16 * psi, 8 * psi + 8 * psi / n, 4 * psi + 12 * psi / n, 16 * psi / n};
    const ModelStateBytes bytes = engine.model_state_bytes();
    // Padding: each unit pads to alignment (16) per tensor and to n*16 overall, all 16 bytes/elt
    // at most.
    const double slack = 16.0 * (16 * 8 + 16 * n) * engine.unit_count();
    EXPECT_NEAR(bytes.total(), formula[stage], slack) << "stage " << stage;
    EXPECT_EQ(bytes.total(), engine.memory().current(MemoryCategory::parameters_full) +
                                 engine.memory().current(MemoryCategory::parameters_shard) +
                                 engine.memory().current(MemoryCategory::gradients_full) +
                                 engine.memory().current(MemoryCategory::gradients_shard) +
                                 engine.memory().current(MemoryCategory::optimizer_states))
        << "stage " << stage << ": the ledger and the persistent buffers disagree";
  }
}

// One rank has nothing to shard: every stage must cost what stage 0 costs, in every memory
// category at its peak over training steps (no gathered copies beside a shard, no gradients
// packed into a shard of the same size), as FSDP runs NO_SHARD at world size 1.
TEST_F(EngineTest, AtWorldSizeOneEveryStageCostsWhatStageZeroCosts) {
  Communicator comm;
  if (comm.size() != 1) GTEST_SKIP() << "a world-size-1 property";
  auto peaks_of = [&](int stage) {
    auto model = make_model(0);
    Engine engine(*model, adamw(stage), comm);
    testing::run_steps(engine, 0, 3);
    std::vector<std::int64_t> peaks;
    for (std::size_t c = 0; c < kMemoryCategories; ++c)
      peaks.push_back(engine.memory().high_water(static_cast<MemoryCategory>(c)));
    return peaks;
  };
  const auto stage0 = peaks_of(0);
  for (int stage = 1; stage <= 3; ++stage) EXPECT_EQ(peaks_of(stage), stage0) << "stage " << stage;
}

// Gathered parameters of stage 3 are live only while needed: one unit at a time without
// overlap; with prefetching, never more than the running unit plus prefetch_bytes.
TEST_F(EngineTest, StageThreeLiveParameterMemoryStaysWithinItsBound) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  auto peak_of = [&](bool overlap, std::int64_t prefetch) {
    auto model = make_model(0);
    EngineConfig config = adamw(3);
    config.overlap_comm = overlap;
    config.prefetch_bytes = prefetch;
    Engine engine(*model, config, comm);
    run_steps(engine, 0, 3);
    EXPECT_EQ(engine.memory().current(MemoryCategory::parameters_full), 0);
    EXPECT_EQ(engine.memory().current(MemoryCategory::gradients_full), 0);
    EXPECT_GT(engine.memory().high_water(MemoryCategory::parameters_full), 0);
    return std::pair(engine.memory().high_water(MemoryCategory::parameters_full), engine.parameter_count() * 4);
  };
  const auto [one_unit, whole_model] = peak_of(false, 0);
  EXPECT_LT(one_unit, whole_model) << "without overlap, one unit's parameters at a time";
  for (std::int64_t prefetch : {std::int64_t{0}, std::int64_t{1000}, std::int64_t{3000}, std::int64_t{1} << 20}) {
    const auto [peak, total] = peak_of(true, prefetch);
    EXPECT_LE(peak, one_unit + prefetch) << "prefetch_bytes " << prefetch;
  }
  EXPECT_THROW(EngineConfig{.stage = 4}.validate(), InvalidArgument);
}

TEST_F(EngineTest, MismatchedConfigsFailOnEveryRankNamingTheKey) {
  Communicator comm;
  TrainingConfig config;
  require_same_on_all_ranks(config, comm);  // identical: no error
  if (comm.size() == 1) GTEST_SKIP() << "one rank cannot disagree with itself";
  if (comm.rank() == 1) config.apply_override("optimizer.params.lr=0.5");
  try {
    require_same_on_all_ranks(config, comm);
    ADD_FAILURE() << "ranks with different learning rates were accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("optimizer.params.lr"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).find("optimizer.params.eps"), std::string::npos) << "only differing keys are named";
  }
}

TEST_F(EngineTest, RanksWithDifferentModelsOrSettingsAreRefusedEverywhere) {
  Communicator comm;
  if (comm.size() == 1) GTEST_SKIP() << "one rank cannot disagree with itself";
  auto model = make_model(0);
  if (comm.rank() == 1) model->add<nn::Linear>("extra", 5, 5);
  EXPECT_THROW(Engine(*model, adamw(3), comm), InvalidArgument);
  auto same_model = make_model(0);
  EXPECT_THROW(Engine(*same_model, adamw(comm.rank() == 0 ? 2 : 3), comm), InvalidArgument);
}

}  // namespace
}  // namespace zs
