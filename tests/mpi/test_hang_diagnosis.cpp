// Hang diagnosis (issue 18): with communication.timeout_s set, a collective that some rank
// never reaches ends, on every rank, with a TimeoutError that names the rank that is behind,
// the collective (op and sequence number) and what each rank was doing, within the timeout
// plus a margin. Never a hang: CTest's TIMEOUT backs this up.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../support/engine_test_model.hpp"
#include "../support/mpi_test.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs {
namespace {

using Clock = std::chrono::steady_clock;
constexpr double kTimeout = 2.0;  // seconds: communication.timeout_s of these tests
// Time past the timeout a rank may take to notice and report (polling, yielding on a shared
// machine, building the report).
constexpr double kMargin = 3.0;

class HangDiagnosisTest : public testing::MpiTest {};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// Every rank reports its outcome on stderr (the CTest log then shows real hang reports).
void show(int rank, const std::string& message) { std::fprintf(stderr, "--- rank %d ---\n%s\n", rank, message.c_str()); }

TEST_F(HangDiagnosisTest, ARankThatSkipsACollectiveIsNamedWithTheCollective) {
  Communicator comm(MPI_COMM_WORLD, {.timeout_s = kTimeout});
  if (comm.size() == 1) GTEST_SKIP() << "one rank cannot skip a collective its peers wait on";
  std::vector<float> data(1000, 1.0f);
  comm.all_reduce(std::span<float>(data), {.label = "warm-up"}).wait();  // #0: every rank
  comm.set_activity("the skip test");
  const int skipper = 1;
  std::string message;
  bool timed_out = false;
  const Clock::time_point start = Clock::now();
  try {
    // #1: an all_reduce that rank 1 skips; rank 1 goes on to an agreement, its #1.
    if (comm.rank() != skipper) comm.all_reduce(std::span<float>(data), {.label = "skipped by rank 1"}).wait();
    std::int64_t value = 7;
    comm.all_reduce_scalars(std::span<std::int64_t>(&value, 1), ScalarOp::min, "after the skip");
  } catch (const TimeoutError& e) {
    timed_out = true;
    message = e.what();
  }
  const double waited = seconds_since(start);
  show(comm.rank(), message);
  EXPECT_TRUE(timed_out) << "rank " << comm.rank() << " did not time out";
  EXPECT_GE(waited, kTimeout - 0.1);
  EXPECT_LT(waited, kTimeout + kMargin) << "the report took too long";
  EXPECT_TRUE(contains(message, "collective #1 ")) << message;
  if (comm.rank() != skipper) {
    // The waiting ranks name rank 1 and the collective it issued as #1 instead.
    EXPECT_TRUE(contains(message, "all_reduce")) << message;
    EXPECT_TRUE(contains(message, "rank 1 issued #1 as all_reduce_scalars 8 B 'after the skip' (this rank: all_reduce 4000 B)"))
        << message;
    EXPECT_TRUE(contains(message, "'skipped by rank 1'")) << message;
  } else {
    // Rank 1 names the ranks waiting on another collective as #1 (every rank shares a node here).
    EXPECT_TRUE(contains(message, "rank 0 issued #1 as all_reduce 4000 B 'skipped by rank 1'")) << message;
  }
  EXPECT_TRUE(contains(message, "#0 all_reduce 4000 B float32 'warm-up' completed")) << "no flight record: " << message;
}

// On a sub-communicator (hybrid sharding's shard and replica groups are such), reports name
// ranks by their rank in the job, with the communicator's own number beside it: the group
// here holds world ranks 1..n-1 in reverse order, so its rank 0 is world rank n-1.
TEST_F(HangDiagnosisTest, ASubCommunicatorsReportNamesTheJobsRanks) {
  Communicator world(MPI_COMM_WORLD, {.timeout_s = kTimeout});
  if (world.size() < 3) GTEST_SKIP() << "needs a group of two ranks beside rank 0";
  Communicator group = world.split(world.rank() == 0 ? 0 : 1, -world.rank());
  if (world.rank() == 0) return;
  std::vector<float> data(1000, 1.0f);
  group.all_reduce(std::span<float>(data), {.label = "warm-up"}).wait();
  const int skipper = 0;  // of the group
  std::string message;
  try {
    if (group.rank() != skipper) group.all_reduce(std::span<float>(data), {.label = "skipped"}).wait();
    std::int64_t value = 7;
    group.all_reduce_scalars(std::span<std::int64_t>(&value, 1), ScalarOp::min, "after the skip");
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  show(world.rank(), message);
  ASSERT_FALSE(message.empty()) << "world rank " << world.rank() << " did not time out";
  const std::string skipper_world = "rank " + std::to_string(world.size() - 1);
  if (group.rank() != skipper)
    EXPECT_TRUE(contains(message, skipper_world + " (rank 0 of this communicator) issued #1 as all_reduce_scalars"))
        << message;
  else
    EXPECT_TRUE(contains(message, skipper_world + " (this rank; rank 0 of this communicator): ")) << message;
}

// A module that sleeps in its forward on one rank at one call: a rank stuck in compute.
class Sleeper final : public nn::Module {
 public:
  Sleeper(int sleeping_rank, int at_call, double seconds)
      : Module("sleeper"), rank_(sleeping_rank), at_call_(at_call), seconds_(seconds) {}
  const Tensor& forward(const Tensor& input, const nn::ForwardContext&) override {
    if (testing::world_rank() == rank_ && calls_++ == at_call_)
      std::this_thread::sleep_for(std::chrono::duration<double>(seconds_));
    return input;
  }
  const Tensor& backward(const Tensor& grad_output) override { return grad_output; }

 private:
  int rank_, at_call_, calls_ = 0;
  double seconds_;
};

class SleepingRankTest : public testing::MpiTest, public ::testing::WithParamInterface<int> {};

TEST_P(SleepingRankTest, IsNamedWithWhatItWasDoing) {
  Communicator comm(MPI_COMM_WORLD, {.timeout_s = kTimeout});
  if (comm.size() == 1) GTEST_SKIP() << "no peer to wait on a sleeping rank";
  const int sleeper = comm.size() - 1;
  auto model = std::make_unique<nn::Sequential>("model");
  model->add<nn::Embedding>("emb", 23, 7);
  // In the second step's forward, long enough that the others time out while it sleeps even
  // when a loaded machine delays them by seconds (2 s of slack failed once under load).
  model->add<Sleeper>(sleeper, /*at_call=*/1, kTimeout + 6.0);
  model->add<nn::Linear>("fc", 7, 5);
  EngineConfig config;
  config.stage = GetParam();
  config.unit_starts = {0, 1, 2};  // the sleeper is unit 1
  Engine engine(*model, config, comm);
  testing::run_steps(engine, 0, 1);
  std::string message;
  const Clock::time_point start = Clock::now();
  try {
    testing::run_steps(engine, 1, 1);
  } catch (const TimeoutError& e) {
    message = e.what();
  }
  const double waited = seconds_since(start);
  show(comm.rank(), message);
  ASSERT_FALSE(message.empty()) << "rank " << comm.rank() << " did not time out";
  if (comm.rank() != sleeper) {
    EXPECT_LT(waited, kTimeout + kMargin) << message;
    const std::string who = "rank " + std::to_string(sleeper);
    const bool named_as_behind =
        contains(message, "Ranks that have not reached #") && contains(message, who + " has not issued #");
    // A sleeper that issued the collective the others wait on (a prefetch) before it fell
    // asleep is named as the rank of the node that waits on nothing while the others wait.
    const bool named_as_idle = contains(message, who + ": issued") && contains(message, "not waiting on a collective");
    EXPECT_TRUE(named_as_behind || named_as_idle) << message;
    EXPECT_TRUE(contains(message, "in 'forward unit 1'")) << message;
    // Every rank of this test is on this node: nothing may send the reader to look for another.
    EXPECT_FALSE(contains(message, "another node")) << message;
  }
}

INSTANTIATE_TEST_SUITE_P(Stages, SleepingRankTest, ::testing::Values(1, 3),
                         [](const auto& info) { return "Stage" + std::to_string(info.param); });

TEST_F(HangDiagnosisTest, ZeroTimeoutWaitsAndRecordsWithoutAPeerBoard) {
  Communicator comm(MPI_COMM_WORLD, {.timeout_s = 0, .flight_recorder_entries = 2});
  std::vector<float> data(8, 1.0f);
  for (int i = 0; i < 3; ++i) comm.all_reduce(std::span<float>(data)).wait();
  EXPECT_EQ(data[0], static_cast<float>(comm.size() * comm.size() * comm.size()));
  const std::vector<CollectiveRecord> records = comm.flight_recorder().records();
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].sequence, 1u);
  EXPECT_EQ(records[1].state, CollectiveState::completed);
}

}  // namespace
}  // namespace zs
