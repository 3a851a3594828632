// Tied parameters under mpirun: an LM head that reuses the token embedding's table
// (nn::TiedLinear), the table living in the first parameter group and borrowed by the last.
// Built two ways: the group-list constructor (FSDP2's fully_shard([a, b])) and a Sequential
// with unit_starts. Checked against the independent float64 reference of
// tests/support/float64_reference.hpp (never against the engine itself):
// - the table is one parameter: counted once, one master copy and one optimizer state, listed
//   once by full_parameters();
// - the first loss is the reference's (the head reads the initialised table, not a zero or
//   separately initialised copy), and after K AdamW steps the parameters are the reference's
//   (the table's gradient is the sum of its two uses), at stages 0-3, accumulation 1 and 2;
// - stages 0-3 (and the two ways of building) agree bit for bit;
// - a checkpoint saved at n ranks loads bitwise at another stage, into a world of one and
//   into two groups, and training continues like the uninterrupted run.
//
// Model: Embedding(13, 6) -> Linear(6, 6) -> ReLU -> TiedLinear(head, emb.weight) giving
// [batch, 13] logits -> mean cross-entropy on next-token labels. Sizes divide by neither 3
// nor 4 (every unit's shards are padded).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "../support/float64_reference.hpp"
#include "../support/mpi_test.hpp"
#include "../support/shared_temp_dir.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

namespace fs = std::filesystem;
namespace ref = testing::reference;

constexpr std::int64_t kVocab = 13, kDim = 6, kMicro = 3;
constexpr std::int64_t kParameters = kVocab * kDim + kDim * kDim + kDim;  // the table once
constexpr int kSteps = 4;
constexpr double kLr = 5e-3, kWeightDecay = 0.01;
const ref::TiedLm kReference{.vocab = kVocab, .dim = kDim};

// Tolerance against the float64 reference: relative 1e-5, measured against max(|p|, 0.1) (the
// model's parameters are O(0.1-1): the table is N(0, 1), fc U(-0.41, 0.41)). What float32
// legitimately costs: the gradients carry ~1e-7 relative rounding, and AdamW's update
// lr m_hat / (sqrt(v_hat) + eps) inherits it; the larger term is the optimizer's float32
// hyper-parameters ((1 - beta2) rounded to float is 1.3e-5 off, so sqrt(v_hat) is ~6.5e-6 off),
// an error proportional to the update: <= K lr 7e-6 = 1.4e-7 absolute after K = 4 steps of
// lr 5e-3, against the 1e-6 allowed here (measured on a float32 emulation of this model: 1.4e-7,
// and it doubles with lr 1e-2). A table gradient missing one of its two uses (or counting one
// twice) changes AdamW's step direction, moving parameters by ~lr = 5e-3, thousands of times more.
constexpr double kTolerance = 1e-5, kFloor = 0.1;

// Token stream t_k = (5 k + k / 13 + 1) mod 13; sample k: input t_k, label t_{k+1}.
std::int64_t token(std::int64_t k) { return (5 * k + k / 13 + 1) % kVocab; }

void engine_batch(std::int64_t first, std::int64_t count, Tensor& tokens, std::vector<std::int32_t>& labels) {
  tokens.resize({count});
  labels.resize(count);
  for (std::int64_t k = 0; k < count; ++k) {
    tokens.data()[k] = static_cast<float>(token(first + k));
    labels[k] = static_cast<std::int32_t>(token(first + k + 1));
  }
}

void reference_batch(std::int64_t first, std::int64_t count, std::vector<std::int64_t>& tokens,
                     std::vector<std::int64_t>& labels) {
  tokens.resize(static_cast<std::size_t>(count));
  labels.resize(static_cast<std::size_t>(count));
  for (std::int64_t k = 0; k < count; ++k) tokens[k] = token(first + k), labels[k] = token(first + k + 1);
}

enum class Build { groups, sequential };
std::string to_string(Build build) { return build == Build::groups ? "group list" : "Sequential + unit_starts"; }

// The model, built one way or the other, and its engine. The modules are declared before the
// engine, so they outlive it.
class TiedModel {
 public:
  TiedModel(Build build, EngineConfig config, Communicator& comm) {
    if (build == Build::groups) {
      emb_ = std::make_unique<nn::Embedding>("emb", kVocab, kDim);
      fc_ = std::make_unique<nn::Linear>("fc", kDim, kDim);
      act_ = std::make_unique<nn::ReLU>("act");
      head_ = std::make_unique<nn::TiedLinear>("head", emb_->weight);
      // {embedding} | {linear, relu} | {head}: the table's owner is the first group, its
      // borrower the last.
      std::vector<std::vector<nn::Module*>> groups = {{emb_.get()}, {fc_.get(), act_.get()}, {head_.get()}};
      engine_ = std::make_unique<Engine>(groups, config, comm);
    } else {
      sequential_ = std::make_unique<nn::Sequential>("model");
      nn::Embedding& emb = sequential_->add<nn::Embedding>("emb", kVocab, kDim);
      sequential_->add<nn::Linear>("fc", kDim, kDim);
      sequential_->add<nn::ReLU>("act");
      sequential_->add<nn::TiedLinear>("head", emb.weight);
      config.unit_starts = {0, 1, 3};  // the same three units
      engine_ = std::make_unique<Engine>(*sequential_, config, comm);
    }
  }
  Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<nn::Embedding> emb_;
  std::unique_ptr<nn::Linear> fc_;
  std::unique_ptr<nn::ReLU> act_;
  std::unique_ptr<nn::TiedLinear> head_;
  std::unique_ptr<nn::Sequential> sequential_;
  std::unique_ptr<Engine> engine_;
};

EngineConfig adamw(int stage, int accumulation = 1) {
  EngineConfig c;
  c.stage = stage;
  c.gradient_accumulation_steps = accumulation;
  c.optimizer = {.kind = OptimizerKind::adamw, .lr = kLr, .weight_decay = kWeightDecay};
  return c;
}

// Optimizer steps [first, first + steps): at micro-step a of step s, rank r of n takes
// `micro` samples from ((s A + a) n + r) micro, so step s's global batch is the contiguous
// n A micro samples from s n A micro (a world of one with micro = n kMicro walks the same
// batches as n ranks with kMicro). Returns this rank's loss on its first micro-batch.
double run_steps(Engine& engine, Communicator& comm, int first, int steps, std::int64_t micro) {
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  const int accumulation = engine.config().gradient_accumulation_steps;
  double first_loss = 0;
  for (int s = first; s < first + steps; ++s)
    for (int a = 0; a < accumulation; ++a) {
      engine_batch(((static_cast<std::int64_t>(s) * accumulation + a) * comm.size() + comm.rank()) * micro, micro,
                   tokens, labels);
      const double value = loss.forward(engine.forward(tokens), labels);
      if (s == first && a == 0) first_loss = value;
      engine.backward(loss.gradient());
      engine.step();
    }
  return first_loss;
}

// K AdamW steps of the float64 reference over global batches of `global` samples.
ref::Vector reference_run(const std::vector<float>& initial, std::int64_t global, int steps) {
  ref::Vector p(initial.begin(), initial.end()), grad;
  const std::vector<bool> decay = ref::decay_mask(kReference.slots());
  ref::AdamW optimizer({.weight_decay = kWeightDecay});
  std::vector<std::int64_t> tokens, labels;
  for (int s = 0; s < steps; ++s) {
    reference_batch(s * global, global, tokens, labels);
    kReference.loss(p, tokens, labels, &grad);
    optimizer.step(p, grad, decay, kLr);
  }
  return p;
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::string describe(Build build, int stage, int accumulation = 1) {
  return to_string(build) + ", stage " + std::to_string(stage) + ", accumulation " + std::to_string(accumulation) +
         ", " + std::to_string(testing::world_size()) + " ranks";
}

class TiedParametersTest : public testing::MpiTest {};

TEST_F(TiedParametersTest, TheTiedTableIsOneParameter) {
  Communicator comm;
  std::vector<float> first_initial;
  for (Build build : {Build::groups, Build::sequential})
    for (int stage = 0; stage <= 3; ++stage) {
      const std::string where = describe(build, stage);
      TiedModel model(build, adamw(stage), comm);
      Engine& engine = model.engine();
      EXPECT_EQ(engine.parameter_count(), kParameters) << where;
      const std::vector<float> initial = engine.full_parameters();
      EXPECT_EQ(static_cast<std::int64_t>(initial.size()), kParameters) << where;
      for (const char* state : {"exp_avg", "exp_avg_sq"})
        EXPECT_EQ(static_cast<std::int64_t>(engine.full_optimizer_state(state).size()), kParameters) << state << ", " << where;
      // The table comes first (first appearance) and is initialised N(0, 1) by its owner: a
      // mean square near 1, not the zeros of an uninitialised copy.
      double square = 0;
      for (std::int64_t i = 0; i < kVocab * kDim && i < static_cast<std::int64_t>(initial.size()); ++i)
        square += static_cast<double>(initial[i]) * initial[i];
      square /= kVocab * kDim;
      EXPECT_GT(square, 0.4) << where;
      EXPECT_LT(square, 2.5) << where;
      // Initialisation is one random stream over the modules in order: both builds, every stage.
      if (first_initial.empty()) first_initial = initial;
      EXPECT_TRUE(bitwise_equal(initial, first_initial)) << "initial parameters, " << where;
    }
}

TEST_F(TiedParametersTest, TrainingMatchesTheFloat64Reference) {
  Communicator comm;
  const double uniform_loss = std::log(static_cast<double>(kVocab));
  for (Build build : {Build::groups, Build::sequential})
    for (int accumulation : {1, 2})
      for (int stage = 0; stage <= 3; ++stage) {
        const std::string where = describe(build, stage, accumulation);
        TiedModel model(build, adamw(stage, accumulation), comm);
        Engine& engine = model.engine();
        const std::vector<float> initial = engine.full_parameters();
        const double first_loss = run_steps(engine, comm, 0, kSteps, kMicro);
        EXPECT_EQ(engine.optimizer_steps(), kSteps) << where;
        // The first loss: this rank's first micro-batch at the initial parameters. A head
        // reading a zero table would give exactly ln(13).
        EXPECT_GT(std::abs(first_loss - uniform_loss), 1e-2) << "first loss " << first_loss << " is ln(13), " << where;
        if (static_cast<std::int64_t>(initial.size()) == kParameters) {
          std::vector<std::int64_t> tokens, labels;
          reference_batch(comm.rank() * kMicro, kMicro, tokens, labels);
          const double expected_loss = kReference.loss(ref::Vector(initial.begin(), initial.end()), tokens, labels, nullptr);
          EXPECT_NEAR(first_loss, expected_loss, kTolerance * expected_loss) << "first loss, " << where;
        }
        const ref::Vector expected = reference_run(initial, comm.size() * accumulation * kMicro, kSteps);
        EXPECT_LT(ref::worst_relative_error(engine.full_parameters(), expected, kFloor), kTolerance)
            << "parameters after " << kSteps << " AdamW steps, " << where;
      }
}

// With one micro-step per optimizer step, every stage computes the same float32 sums in the
// same order: bit-identical parameters. The two builds have the same units and layouts, so
// they agree bit for bit too.
TEST_F(TiedParametersTest, StagesAndBuildsAgreeBitwise) {
  Communicator comm;
  std::vector<float> first;
  for (Build build : {Build::groups, Build::sequential})
    for (int stage = 0; stage <= 3; ++stage)
      for (bool node_shared : {false, true}) {
        if (node_shared && stage == 0) continue;
        EngineConfig config = adamw(stage);
        config.node_shared_parameters = node_shared;  // the head reads the table from the node's copy
        TiedModel model(build, config, comm);
        run_steps(model.engine(), comm, 0, kSteps, kMicro);
        const std::vector<float> params = model.engine().full_parameters();
        if (first.empty()) first = params;
        EXPECT_TRUE(bitwise_equal(params, first))
            << describe(build, stage) << (node_shared ? ", node-shared parameters" : "") << " vs group list, stage 0";
      }
}

// Each test gets a fresh directory shared by every rank.
class TiedCheckpointTest : public testing::SharedTempDirTest {};

struct FullState {
  std::vector<float> params, exp_avg, exp_avg_sq;
  bool operator==(const FullState&) const = default;
};

FullState full_state(Engine& engine) {
  return {engine.full_parameters(), engine.full_optimizer_state("exp_avg"), engine.full_optimizer_state("exp_avg_sq")};
}

// Saved at n ranks after 2 steps; loaded (a) at n ranks at another stage through the other
// build, which continues bit for bit like the uninterrupted run; (b) into a world of one on
// every rank, which continues like it within float32 rounding (the global batch is summed in
// another order); (c) into two groups of ranks (n >= 2): bitwise the saved state.
TEST_F(TiedCheckpointTest, SavedAtOneWorldSizeLoadsBitwiseAtAnother) {
  Communicator comm;
  const int n = comm.size();
  for (Build build : {Build::groups, Build::sequential})
    for (int stage = 0; stage <= 3; ++stage) {
      const std::string where = describe(build, stage);
      const std::string tag = "tied_" + std::to_string(static_cast<int>(build)) + "_" + std::to_string(stage);
      TiedModel saver(build, adamw(stage), comm);
      run_steps(saver.engine(), comm, 0, 2, kMicro);
      const FullState saved = full_state(saver.engine());
      EXPECT_EQ(static_cast<std::int64_t>(saved.params.size()), kParameters) << where;
      saver.engine().save(dir_, tag);
      run_steps(saver.engine(), comm, 2, 2, kMicro);
      const std::vector<float> uninterrupted = saver.engine().full_parameters();

      {  // (a) same ranks, another stage, the other build
        const Build other = build == Build::groups ? Build::sequential : Build::groups;
        TiedModel loader(other, adamw((stage + 1) % 4), comm);
        loader.engine().load(dir_, tag);
        EXPECT_TRUE(full_state(loader.engine()) == saved) << "loaded at stage " << (stage + 1) % 4 << ", " << where;
        EXPECT_EQ(loader.engine().optimizer_steps(), 2) << where;
        run_steps(loader.engine(), comm, 2, 2, kMicro);
        EXPECT_TRUE(bitwise_equal(loader.engine().full_parameters(), uninterrupted))
            << "resumed at stage " << (stage + 1) % 4 << " vs uninterrupted, " << where;
      }
      {  // (b) a world of one on every rank, one micro-batch holding the n ranks' samples
        Communicator self = comm.split(comm.rank(), 0);
        TiedModel loader(build, adamw(3 - stage), self);
        loader.engine().load(dir_, tag);
        EXPECT_TRUE(full_state(loader.engine()) == saved) << "loaded into a world of one, " << where;
        EXPECT_EQ(loader.engine().optimizer_steps(), 2) << where;
        run_steps(loader.engine(), self, 2, 2, n * kMicro);
        EXPECT_LT(ref::worst_relative_error(loader.engine().full_parameters(),
                                            ref::Vector(uninterrupted.begin(), uninterrupted.end()), kFloor),
                  kTolerance)
            << "resumed in a world of one vs uninterrupted at " << n << " ranks, " << where;
      }
      if (n >= 2) {  // (c) two groups (sizes ceil(n/2) and floor(n/2)), each loading it all
        Communicator half = comm.split(comm.rank() % 2, 0);
        TiedModel loader(build, adamw(stage), half);
        loader.engine().load(dir_, tag);
        EXPECT_TRUE(full_state(loader.engine()) == saved) << "loaded at " << half.size() << " ranks, " << where;
        run_steps(loader.engine(), half, 2, 1, kMicro);  // and it trains on
        EXPECT_EQ(loader.engine().optimizer_steps(), 3) << where;
      }
      comm.barrier();
    }
}

}  // namespace
}  // namespace zs
