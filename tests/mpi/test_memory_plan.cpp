// The memory planner (issue 18) against the ledger of real engines: for the examples' models
// (the Fashion-MNIST MLP, a small GPT with a tied head) and the step benchmark's MLP, at every
// stage and with the knobs that change transient memory (prefetch, buckets, reductions in
// flight, persistence, activation checkpointing, accumulation), the predicted peak is within
// 5% of MemoryLedger::high_water_total() after training steps; with hybrid sharding
// (zero_optimization.shard_group_size) at every group size that divides the world size. Then memory.limit_bytes /
// limit_fraction: refused on every rank before allocating (at construction, or at the first
// forward once activations are known) with the largest categories and settings that really
// fit (re-checked here by training with them); a limit that fits trains.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "../support/mpi_test.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/nn/transformer.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

class MemoryPlanTest : public testing::MpiTest {};

// A model as its owner holds it: the modules and the engine's units over them.
struct Model {
  std::vector<std::unique_ptr<nn::Module>> owned;
  std::vector<std::vector<nn::Module*>> units;
  Shape input;    // one micro-batch
  std::int64_t classes = 0;  // input values are token ids below this when > 0 (the GPT)
};

// examples/fashion_mnist.cpp's MLP: 784-H-H/2-10 with ReLU and dropout; one unit per Linear.
Model fashion_mlp(std::int64_t hidden = 128, std::int64_t batch = 64) {
  auto model = std::make_unique<nn::Sequential>("mlp");
  auto& fc1 = model->add<nn::Linear>("fc1", 784, hidden);
  auto& relu1 = model->add<nn::ReLU>("relu1");
  auto& drop1 = model->add<nn::Dropout>("drop1", 0.2f);
  auto& fc2 = model->add<nn::Linear>("fc2", hidden, hidden / 2);
  auto& relu2 = model->add<nn::ReLU>("relu2");
  auto& drop2 = model->add<nn::Dropout>("drop2", 0.2f);
  auto& fc3 = model->add<nn::Linear>("fc3", hidden / 2, 10);
  Model m;
  m.units = {{&fc1, &relu1, &drop1}, {&fc2, &relu2, &drop2}, {&fc3}};
  m.owned.push_back(std::move(model));
  m.input = {batch, 784};
  return m;
}

// bench/step_bench.cpp's model: square Linear + ReLU layers, one unit per layer.
Model bench_mlp(int layers = 4, std::int64_t width = 192, std::int64_t batch = 16) {
  auto model = std::make_unique<nn::Sequential>("mlp");
  Model m;
  for (int l = 0; l < layers; ++l) {
    auto& fc = model->add<nn::Linear>("fc" + std::to_string(l), width, width);
    auto& act = model->add<nn::ReLU>("act" + std::to_string(l));
    m.units.push_back({&fc, &act});
  }
  m.owned.push_back(std::move(model));
  m.input = {batch, width};
  return m;
}

// examples/gpt.cpp's model, small: embedding unit, one unit per block, final norm + tied head.
Model gpt(int n_layer = 2, std::int64_t n_embd = 48, std::int64_t block = 32, std::int64_t batch = 8) {
  Model m;
  auto embed = std::make_unique<nn::TokenPositionEmbedding>("embed", 256, block, n_embd, 0.1f);
  auto ln_f = std::make_unique<nn::LayerNorm>("ln_f", n_embd);
  auto head = std::make_unique<nn::TiedLinear>("lm_head", embed->wte.weight);
  m.units.push_back({embed.get()});
  for (int l = 0; l < n_layer; ++l) {
    auto blockm = std::make_unique<nn::TransformerBlock>("h" + std::to_string(l), n_embd, 4, 0.1f);
    m.units.push_back({blockm.get()});
    m.owned.push_back(std::move(blockm));
  }
  m.units.push_back({ln_f.get(), head.get()});
  m.owned.push_back(std::move(embed));
  m.owned.push_back(std::move(ln_f));
  m.owned.push_back(std::move(head));
  m.input = {batch, block};
  m.classes = 256;
  return m;
}

Tensor batch_for(const Model& m, std::uint64_t seed) {
  Tensor x(m.input);
  std::mt19937_64 random(seed);
  for (std::int64_t i = 0; i < x.numel(); ++i)
    x.data()[i] = m.classes > 0 ? static_cast<float>(random() % m.classes)
                                : std::uniform_real_distribution<float>(-1, 1)(random);
  return x;
}

// A loss gradient of the output's shape: what backward needs; its values do not matter here.
Tensor loss_gradient(const Tensor& output) {
  Tensor g(output.shape());
  for (std::int64_t i = 0; i < g.numel(); ++i) g.data()[i] = 1e-3f * static_cast<float>((i % 7) - 3);
  return g;
}

void train(Engine& engine, const Model& m, int micro_steps) {
  for (int s = 0; s < micro_steps; ++s) {
    const Tensor x = batch_for(m, 100 + static_cast<std::uint64_t>(s));
    engine.backward(loss_gradient(engine.forward(x)));
    engine.step();
  }
}

// A configuration at `stage` whose engines do not print their plan (the tests build many).
EngineConfig quiet_config(int stage) {
  EngineConfig config;
  config.stage = stage;
  config.memory.print_plan = false;
  return config;
}

struct Variant {
  std::string name;
  EngineConfig config;
};

// Hybrid sharding too: model states sharded over every group size below the world size that
// divides it, replicated across the groups (the planner sees the group's size).
std::vector<Variant> variants(int world_size) {
  std::vector<Variant> out;
  for (int group = 1; group < world_size; ++group) {
    if (world_size % group != 0) continue;
    for (int stage = 1; stage <= 3; ++stage) {
      EngineConfig c = quiet_config(stage);
      c.shard_group_size = group;
      out.push_back({"stage " + std::to_string(stage) + " groups of " + std::to_string(group), c});
    }
    EngineConfig buckets = quiet_config(3);
    buckets.shard_group_size = group;
    buckets.reduce_bucket_size = 4096;
    out.push_back({"stage 3 groups of " + std::to_string(group) + " buckets 4096", buckets});
  }
  for (int stage = 0; stage <= 3; ++stage) {
    const EngineConfig c = quiet_config(stage);
    out.push_back({"stage " + std::to_string(stage), c});
    EngineConfig buckets = c;
    buckets.reduce_bucket_size = 4096;
    out.push_back({"stage " + std::to_string(stage) + " buckets 4096", buckets});
    EngineConfig accumulation = c;
    accumulation.gradient_accumulation_steps = 2;
    accumulation.activation_checkpointing = true;
    out.push_back({"stage " + std::to_string(stage) + " accumulation 2, checkpointing", accumulation});
  }
  EngineConfig base = quiet_config(3);
  EngineConfig no_prefetch = base;
  no_prefetch.prefetch_bytes = 0;
  out.push_back({"stage 3 prefetch 0", no_prefetch});
  EngineConfig no_overlap = base;
  no_overlap.overlap_comm = false;
  out.push_back({"stage 3 overlap off", no_overlap});
  EngineConfig keep = base;
  keep.reshard_after_forward = false;
  keep.reductions_in_flight = 1;
  out.push_back({"stage 3 no reshard, 1 in flight", keep});
  EngineConfig persistent = base;
  persistent.param_persistence_threshold = 20000;
  out.push_back({"stage 3 persistence 20000", persistent});
  EngineConfig some = base;
  some.checkpointed_units = {1};
  out.push_back({"stage 3 unit 1 checkpointed", some});
  // Mixed precision: 16-bit parameters and gradients, float32 masters, compute copies.
  for (int stage = 0; stage <= 3; ++stage) {
    EngineConfig bf16 = quiet_config(stage);
    bf16.precision.bf16 = true;
    out.push_back({"stage " + std::to_string(stage) + " bf16", bf16});
  }
  EngineConfig fp16 = base;
  fp16.precision.fp16 = true;
  fp16.reduce_bucket_size = 4096;
  fp16.gradient_accumulation_steps = 2;
  out.push_back({"stage 3 fp16 buckets 4096, accumulation 2", fp16});
  EngineConfig fp32_reduce = quiet_config(1);
  fp32_reduce.precision.bf16 = true;
  fp32_reduce.precision.reduce_dtype = DType::float32;
  out.push_back({"stage 1 bf16 reduce float32", fp32_reduce});
  for (int stage = 1; stage <= 3; ++stage) {
    EngineConfig shared = quiet_config(stage);
    shared.node_shared_parameters = true;
    out.push_back({"stage " + std::to_string(stage) + " node-shared parameters", shared});
  }
  EngineConfig bf16_keep = keep;
  bf16_keep.precision.bf16 = true;
  out.push_back({"stage 3 bf16 no reshard, 1 in flight", bf16_keep});
  return out;
}

void expect_prediction_matches(const std::string& model_name, Model (*make)(), Communicator& comm) {
  double worst = 0;  // the largest |predicted - measured| / measured over the variants
  for (const Variant& v : variants(comm.size())) {
    Model m = make();
    Engine engine(m.units, v.config, comm);
    const MemoryPlan before = engine.plan_memory(m.input);
    train(engine, m, 3 * v.config.gradient_accumulation_steps);
    const MemoryLedger& ledger = engine.memory();
    ASSERT_NE(engine.memory_plan(), nullptr);
    const MemoryPlan& plan = *engine.memory_plan();
    const std::string where = model_name + ", " + v.name + ", " + std::to_string(comm.size()) + " ranks";
    EXPECT_EQ(plan.peak, before.peak) << where << ": the plan at the first forward is the one asked for beforehand";
    const auto measured = static_cast<double>(ledger.high_water_total());
    worst = std::max(worst, std::abs(static_cast<double>(plan.peak) - measured) / measured);
    EXPECT_NEAR(static_cast<double>(plan.peak), measured, 0.05 * measured)
        << where << "\nplan:\n" << plan.table() << "ledger:\n" << ledger.report();
    ASSERT_TRUE(plan.activations.has_value()) << where << ": " << plan.activations_note;
    EXPECT_EQ(*plan.activations, ledger.high_water(MemoryCategory::activations)) << where;
    EXPECT_EQ(plan.model_states.total(), engine.model_state_bytes().total()) << where;
  }
  if (comm.rank() == 0)
    std::printf("%s, %d ranks: %zu configurations, worst |predicted - measured| / measured = %.4f%%\n",
                model_name.c_str(), comm.size(), variants(comm.size()).size(), 100 * worst);
}

TEST_F(MemoryPlanTest, PredictionWithinFivePercentOfTheLedgerForTheFashionMnistMlp) {
  Communicator comm;
  expect_prediction_matches("fashion MLP", [] { return fashion_mlp(); }, comm);
}

TEST_F(MemoryPlanTest, PredictionWithinFivePercentOfTheLedgerForTheGpt) {
  Communicator comm;
  expect_prediction_matches("GPT", [] { return gpt(); }, comm);
}

TEST_F(MemoryPlanTest, PredictionWithinFivePercentOfTheLedgerForTheStepBenchMlp) {
  Communicator comm;
  expect_prediction_matches("step-bench MLP", [] { return bench_mlp(); }, comm);
}

// The example's default width (512) at the real micro-batch, stage 3 as the main job runs it.
TEST_F(MemoryPlanTest, PredictionForTheMainJobsModel) {
  Communicator comm;
  Model m = fashion_mlp(512, 64);
  EngineConfig config;
  config.stage = 3;
  Engine engine(m.units, config, comm);
  train(engine, m, 4);
  const auto measured = static_cast<double>(engine.memory().high_water_total());
  EXPECT_NEAR(static_cast<double>(engine.memory_plan()->peak), measured, 0.05 * measured);
}

std::string refusal_text(const EngineConfig& config, Model (*make)(), Communicator& comm, bool& at_construction) {
  Model m = make();
  at_construction = true;
  try {
    Engine engine(m.units, config, comm);
    at_construction = false;
    EXPECT_EQ(engine.memory().high_water(MemoryCategory::activations), 0);
    train(engine, m, 1);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "";
}

TEST_F(MemoryPlanTest, ModelStatesOverTheLimitAreRefusedAtConstructionOnEveryRank) {
  Communicator comm;
  Model probe = fashion_mlp();
  EngineConfig config = quiet_config(0);
  const MemoryPlan at_stage0 = Engine(probe.units, config, comm).plan_memory(std::nullopt);
  // With more than one rank, the smallest sharded stage's peak: that stage fits exactly. At
  // one rank no stage shards anything, so only more ranks can fit.
  std::int64_t smallest = at_stage0.peak;
  for (int stage = 1; stage <= 3; ++stage) {
    EngineConfig sharded = config;
    sharded.stage = stage;
    smallest = std::min(smallest, Engine(probe.units, sharded, comm).plan_memory(std::nullopt).peak);
  }
  config.memory.limit_bytes = comm.size() > 1 ? smallest : at_stage0.peak * 9 / 10;
  ASSERT_LT(config.memory.limit_bytes, at_stage0.peak);
  bool at_construction = false;
  const std::string text = refusal_text(config, [] { return fashion_mlp(); }, comm, at_construction);
  ASSERT_FALSE(text.empty()) << "no refusal on rank " << comm.rank();
  EXPECT_TRUE(at_construction) << text;
  EXPECT_NE(text.find("exceeds memory.limit_bytes"), std::string::npos) << text;
  EXPECT_NE(text.find("nothing allocated yet"), std::string::npos) << text;
  EXPECT_NE(text.find("Largest: optimizer states"), std::string::npos) << text;  // 8 of stage 0's 16 bytes
  if (comm.size() > 1) EXPECT_NE(text.find("\n  zero_optimization.stage="), std::string::npos) << text;
  else EXPECT_NE(text.find("zero_optimization.stage=3 and a world size of"), std::string::npos) << text;
}

// Every setting the refusal proposes must really fit: train with it under the same limit.
TEST_F(MemoryPlanTest, ActivationsOverTheLimitAreRefusedAtTheFirstForwardAndTheAdviceFits) {
  Communicator comm;
  auto make = [] { return gpt(2, 48, 32, 16); };
  EngineConfig config = quiet_config(3);
  Model probe = make();
  const MemoryPlan without = Engine(probe.units, config, comm).plan_memory(std::nullopt);
  EngineConfig checkpointed = config;
  checkpointed.activation_checkpointing = true;
  const MemoryPlan full = Engine(probe.units, config, comm).plan_memory(probe.input);
  const MemoryPlan small = Engine(probe.units, checkpointed, comm).plan_memory(probe.input);
  ASSERT_LT(small.peak, full.peak);
  ASSERT_GT(small.peak, without.peak);
  config.memory.limit_bytes = (small.peak + full.peak) / 2;
  bool at_construction = true;
  const std::string text = refusal_text(config, make, comm, at_construction);
  ASSERT_FALSE(text.empty()) << "no refusal on rank " << comm.rank();
  EXPECT_FALSE(at_construction) << text;
  EXPECT_NE(text.find("activations"), std::string::npos) << text;
  EXPECT_NE(text.find("activation_checkpointing.units=all"), std::string::npos) << text;
  // The advice, applied: it trains under the same limit, and the ledger stays under it.
  Model m = make();
  checkpointed.memory.limit_bytes = config.memory.limit_bytes;
  Engine engine(m.units, checkpointed, comm);
  train(engine, m, 2);
  EXPECT_LE(engine.memory().high_water_total(), config.memory.limit_bytes);
}

TEST_F(MemoryPlanTest, ALimitThatFitsTrains) {
  Communicator comm;
  Model probe = gpt();
  EngineConfig config = quiet_config(2);
  config.memory.limit_bytes = Engine(probe.units, config, comm).plan_memory(probe.input).peak;  // exactly
  Model m = gpt();
  Engine engine(m.units, config, comm);
  train(engine, m, 2);
  EXPECT_LE(engine.memory().high_water_total(), config.memory.limit_bytes);
  // A fraction of physical memory: all of it fits this small model, a billionth does not.
  EngineConfig fraction = config;
  fraction.memory.limit_bytes = 0;
  fraction.memory.limit_fraction = 1.0;
  Model m2 = gpt();
  Engine roomy(m2.units, fraction, comm);
  train(roomy, m2, 1);
  fraction.memory.limit_fraction = 1e-9;
  bool at_construction = false;
  Model m3 = gpt();
  std::string text;
  try {
    Engine tight(m3.units, fraction, comm);
  } catch (const InvalidArgument& e) {
    text = e.what();
  }
  EXPECT_NE(text.find("memory.limit_fraction"), std::string::npos) << text;
  (void)at_construction;
}

TEST_F(MemoryPlanTest, BadLimitsAreRefusedNamingTheKey) {
  EngineConfig config;
  config.memory.limit_bytes = -1;
  EXPECT_THROW(config.validate(), InvalidArgument);
  config.memory.limit_bytes = 0;
  config.memory.limit_fraction = 1.5;
  try {
    config.validate();
    ADD_FAILURE() << "limit_fraction 1.5 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("memory.limit_fraction"), std::string::npos);
  }
}

}  // namespace
}  // namespace zs
