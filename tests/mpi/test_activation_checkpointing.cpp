// Activation checkpointing (issue 16): a checkpointed unit keeps only its input in forward
// and recomputes its activations, with the same dropout masks, before its backward. Training
// must be bit-identical to training without it at every stage, with and without overlap and
// accumulation, for every unit or some; the activations the ledger holds after forward fall.
#include <gtest/gtest.h>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using testing::make_model;
using testing::run_steps;

class ActivationCheckpointingTest : public testing::MpiTest {};

struct Trained {
  std::vector<float> params;
  std::int64_t activation_peak = 0;
};

Trained train(Communicator& comm, const EngineConfig& config, int steps) {
  auto model = make_model(/*dropout=*/0.2f);  // dropout: the recompute must draw the same masks
  Engine engine(*model, config, comm);
  run_steps(engine, 0, steps);
  return {engine.full_parameters(), engine.memory().high_water(MemoryCategory::activations)};
}

TEST_F(ActivationCheckpointingTest, BitIdenticalToKeepingActivations) {
  Communicator comm;
  for (int stage = 0; stage <= 3; ++stage)
    for (bool overlap : {true, false})
      for (int accumulation : {1, 2}) {
        EngineConfig config;
        config.stage = stage;
        config.overlap_comm = overlap;
        config.gradient_accumulation_steps = accumulation;
        config.optimizer.lr = 0.01;
        const Trained kept = train(comm, config, 4);
        EngineConfig all = config;
        all.activation_checkpointing = true;
        EngineConfig some = config;
        some.checkpointed_units = {0, 2};
        for (const EngineConfig& checkpointed : {all, some})
          EXPECT_EQ(train(comm, checkpointed, 4).params, kept.params)
              << "stage " << stage << " overlap " << overlap << " accumulation " << accumulation << " units "
              << (checkpointed.activation_checkpointing ? "all" : "0,2");
      }
}

TEST_F(ActivationCheckpointingTest, ActivationsHeldAfterForwardFall) {
  Communicator comm;
  EngineConfig config;
  config.stage = 3;
  const std::int64_t kept = train(comm, config, 2).activation_peak;
  config.activation_checkpointing = true;
  const std::int64_t checkpointed = train(comm, config, 2).activation_peak;
  EXPECT_LT(checkpointed, kept);
  if (testing::world_rank() == 0)
    std::printf("activations held after forward, test model: %lld bytes kept, %lld checkpointed\n",
                static_cast<long long>(kept), static_cast<long long>(checkpointed));
}

TEST_F(ActivationCheckpointingTest, ConfigKeyAndBadUnitIndex) {
  Communicator comm;
  const TrainingConfig config = load_training_config("", {"activation_checkpointing.units=0,2"});
  EXPECT_EQ(config.engine.checkpointed_units, (std::vector<std::size_t>{0, 2}));
  EXPECT_TRUE(load_training_config("", {"activation_checkpointing.units=all"}).engine.activation_checkpointing);
  EXPECT_THROW(load_training_config("", {"activation_checkpointing.units=1,x"}), InvalidArgument);
  EngineConfig bad;
  bad.checkpointed_units = {99};
  auto model = make_model(0);
  try {
    Engine engine(*model, bad, comm);
    ADD_FAILURE() << "unit 99 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("activation_checkpointing.units"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zs
