// Hybrid sharding (zero_optimization.shard_group_size; DeepSpeed MiCS, FSDP HYBRID_SHARD)
// under mpirun: every group size that divides the world size (np 4: groups of 1, 2, 4; np 3:
// groups of 1 and 3). Stages 1-3 bitwise identical within one grouping; hybrid, flat and one
// process agree within float32 rounding; replicas hold bit-identical states; the gradient
// norm counts every element once; checkpoints hold one copy of each shard and load at another
// world size, stage and group size; group sizes that do not divide the world or differ
// between ranks are refused on every rank.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "../support/shared_temp_dir.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using testing::batch;
using testing::make_model;

// What a run leaves: whole parameters and the first optimizer state (Adam's first moment) (gathered within the shard group),
// the gradient norm of every step.
struct Trained {
  std::vector<float> params, exp_avg;
  std::vector<double> norms;
};

EngineConfig adamw(int stage, int group_size) {
  EngineConfig c;
  c.stage = stage;
  c.shard_group_size = group_size;
  c.optimizer = {.kind = OptimizerKind::adamw, .lr = 1e-2};
  c.scheduler = {.kind = ScheduleKind::cosine, .warmup_steps = 2, .total_steps = 10};
  c.memory.print_plan = false;
  c.gradient_clipping = 0.5;  // active: the norm of this model's gradients is above it at first
  return c;
}

// Rank r of n takes micro-batch `micro` at offset r*micro of each global micro-batch of
// n*micro samples; `after` may save or inspect the engine before it goes.
Trained train(Communicator& comm, const EngineConfig& config, int steps, std::int64_t micro, float dropout = 0,
              const std::function<void(Engine&)>& after = {}) {
  auto model = make_model(dropout);
  Engine engine(*model, config, comm);
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  Trained out;
  std::int64_t next = 0;
  for (int s = 0; s < steps; ++s)
    for (int a = 0; a < config.gradient_accumulation_steps; ++a) {
      batch(next + comm.rank() * micro, micro, tokens, labels);
      next += micro * comm.size();
      loss.forward(engine.forward(tokens), labels);
      engine.backward(loss.gradient());
      if (engine.step()) out.norms.push_back(engine.gradient_norm());
    }
  out.params = engine.full_parameters();
  out.exp_avg = engine.full_optimizer_state(engine.optimizer_state_names().front());  // exp_avg, momentum_buffer
  if (after) after(engine);
  return out;
}

// The group sizes that divide this world size (1 .. n).
std::vector<int> group_sizes(int n) {
  std::vector<int> sizes;
  for (int g = 1; g <= n; ++g)
    if (n % g == 0) sizes.push_back(g);
  return sizes;
}

// Whether every shard group of `g` consecutive ranks has all its ranks on one node (the
// emulated cluster puts 2 ranks on each of 2 nodes; a plain mpirun, all on one). The same
// answer on every rank.
bool groups_on_one_node(Communicator& comm, int g) {
  Communicator node = comm.split_shared_node();
  std::int64_t node_id = comm.rank();
  node.all_reduce_scalars(std::span<std::int64_t>(&node_id, 1), ScalarOp::min);
  Communicator group = comm.split(comm.rank() / g, comm.rank());
  std::int64_t one = range_across_ranks(std::span<const std::int64_t>(&node_id, 1), group)[0].agreed() ? 1 : 0;
  comm.all_reduce_scalars(std::span<std::int64_t>(&one, 1), ScalarOp::min);
  return one == 1;
}

std::int64_t differing(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return -1;
  std::int64_t count = 0;
  for (std::size_t i = 0; i < a.size(); ++i) count += std::memcmp(&a[i], &b[i], sizeof(float)) != 0;
  return count;
}

double worst_relative(const std::vector<float>& a, const std::vector<float>& b) {
  double worst = a.size() == b.size() ? 0 : INFINITY;
  for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(a[i]) - b[i]) / std::max(1.0, std::abs(static_cast<double>(b[i]))));
  return worst;
}

// Whether every rank of `comm` holds these exact bytes (a 64-bit FNV-1a of them compared).
bool same_on_every_rank(const std::vector<float>& values, const Communicator& comm) {
  std::uint64_t hash = 1469598103934665603ull;
  const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
  for (std::size_t i = 0; i < values.size() * sizeof(float); ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  const std::int64_t mine[2] = {static_cast<std::int64_t>(hash), static_cast<std::int64_t>(values.size())};
  const auto ranges = range_across_ranks(mine, comm);
  return ranges[0].agreed() && ranges[1].agreed();
}

class HybridShardingTest : public testing::MpiTest {};

TEST_F(HybridShardingTest, GroupSizeIsResolved) {
  Communicator comm;
  const int n = comm.size();
  for (int g : group_sizes(n)) {
    auto model = make_model(0);
    Engine engine(*model, adamw(3, g), comm);
    EXPECT_EQ(engine.shard_group_size(), g);
    EXPECT_EQ(engine.shard_replicas(), n / g);
  }
  // -1 and stage 0: flat over the world.
  for (const auto& [stage, g] : std::vector<std::pair<int, int>>{{3, -1}, {0, 1}}) {
    auto model = make_model(0);
    Engine engine(*model, adamw(stage, g), comm);
    EXPECT_EQ(engine.shard_group_size(), n) << "stage " << stage << " shard_group_size " << g;
    EXPECT_EQ(engine.shard_replicas(), 1);
  }
  // 0: the ranks of this rank's node (all of them on one machine; 2 per node on 2 nodes x 2).
  const int node_ranks = comm.split_shared_node().size();
  auto model = make_model(0);
  Engine by_node(*model, adamw(2, 0), comm);
  EXPECT_EQ(by_node.shard_group_size(), node_ranks);
  EXPECT_EQ(by_node.shard_replicas(), n / node_ranks);
}

// Stages 1-3 with one grouping do the same arithmetic: the same reduce-scatter within the
// group, the same all-reduce of the same shard across replicas, the same update. With
// dropout, overlap on and off, and accumulation.
TEST_F(HybridShardingTest, StagesOneToThreeAreBitIdenticalWithinAGrouping) {
  Communicator comm;
  for (int g : group_sizes(comm.size()))
    for (int accumulation : {1, 2}) {
      EngineConfig reference_config = adamw(1, g);
      reference_config.gradient_accumulation_steps = accumulation;
      const Trained reference = train(comm, reference_config, 4, 5, 0.2f);
      for (int stage : {2, 3})
        for (bool overlap : {true, false}) {
          EngineConfig config = adamw(stage, g);
          config.gradient_accumulation_steps = accumulation;
          config.overlap_comm = overlap;
          // Where each shard group is on one node its ranks share one copy, replicas each their own.
          config.node_shared_parameters = !overlap && groups_on_one_node(comm, g);
          config.prefetch_bytes = 3000;
          const Trained run = train(comm, config, 4, 5, 0.2f);
          // Stages 0-1 sum micro-steps before reducing, 2-3 after: with accumulation, only
          // stages 2 and 3 share their arithmetic (as in flat ZeRO).
          if (accumulation == 1) {
            EXPECT_EQ(differing(run.params, reference.params), 0)
                << "stage " << stage << " vs 1, groups of " << g << ", overlap " << overlap;
            EXPECT_EQ(differing(run.exp_avg, reference.exp_avg), 0) << "stage " << stage << " groups of " << g;
            EXPECT_EQ(run.norms, reference.norms) << "stage " << stage << " groups of " << g;
          } else {
            EXPECT_LT(worst_relative(run.params, reference.params), 1e-5) << "stage " << stage << " groups of " << g;
          }
        }
      if (accumulation == 2) {
        EngineConfig two = adamw(2, g), three = adamw(3, g);
        two.gradient_accumulation_steps = three.gradient_accumulation_steps = 2;
        EXPECT_EQ(differing(train(comm, two, 4, 5, 0.2f).params, train(comm, three, 4, 5, 0.2f).params), 0)
            << "groups of " << g;
      }
    }
}

// Buckets pack several units' shards into one collective: within the group every element is
// still summed in its owner's chunk, and across two replicas a sum of two is the same in any
// order, so results are bit-identical (with three or more replicas the ring's order depends on
// the element's place in the buffer: rounding only).
TEST_F(HybridShardingTest, GradientBucketsAgreeWithPerUnitReduction) {
  Communicator comm;
  for (int g : group_sizes(comm.size()))
    for (int stage : {1, 3}) {
      const Trained reference = train(comm, adamw(stage, g), 3, 5);
      for (std::int64_t bucket : {7, 100000}) {
        EngineConfig config = adamw(stage, g);
        config.reduce_bucket_size = bucket;
        const Trained run = train(comm, config, 3, 5);
        if (comm.size() / g <= 2) EXPECT_EQ(differing(run.params, reference.params), 0) << "stage " << stage << " groups of " << g << " bucket " << bucket;
        else EXPECT_LT(worst_relative(run.params, reference.params), 1e-5) << "stage " << stage << " groups of " << g;
      }
    }
}

// Every replica holds the same bits: whole parameters and optimizer states (gathered within
// each shard group) agree across the world, at every stage.
TEST_F(HybridShardingTest, ReplicasHoldBitIdenticalStates) {
  Communicator comm;
  for (int g : group_sizes(comm.size()))
    for (int stage = 1; stage <= 3; ++stage) {
      const Trained run = train(comm, adamw(stage, g), 3, 5, 0.2f);
      EXPECT_TRUE(same_on_every_rank(run.params, comm)) << "stage " << stage << " groups of " << g;
      EXPECT_TRUE(same_on_every_rank(run.exp_avg, comm)) << "stage " << stage << " groups of " << g;
    }
}

// Hybrid, flat and one process accumulating every rank's micro-batch see the same data and
// differ only in the order sums are taken: float32 rounding. The gradient norm is measured
// once per element (counted once per replica it would be sqrt(replicas) too large) and the
// average is over every rank's data (over the group's only, replicas times too large).
TEST_F(HybridShardingTest, HybridMatchesFlatAndOneProcess) {
  Communicator comm;
  Communicator self = comm.split(comm.rank(), 0);
  for (int stage : {1, 2, 3}) {
    EngineConfig sgd = adamw(stage, -1);
    sgd.optimizer = {.kind = OptimizerKind::sgd, .lr = 0.1, .momentum = 0.9};
    sgd.scheduler = {};
    EngineConfig one_process = sgd;
    one_process.gradient_accumulation_steps = comm.size();
    const Trained reference = train(self, one_process, 5, 4);
    for (int g : group_sizes(comm.size())) {
      EngineConfig config = sgd;
      config.shard_group_size = g;
      const Trained run = train(comm, config, 5, 4);
      EXPECT_LT(worst_relative(run.params, reference.params), 2e-6) << "stage " << stage << " groups of " << g;
      ASSERT_EQ(run.norms.size(), reference.norms.size());
      for (std::size_t s = 0; s < run.norms.size(); ++s)
        EXPECT_NEAR(run.norms[s], reference.norms[s], 1e-5 * reference.norms[s]) << "step " << s << " groups of " << g;
    }
  }
}

// The ledger holds model states sharded over the group: what flat ZeRO holds at world size g,
// and the planner's formula predicts it.
TEST_F(HybridShardingTest, ModelStateMemoryFollowsTheGroupSize) {
  Communicator comm;
  for (int g : group_sizes(comm.size()))
    for (int stage = 1; stage <= 3; ++stage) {
      auto model = make_model(0);
      Engine engine(*model, adamw(stage, g), comm);
      testing::run_steps(engine, 0, 2);
      const ModelStateBytes measured = engine.model_state_bytes();
      const MemoryPlan plan = engine.plan_memory(std::nullopt);
      EXPECT_EQ(plan.model_states.total(), measured.total()) << "stage " << stage << " groups of " << g;
      EXPECT_EQ(plan.world_size, g);
      // Against a flat engine of g ranks (the first group's ranks).
      Communicator first = comm.split(comm.rank() < g ? 0 : 1, comm.rank());
      if (comm.rank() < g) {
        auto flat_model = make_model(0);
        Engine flat(*flat_model, adamw(stage, -1), first);
        EXPECT_EQ(flat.model_state_bytes().total(), measured.total()) << "stage " << stage << " groups of " << g;
      }
    }
}

// A hybrid save writes one copy of each shard (the group's files and nothing from the other
// replicas) and loads flat at this world size, into one process, at another stage and
// another group size: the same parameters and optimizer states, bit for bit.
TEST_F(HybridShardingTest, CheckpointsHoldOneCopyAndLoadAnywhere) {
  Communicator comm;
  Communicator self = comm.split(comm.rank(), 0);
  testing::SharedTempDir dir;
  const int n = comm.size();
  for (int g : group_sizes(n)) {
    const std::string path = dir.path() + "/groups_of_" + std::to_string(g);
    // Saved twice: synchronously, and asynchronously (replicas' writer threads write nothing).
    const Trained saved = train(comm, adamw(3, g), 3, 5, 0, [&](Engine& engine) {
      engine.save(path, "step_3");
      checkpoint::CheckpointConfig async = engine.config().checkpoint;
      async.async = true;
      engine.set_checkpoint_config(async);
      engine.save(path + "_async", "step_3");
      engine.wait_for_checkpoint();
    });
    for (const std::string& dir : {path, path + "_async"}) {
      int files = 0;
      for (const auto& entry : std::filesystem::directory_iterator(dir + "/step_3"))
        files += entry.path().filename().string().rfind("shard_", 0) == 0;
      // g == 1 runs as stage 0 over one rank's layout: one file.
      EXPECT_EQ(files, g) << dir;
    }
    const checkpoint::CheckpointReader reader(path, "step_3");
    EXPECT_EQ(reader.world_size(), g);
    EXPECT_EQ(reader.state().data_parallel_size, n) << "the ranks that trained";
    auto loaded = [&](Communicator& into, const EngineConfig& config) {
      auto model = make_model(0);
      Engine engine(*model, config, into);
      engine.load(path, "step_3");
      EXPECT_EQ(engine.optimizer_steps(), 3);
      return Trained{engine.full_parameters(), engine.full_optimizer_state("exp_avg"), {}};
    };
    for (const auto& [stage, group] : std::vector<std::pair<int, int>>{{3, -1}, {1, -1}, {0, -1}, {2, 1}, {3, n}}) {
      const Trained back = loaded(comm, adamw(stage, group));
      EXPECT_EQ(differing(back.params, saved.params), 0) << "saved in groups of " << g << ", loaded stage " << stage << " groups " << group;
      EXPECT_EQ(differing(back.exp_avg, saved.exp_avg), 0) << "saved in groups of " << g << ", loaded stage " << stage;
    }
    const Trained alone = loaded(self, adamw(2, -1));
    {
      auto model = make_model(0);
      Engine engine(*model, adamw(1, -1), comm);
      engine.load(path + "_async", "step_3");
      EXPECT_EQ(differing(engine.full_parameters(), saved.params), 0) << "async save, groups of " << g;
    }
    EXPECT_EQ(differing(alone.params, saved.params), 0) << "saved in groups of " << g << ", loaded by one process";
    EXPECT_EQ(differing(alone.exp_avg, saved.exp_avg), 0);
  }
  // And the other way: a flat save loads into every grouping, training resumes identically
  // to an uninterrupted hybrid run's continuation from the same state.
  const std::string flat_path = dir.path() + "/flat";
  train(comm, adamw(3, -1), 2, 5, 0, [&](Engine& engine) { engine.save(flat_path, "step_2"); });
  for (int g : group_sizes(n)) {
    auto model = make_model(0);
    Engine engine(*model, adamw(1, g), comm);
    engine.load(flat_path, "step_2");
    testing::run_steps(engine, 2, 2);
    auto other = make_model(0);
    Engine reference(*other, adamw(3, g), comm);
    reference.load(flat_path, "step_2");
    testing::run_steps(reference, 2, 2);
    EXPECT_EQ(differing(engine.full_parameters(), reference.full_parameters()), 0) << "groups of " << g;
  }
}

// What crosses between groups is each rank's reduced gradient shard, all-reduced with its
// replicas: 2 (R - 1) / R of the shard's bytes per step (R replicas, a ring all-reduce), which
// is the gradients' bytes the rank holds. At stage 3 that is at most 1/k of what flat ZeRO sends
// over the whole world (k ranks per group), and flat sends nothing across replicas.
TEST_F(HybridShardingTest, CrossGroupBytesAreTheReducedShardsOnly) {
  Communicator comm;
  const int n = comm.size(), steps = 3;
  struct Sent {
    Engine::CollectiveBytes bytes;
    ModelStateBytes states;
  };
  auto run = [&](int stage, int g) {
    auto model = make_model(0);
    Engine engine(*model, adamw(stage, g), comm);
    testing::run_steps(engine, 0, steps);
    return Sent{engine.collective_bytes_sent(), engine.model_state_bytes()};
  };
  const Sent flat = run(3, -1);
  EXPECT_EQ(flat.bytes.across_replicas, 0);
  if (n > 1) EXPECT_GT(flat.bytes.within_shard_group, 0);
  for (int g : group_sizes(n)) {
    if (g == n) continue;
    const int replicas = n / g;
    for (int stage = 1; stage <= 3; ++stage) {
      const Sent hybrid = run(stage, g);
      // The reduced part a rank keeps (its gradient shard; every gradient when g = 1) is what
      // the ledger counts as its gradients at stages 2-3; at stage 1 (whole gradients held) the
      // shard is 1/g of them.
      const double kept = static_cast<double>(hybrid.states.gradients) / (stage == 1 && g > 1 ? g : 1);
      const double expected = steps * 2.0 * (replicas - 1) / replicas * kept;
      EXPECT_NEAR(static_cast<double>(hybrid.bytes.across_replicas), expected, steps * 8.0)
          << "stage " << stage << " groups of " << g;
      if (stage == 3) {
        EXPECT_LE(hybrid.bytes.across_replicas * g, flat.bytes.within_shard_group) << "groups of " << g;
        if (comm.rank() == 0)
          std::printf("np %d, stage 3, groups of %d: per rank per step %lld B within the group, %lld B across "
                      "groups; flat: %lld B (cross-group / flat = 1/%.1f)\n",
                      n, g, static_cast<long long>(hybrid.bytes.within_shard_group / steps),
                      static_cast<long long>(hybrid.bytes.across_replicas / steps),
                      static_cast<long long>(flat.bytes.within_shard_group / steps),
                      static_cast<double>(flat.bytes.within_shard_group) / static_cast<double>(hybrid.bytes.across_replicas));
      }
    }
  }
}

std::string refusal(Communicator& comm, const EngineConfig& config) {
  try {
    auto model = make_model(0);
    Engine engine(*model, config, comm);
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  return "(no error)";
}

// Every rank refuses, naming the key and the sizes that would work, and stays usable.
TEST_F(HybridShardingTest, BadGroupSizesAreRefusedOnEveryRank) {
  Communicator comm;
  const int n = comm.size();
  for (int bad : {n + 1, 2 * n, n == 4 ? 3 : n + 2, n == 3 ? 2 : n + 3}) {
    const std::string error = refusal(comm, adamw(3, bad));
    EXPECT_NE(error.find("zero_optimization.shard_group_size = " + std::to_string(bad)), std::string::npos) << error;
    EXPECT_NE(error.find("does not divide the world size " + std::to_string(n)), std::string::npos) << error;
  }
  EXPECT_NE(refusal(comm, adamw(1, -2)).find("zero_optimization.shard_group_size"), std::string::npos);
  // Ranks given different sizes (what different environments or MPMD command lines make):
  // refused before any rank splits, on every rank.
  if (n > 1) {
    const std::string error = refusal(comm, adamw(2, comm.rank() == 0 ? n : 1));
    EXPECT_NE(error.find("zero_optimization.shard_group_size"), std::string::npos) << error;
  }
  // Still usable after the refusals.
  EXPECT_EQ(train(comm, adamw(3, 1), 1, 5).params.size(), train(comm, adamw(3, -1), 1, 5).params.size());
}

// node_shared_parameters needs each shard group on one node: refused on every rank where a
// group spans nodes (the emulated cluster: groups of 4 over 2 nodes), naming the fix; with
// shard_group_size = 0 (a group per node) it trains like the same grouping without it.
TEST_F(HybridShardingTest, NodeSharedParametersNeedEachShardGroupOnOneNode) {
  Communicator comm;
  for (int g : group_sizes(comm.size())) {
    EngineConfig config = adamw(3, g);
    config.node_shared_parameters = true;
    if (groups_on_one_node(comm, g)) {
      EXPECT_EQ(differing(train(comm, config, 2, 5).params, train(comm, adamw(3, g), 2, 5).params), 0) << "groups of " << g;
      continue;
    }
    const std::string error = refusal(comm, config);
    EXPECT_NE(error.find("node_shared_parameters = true needs every rank of a shard group on one node"), std::string::npos)
        << error;
    EXPECT_NE(error.find("shard_group_size = 0"), std::string::npos) << error;
  }
  EngineConfig per_node = adamw(3, 0);
  per_node.node_shared_parameters = true;
  EXPECT_EQ(differing(train(comm, per_node, 2, 5).params, train(comm, adamw(3, 0), 2, 5).params), 0) << "groups per node";
}

}  // namespace
}  // namespace zs
