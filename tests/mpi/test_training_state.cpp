// Training state that stays right under misuse and across resumes (issue 11): the engine's
// contracts around micro-steps, accumulation windows and loads, at every stage, under mpirun.
#include <gtest/gtest.h>

#include <cstring>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "../support/shared_temp_dir.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using testing::batch;
using testing::make_model;

class TrainingStateTest : public testing::MpiTest {};

EngineConfig adamw(int stage, int accumulation) {
  EngineConfig config;
  config.stage = stage;
  config.gradient_accumulation_steps = accumulation;
  config.optimizer.lr = 0.01;
  return config;
}

// One micro-step on global samples [8 m, 8 m + 8): forward, backward (twice if `extra_backward`,
// which must throw), step. Returns whether step() ended an accumulation window.
bool micro_step(Engine& engine, int m, bool extra_backward = false) {
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  batch(m * 8, 8, tokens, labels);
  loss.forward(engine.forward(tokens), labels);
  engine.backward(loss.gradient());
  if (extra_backward) {
    EXPECT_THROW(engine.backward(loss.gradient()), InvalidArgument) << "a second backward before step() was accepted";
  }
  return engine.step();
}

// Issue 11, item 6: two backward passes before one step() reduced the first micro-batch twice
// at stage 0 with overlap (and not at other stages). Now the second is refused at every stage
// and setting, the same on every rank, and the refused call changes nothing: training goes on
// exactly as if it had not been made.
TEST_F(TrainingStateTest, SecondBackwardBeforeStepIsRefusedAndChangesNothing) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage)
    for (bool overlap : {true, false}) {
      auto reference_model = make_model(0);
      auto misused_model = make_model(0);
      EngineConfig config = adamw(stage, 1);
      config.overlap_comm = overlap;
      Engine reference(*reference_model, config, comm), misused(*misused_model, config, comm);
      for (int m = 0; m < 3; ++m) {
        micro_step(reference, m);
        micro_step(misused, m, /*extra_backward=*/m == 1);
      }
      EXPECT_EQ(misused.full_parameters(), reference.full_parameters()) << "stage " << stage << " overlap " << overlap;
    }
}

// The other half of the micro-step contract: step() with no backward since the last step()
// would count an optimizer step with no gradients (Adam's moments still move the parameters).
// Refused on every rank, changing nothing.
TEST_F(TrainingStateTest, StepWithoutBackwardIsRefusedAndChangesNothing) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage) {
    auto reference_model = make_model(0);
    auto misused_model = make_model(0);
    Engine reference(*reference_model, adamw(stage, 1), comm), misused(*misused_model, adamw(stage, 1), comm);
    micro_step(reference, 0);
    micro_step(misused, 0);
    Tensor tokens;
    std::vector<std::int32_t> labels;
    batch(8, 8, tokens, labels);
    misused.forward(tokens);
    EXPECT_THROW(misused.step(), InvalidArgument) << "stage " << stage;
    EXPECT_EQ(misused.optimizer_steps(), 1);
    micro_step(reference, 1);
    micro_step(misused, 1);
    EXPECT_EQ(misused.full_parameters(), reference.full_parameters()) << "stage " << stage;
  }
}

// Issue 11, item 2: saved with accumulation 4 after 8 micro-steps, loaded with 3, the first
// step() after the load updated after one micro-step (8 % 3 == 2) with a 1/(world x 3) scale,
// and a save right after the load was refused. Now the load starts a clean window: the update
// comes after 3 micro-steps, equal to an engine of accumulation 3 that loaded the same
// parameters, and saving right after the load works.
TEST_F(TrainingStateTest, LoadAtAnotherAccumulationCountStartsACleanWindow) {
  Communicator comm;
  testing::SharedTempDir dir;
  for (int stage = 0; stage <= 3; ++stage) {
    const std::string path = dir.path() + "/stage" + std::to_string(stage);
    {
      auto model = make_model(0);
      Engine saver(*model, adamw(stage, 4), comm);
      for (int m = 0; m < 8; ++m) micro_step(saver, m);
      saver.save(path);
    }
    auto model = make_model(0);
    Engine loaded(*model, adamw(stage, 3), comm);
    loaded.load(path);
    EXPECT_NO_THROW(loaded.save(path, "again")) << "a save right after the load was refused";
    EXPECT_FALSE(micro_step(loaded, 8)) << "stage " << stage << ": updated after one micro-step of the new window";
    EXPECT_FALSE(micro_step(loaded, 9));
    EXPECT_TRUE(micro_step(loaded, 10));
    EXPECT_EQ(loaded.optimizer_steps(), 3);

    // The same three micro-steps on an engine of accumulation 3 that starts from the loaded
    // state saved again at a boundary of its own ("again"): the same update.
    auto fresh_model = make_model(0);
    Engine fresh(*fresh_model, adamw(stage, 3), comm);
    fresh.load(path, "again");
    for (int m = 8; m < 11; ++m) micro_step(fresh, m);
    EXPECT_EQ(loaded.full_parameters(), fresh.full_parameters()) << "stage " << stage;
  }
}

// Issue 11, item 10: checkpoints claimed train_micro_batch_size_per_gpu = 64 and the default
// communication.* whatever the run used (the text was built from a default TrainingConfig).
// Now they record what the run used: every key of the TrainingConfig the engine was built from.
TEST_F(TrainingStateTest, CheckpointsRecordTheRunsConfiguration) {
  testing::SharedTempDir dir;
  const TrainingConfig config = load_training_config(
      "", {"train_micro_batch_size_per_gpu=17", "communication.segment_bytes=65536", "zero_optimization.stage=2",
           "gradient_clipping=0.75"});
  Communicator comm(MPI_COMM_WORLD, config.communication);
  auto model = make_model(0);
  Engine engine(*model, config, comm);
  micro_step(engine, 0);
  engine.save(dir.path(), "configured");
  const std::string text = checkpoint::CheckpointReader(dir.path(), "configured", comm.rank()).state().config;
  for (const auto& [key, value] : config.entries())
    EXPECT_NE(text.find(key + " = " + value + "\n"), std::string::npos) << key << " = " << value << " missing from:\n"
                                                                        << text;
  EXPECT_NE(text.find("train_micro_batch_size_per_gpu = 17\n"), std::string::npos);
  EXPECT_NE(text.find("communication.segment_bytes = 65536\n"), std::string::npos);
}

}  // namespace
}  // namespace zs
