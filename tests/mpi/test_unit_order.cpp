// Models whose unit order changes between steps (ForwardProgram): a branch skipped, units
// reordered, a unit run twice. Checked against an unrolled single-process reference (a unit
// run twice is two module copies sharing one set of weights, so no recomputation), bitwise
// across stages and memory knobs, and for the errors that must reach every rank, not hang.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using testing::batch;

constexpr std::int64_t kWidth = 9, kMicro = 3;
constexpr float kDropout = 0.25f;

// Child i of the model, built alone (the reference builds copies of a unit's children).
std::unique_ptr<nn::Module> make_child(std::size_t i) {
  switch (i) {
    case 0: return std::make_unique<nn::Embedding>("emb", 23, kWidth);
    case 1: return std::make_unique<nn::Linear>("a.fc", kWidth, kWidth);
    case 2: return std::make_unique<nn::GELU>("a.act");
    case 3: return std::make_unique<nn::Dropout>("a.drop", kDropout);
    case 4: return std::make_unique<nn::Linear>("b.fc", kWidth, kWidth);
    case 5: return std::make_unique<nn::GELU>("b.act");
    case 6: return std::make_unique<nn::Linear>("c.fc", kWidth, kWidth);
    case 7: return std::make_unique<nn::GELU>("c.act");
    case 8: return std::make_unique<nn::Dropout>("c.drop", kDropout);
    default: return std::make_unique<nn::Linear>("head", kWidth, 5);
  }
}
constexpr std::size_t kChildren = 10;
// Units: embedding | block a | block b | block c | head.
const std::vector<std::size_t> kUnitStarts = {0, 1, 4, 6, 9};

std::unique_ptr<nn::Sequential> make_model() {
  auto model = std::make_unique<nn::Sequential>("model");
  for (std::size_t i = 0; i < kChildren; ++i) model->add_module(make_child(i));
  return model;
}

// The units micro-step m runs: the plain order, block b skipped, b twice in a row before a
// (c skipped), c twice around a (dropout in both runs). The same on every rank.
std::vector<std::size_t> route_of(std::int64_t micro_step) {
  switch (micro_step % 4) {
    case 0: return {0, 1, 2, 3, 4};
    case 1: return {0, 1, 3, 4};
    case 2: return {0, 2, 2, 1, 4};
    default: return {0, 3, 1, 3, 4};
  }
}

// What a user writes: a forward with control flow over the engine's units.
ForwardProgram program_for(const std::vector<std::size_t>& route) {
  return [route](UnitRunner& units, const Tensor& input) -> const Tensor& {
    const Tensor* x = &input;
    for (std::size_t unit : route) x = &units.run(unit, *x);
    return *x;
  };
}

EngineConfig base_config(int stage) {
  EngineConfig c;
  c.stage = stage;
  c.unit_starts = kUnitStarts;
  c.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1};
  return c;
}

// Rank r takes samples [(m n + r) micro, +micro) at micro-step m.
void micro_batch(Communicator& comm, std::int64_t m, Tensor& tokens, std::vector<std::int32_t>& labels) {
  batch((m * comm.size() + comm.rank()) * kMicro, kMicro, tokens, labels);
}

// An engine over a fresh model, and this rank's micro-batch 0.
struct EngineOnBatch {
  EngineOnBatch(Communicator& comm, const EngineConfig& config) : model(make_model()), engine(*model, config, comm) {
    micro_batch(comm, 0, tokens, labels);
  }
  std::unique_ptr<nn::Sequential> model;
  Engine engine;
  Tensor tokens;
  std::vector<std::int32_t> labels;
};

struct Trained {
  std::vector<float> parameters;
  std::int64_t order_changes = 0;
};

Trained train(Communicator& comm, const EngineConfig& config, int steps) {
  auto model = make_model();
  Engine engine(*model, config, comm);
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  for (std::int64_t m = 0; m < steps * config.gradient_accumulation_steps; ++m) {
    micro_batch(comm, m, tokens, labels);
    loss.forward(engine.forward(tokens, program_for(route_of(m))), labels);
    engine.backward(loss.gradient());
    engine.step();
  }
  return {engine.full_parameters(), engine.unit_order_changes()};
}

// One process plays every rank in turn. Each unit has up to two module copies whose
// parameters share the first copy's value and gradient storage, so a unit run twice keeps
// both runs' activations, and backward adds both runs' gradients into one tensor.
std::vector<float> train_unrolled_reference(int world, const EngineConfig& config, int steps) {
  auto model = make_model();
  model->allocate_parameters();
  nn::initialize_parameters(*model, config.seed);  // the engine's initial values
  const std::size_t units = kUnitStarts.size();
  auto unit_end = [&](std::size_t u) { return u + 1 < units ? kUnitStarts[u + 1] : kChildren; };
  std::vector<std::vector<std::unique_ptr<nn::Module>>> second_copy(units);
  for (std::size_t u = 0; u < units; ++u)
    for (std::size_t c = kUnitStarts[u]; c < unit_end(u); ++c) {
      auto copy = make_child(c);
      auto shared = nn::all_parameters(model->at(c)), own = nn::all_parameters(*copy);
      for (std::size_t p = 0; p < own.size(); ++p) {
        own[p]->value = shared[p]->value;  // tensors share storage on copy
        own[p]->grad = shared[p]->grad;
      }
      second_copy[u].push_back(std::move(copy));
    }
  auto module_of = [&](std::size_t u, std::size_t c, int copy) -> nn::Module& {
    return copy == 0 ? model->at(c) : *second_copy[u][c - kUnitStarts[u]];
  };
  std::vector<std::mt19937_64> random;
  for (int r = 0; r < world; ++r) random.emplace_back(Engine::dropout_seed(config.seed, r));
  const auto parameters = nn::all_parameters(*model);
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  const int accumulation = config.gradient_accumulation_steps;
  for (int s = 0; s < steps; ++s) {
    for (nn::Parameter* p : parameters) p->grad.fill(0);
    for (int a = 0; a < accumulation; ++a) {
      const std::int64_t m = static_cast<std::int64_t>(s) * accumulation + a;
      const auto route = route_of(m);
      for (int r = 0; r < world; ++r) {
        batch((m * world + r) * kMicro, kMicro, tokens, labels);
        const nn::ForwardContext context{.training = true, .random = &random[r]};
        std::vector<int> copy_of_run;
        std::vector<int> runs_so_far(units, 0);
        const Tensor* x = &tokens;
        for (std::size_t u : route) {
          copy_of_run.push_back(runs_so_far[u]++);
          for (std::size_t c = kUnitStarts[u]; c < unit_end(u); ++c)
            x = &module_of(u, c, copy_of_run.back()).forward(*x, context);
        }
        loss.forward(*x, labels);
        const Tensor* g = &loss.gradient();
        for (std::size_t k = route.size(); k-- > 0;)
          for (std::size_t c = unit_end(route[k]); c-- > kUnitStarts[route[k]];)
            g = &module_of(route[k], c, copy_of_run[k]).backward(*g);
      }
    }
    const float scale = 1.0f / static_cast<float>(world * accumulation), lr = static_cast<float>(config.optimizer.lr);
    for (nn::Parameter* p : parameters)
      for (std::int64_t i = 0; i < p->numel(); ++i) p->value.data()[i] -= lr * (p->grad.data()[i] * scale);
  }
  std::vector<float> out;
  for (nn::Parameter* p : parameters) out.insert(out.end(), p->value.data(), p->value.data() + p->numel());
  return out;
}

// Relative to max(1, |reference|): gradients are summed across ranks in ring order by the
// engine and in rank order by the reference, a few float32 ulps per step.
double worst_difference(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::abs(static_cast<double>(b[i]))));
  return worst;
}

class UnitOrderTest : public testing::MpiTest {};

TEST_F(UnitOrderTest, BranchesReorderingAndReuseMatchAnUnrolledReference) {
  Communicator comm;
  for (int accumulation : {1, 2})
    for (int stage = 0; stage <= 3; ++stage)
      for (bool overlap : {true, false}) {
        EngineConfig config = base_config(stage);
        config.gradient_accumulation_steps = accumulation;
        config.overlap_comm = overlap;
        const auto reference = train_unrolled_reference(comm.size(), config, 6);
        const Trained trained = train(comm, config, 6);
        EXPECT_LT(worst_difference(trained.parameters, reference), 2e-6)
            << "stage " << stage << ", accumulation " << accumulation << ", overlap " << overlap;
        // Micro-steps 1, 2, 3, 4 (back to the plain order), ... each leave the recorded order.
        EXPECT_EQ(trained.order_changes, 6 * accumulation - 1);
      }
}

TEST_F(UnitOrderTest, StagesAndStageThreeKnobsStayBitIdenticalWhenTheOrderChanges) {
  Communicator comm;
  const auto reference = train(comm, base_config(0), 8).parameters;
  std::vector<std::pair<std::string, EngineConfig>> variants;
  for (int stage = 1; stage <= 3; ++stage) variants.emplace_back("stage " + std::to_string(stage), base_config(stage));
  EngineConfig c = base_config(3);
  c.overlap_comm = false;
  variants.emplace_back("stage 3 without overlap", c);
  c = base_config(3);
  c.reshard_after_forward = false;
  variants.emplace_back("stage 3 keeping parameters for backward", c);
  c = base_config(3);
  c.max_live_bytes = 2 * 128 * 4;  // two gathered blocks (90 parameters each, padded to <= 128)
  c.prefetch_bytes = 1 << 20;
  variants.emplace_back("stage 3 prefetching up to max_live_bytes", c);
  c = base_config(3);
  c.param_persistence_threshold = 100;  // blocks and head stay whole, the embedding is sharded
  variants.emplace_back("stage 3 with persistent units", c);
  for (int stage = 0; stage <= 3; ++stage) {
    c = base_config(stage);
    c.reduce_bucket_size = 50;
    variants.emplace_back("stage " + std::to_string(stage) + " with gradient buckets", c);
  }
  for (const auto& [name, config] : variants) EXPECT_EQ(train(comm, config, 8).parameters, reference) << name;
}

TEST_F(UnitOrderTest, GatheredParametersStayWithinMaxLiveBytesWhenPrefetchIsAbandoned) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  EngineConfig config = base_config(3);
  const std::int64_t largest_unit = 23 * kWidth + 16;  // the embedding, padded generously
  config.max_live_bytes = 2 * 256 * 4;
  config.prefetch_bytes = 1 << 20;
  auto model = make_model();
  Engine engine(*model, config, comm);
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  for (std::int64_t m = 0; m < 8; ++m) {
    micro_batch(comm, m, tokens, labels);
    loss.forward(engine.forward(tokens, program_for(route_of(m))), labels);
    engine.backward(loss.gradient());
    engine.step();
    EXPECT_EQ(engine.last_unit_order(), route_of(m));
  }
  ASSERT_LT(largest_unit * 4, config.max_live_bytes);
  EXPECT_LE(engine.memory().high_water(MemoryCategory::parameters_full), config.max_live_bytes);
  EXPECT_EQ(engine.memory().current(MemoryCategory::parameters_full), 0) << "a prefetched gather was never freed";
}

TEST_F(UnitOrderTest, TheRecordedOrderIsReplayedUntilAForwardLeavesIt) {
  Communicator comm;
  EngineOnBatch setup(comm, base_config(3));
  auto& [model, engine, tokens, labels] = setup;
  const std::vector<std::size_t> skip_b = {0, 1, 3, 4};
  std::vector<std::int64_t> changes;
  for (const auto& route : {route_of(0), skip_b, skip_b, route_of(0), skip_b}) {
    engine.evaluate(tokens, program_for(route));
    changes.push_back(engine.unit_order_changes());
  }
  // The plain order is expected at first; each switch is one change, a repeat is none.
  EXPECT_EQ(changes, (std::vector<std::int64_t>{0, 1, 1, 2, 3}));
  engine.evaluate(tokens);  // the plain forward records like any other
  EXPECT_EQ(engine.last_unit_order(), route_of(0));
  EXPECT_EQ(engine.unit_order_changes(), 4);
  EXPECT_EQ(engine.unit_of_child(5), 2u);
  EXPECT_THROW(engine.unit_of_child(kChildren), InvalidArgument);
}

TEST_F(UnitOrderTest, LeavingTheRecordedOrderFreesItsPrefetchesAndGathersOnDemand) {
  ZS_SKIP_AT_WORLD_SIZE_ONE();
  Communicator comm;
  EngineConfig config = base_config(3);
  config.prefetch_bytes = 1 << 20;  // room to prefetch every unit
  EngineOnBatch setup(comm, config);
  auto& [model, engine, tokens, labels] = setup;
  engine.evaluate(tokens);  // records the plain order
  std::int64_t live_while_following = -1, live_after_leaving = -1;
  const ForwardProgram skip_b = [&](UnitRunner& units, const Tensor& input) -> const Tensor& {
    const Tensor* x = &units.run(0, input);
    live_while_following = engine.memory().current(MemoryCategory::parameters_full);
    x = &units.run(1, *x);
    x = &units.run(3, *x);  // leaves the order: block b was prefetched, and the head after it
    live_after_leaving = engine.memory().current(MemoryCategory::parameters_full);
    return units.run(4, *x);
  };
  engine.evaluate(tokens, skip_b);
  EXPECT_GT(live_while_following, 0) << "nothing prefetched along the recorded order";
  EXPECT_EQ(live_after_leaving, 0) << "gathers prefetched along the abandoned order were kept";
  EXPECT_EQ(engine.memory().current(MemoryCategory::parameters_full), 0);
}

// After any of these refusals the engine must still train: the same collectives were
// completed on every rank.
void expect_engine_still_trains(Engine& engine, Communicator& comm) {
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  micro_batch(comm, 0, tokens, labels);
  loss.forward(engine.forward(tokens, program_for(route_of(1))), labels);
  engine.backward(loss.gradient());
  EXPECT_TRUE(engine.step());
  EXPECT_EQ(engine.full_parameters().size(), static_cast<std::size_t>(engine.parameter_count()));
}

void expect_refused_on_every_rank(Engine& engine, const Tensor& tokens, const ForwardProgram& program,
                                  const std::string& expected_message) {
  try {
    engine.forward(tokens, program);
    ADD_FAILURE() << "not refused; expected: " << expected_message;
  } catch (const InvalidArgument& error) {
    EXPECT_NE(std::string(error.what()).find(expected_message), std::string::npos) << error.what();
  }
  EXPECT_THROW(engine.backward(tokens), InvalidArgument) << "backward after a refused forward";
}

TEST_F(UnitOrderTest, RanksRunningDifferentUnitsAreRefusedOnEveryRankWithoutAHang) {
  Communicator comm;
  if (comm.size() == 1) GTEST_SKIP() << "one rank cannot disagree with itself";
  for (int stage : {0, 3}) {
    EngineConfig config = base_config(stage);
    config.prefetch_bytes = 1 << 20;  // stage 3: gathers in flight when the mismatch is found
    EngineOnBatch setup(comm, config);
    auto& [model, engine, tokens, labels] = setup;
    // A branch on rank-local data: rank 0 runs block b, the others skip it.
    const auto local_branch = program_for(comm.rank() == 0 ? route_of(0) : std::vector<std::size_t>{0, 1, 3, 4});
    expect_refused_on_every_rank(engine, tokens, local_branch, "ranks ran different units at run 2");
    // One rank's program stops early.
    const auto stops_early = program_for(comm.rank() == 0 ? std::vector<std::size_t>{0, 1} : route_of(0));
    expect_refused_on_every_rank(engine, tokens, stops_early, "none (the program returned)");
    expect_engine_still_trains(engine, comm);
  }
}

TEST_F(UnitOrderTest, ProgramsThatBreakTheChainOrNameNoUnitAreRefused) {
  Communicator comm;
  EngineOnBatch setup(comm, base_config(3));
  auto& [model, engine, tokens, labels] = setup;
  const ForwardProgram skips_an_output = [](UnitRunner& units, const Tensor& input) -> const Tensor& {
    units.run(0, input);
    return units.run(1, input);  // block a on the token ids, not on the embedding's output
  };
  expect_refused_on_every_rank(engine, tokens, skips_an_output, "not the previous run's output");
  const ForwardProgram returns_the_input = [](UnitRunner& units, const Tensor& input) -> const Tensor& {
    units.run(0, input);
    return input;
  };
  expect_refused_on_every_rank(engine, tokens, returns_the_input, "returned something other than the last run's output");
  expect_refused_on_every_rank(engine, tokens, program_for({0, 7}), "UnitRunner::run(7): the engine has 5 units");
  Engine* outer = &engine;
  const ForwardProgram nested = [outer](UnitRunner&, const Tensor& input) -> const Tensor& {
    return outer->forward(input);
  };
  expect_refused_on_every_rank(engine, tokens, nested, "called from inside a ForwardProgram");
  expect_engine_still_trains(engine, comm);
}

}  // namespace
}  // namespace zs
