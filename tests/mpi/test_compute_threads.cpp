// Compute threads (EngineConfig::compute_threads, key compute.threads): the count never changes
// results, in float32 and in bf16 (whose dtype conversions are spread over the threads,
// runtime/src/engine/parallel_conversion.hpp), auto never oversubscribes the node, and bad
// counts are refused naming the setting.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

#include "../support/mpi_test.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/compute_threads.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

// Large enough that Eigen splits the GEMMs over threads, the optimizer's runs and the dtype
// conversions (>= 2^15 elements) run in parallel, and fc2's shard spans several blocks of the
// gradient norm (2^16 elements, gradient_norm.hpp) at 1-3 ranks: 96*512 + 512*512 weights.
std::unique_ptr<nn::Sequential> wide_model() {
  auto model = std::make_unique<nn::Sequential>("wide");
  model->add<nn::Linear>("fc1", 96, 512);
  model->add<nn::ReLU>("act1");
  model->add<nn::Linear>("fc2", 512, 512);
  model->add<nn::ReLU>("act2");
  model->add<nn::Linear>("fc3", 512, 10);
  return model;
}

struct Trained {
  std::vector<float> params;
  std::vector<double> norms;  // the global gradient norm of each step
  int threads = 0;
};

// Clipped (max_norm 0.05, below these gradients' norms) so the parameters depend on the norm's
// bits as well.
Trained train(Communicator& comm, int stage, int threads, bool bf16 = false) {
  auto model = wide_model();
  EngineConfig config;
  config.stage = stage;
  config.compute_threads = threads;
  config.precision.bf16 = bf16;
  config.gradient_clipping = 0.05;
  Engine engine(*model, config, comm);
  std::vector<double> norms;
  nn::SoftmaxCrossEntropy loss;
  const std::int64_t micro = 48;
  Tensor x({micro, 96});
  std::vector<std::int32_t> labels(micro);
  for (int step = 0; step < 3; ++step) {
    for (std::int64_t i = 0; i < x.numel(); ++i)
      x.data()[i] = static_cast<float>((i * 37 + step * 101 + comm.rank() * 7) % 199) / 199.0f - 0.5f;
    for (std::int64_t i = 0; i < micro; ++i) labels[i] = static_cast<std::int32_t>((i + step + comm.rank()) % 10);
    loss.forward(engine.forward(x), labels);
    engine.backward(loss.gradient());
    engine.step();
    norms.push_back(engine.gradient_norm());
  }
  return {engine.full_parameters(), norms, engine.compute_threads()};
}

class ComputeThreadsTest : public testing::MpiTest {};

TEST_F(ComputeThreadsTest, ThreadCountDoesNotChangeResults) {
  Communicator comm;
  for (const auto& [bf16, stage] : {std::pair{false, 0}, {false, 3}, {true, 0}, {true, 3}}) {
    const Trained one = train(comm, stage, 1, bf16);
    ASSERT_EQ(one.threads, 1);
    for (int threads : {2, 3}) {
      const Trained many = train(comm, stage, threads, bf16);
      EXPECT_EQ(many.threads, threads);
      EXPECT_EQ(nn::compute_threads(), threads);
      ASSERT_EQ(many.params.size(), one.params.size());
      ASSERT_EQ(many.norms.size(), one.norms.size());
      for (std::size_t s = 0; s < one.norms.size(); ++s) {
        EXPECT_GT(one.norms[s], 0.05) << "the clipping must apply for the test to see the norm's bits";
        EXPECT_EQ(std::memcmp(&many.norms[s], &one.norms[s], sizeof(double)), 0)
            << (bf16 ? "bf16" : "float32") << " stage " << stage << " step " << s << ": norm " << many.norms[s]
            << " with " << threads << " threads, " << one.norms[s] << " with 1";
      }
      std::int64_t differing = 0;
      for (std::size_t i = 0; i < one.params.size(); ++i)
        differing += std::memcmp(&many.params[i], &one.params[i], sizeof(float)) != 0;
      EXPECT_EQ(differing, 0) << (bf16 ? "bf16" : "float32") << " stage " << stage << ": " << threads
                              << " threads vs 1";
    }
  }
}

TEST_F(ComputeThreadsTest, AutoSharesTheNodesCoresAmongItsRanks) {
  Communicator comm;
  ::unsetenv("OMP_NUM_THREADS");
  const Trained automatic = train(comm, 0, 0);
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int ranks_here = local ? std::atoi(local) : comm.size();
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_GE(automatic.threads, 1);
  if (cores >= ranks_here) EXPECT_EQ(automatic.threads, cores / ranks_here) << "zs-mpirun does not bind ranks";
  else EXPECT_EQ(automatic.threads, 1) << "more ranks than cores: one thread each";
}

TEST_F(ComputeThreadsTest, AutoFollowsOmpNumThreads) {
  Communicator comm;
  ::setenv("OMP_NUM_THREADS", "3", 1);
  EXPECT_EQ(train(comm, 0, 0).threads, 3);
  ::setenv("OMP_NUM_THREADS", "2,1", 1);  // OpenMP's per-level list: the first entry is ours
  EXPECT_EQ(train(comm, 0, 0).threads, 2);
  ::setenv("OMP_NUM_THREADS", "many", 1);
  try {
    train(comm, 0, 0);
    ADD_FAILURE() << "OMP_NUM_THREADS=many accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("OMP_NUM_THREADS='many'"), std::string::npos) << e.what();
  }
  ::unsetenv("OMP_NUM_THREADS");
}

TEST_F(ComputeThreadsTest, NegativeCountIsRefusedNamingTheKey) {
  EngineConfig config;
  config.compute_threads = -2;
  try {
    config.validate();
    ADD_FAILURE() << "compute.threads = -2 accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("compute.threads = -2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(nn::set_compute_threads(0), InvalidArgument);
}

}  // namespace
}  // namespace zs
