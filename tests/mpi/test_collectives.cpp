// Collectives against closed-form expectations: integer-valued inputs make every partial sum
// exact, so the expected value per element is known exactly for every dtype and world size.
#include <gtest/gtest.h>
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <limits>
#include <random>
#include <tuple>
#include <vector>

#include "../support/mpi_test.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs {
namespace {

using testing::world_rank;
using testing::world_size;

// Rank r contributes (r + 1) * (i % 13 + 1) at element i: sums are integers <= 130 at 4 ranks,
// exact even in bfloat16.
double contribution(int rank, std::int64_t i) { return (rank + 1.0) * static_cast<double>(i % 13 + 1); }
double expected_sum(int ranks, std::int64_t i) { return ranks * (ranks + 1) / 2.0 * static_cast<double>(i % 13 + 1); }
std::vector<double> input_as_double(const std::vector<float>& values) {
  std::vector<double> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = static_cast<double>(values[i]) * (1.0 + 1e-9 * static_cast<double>(i % 17));
  return out;
}

template <class T>
T from_double(double v) {
  if constexpr (std::is_same_v<T, bfloat16>) return to_bfloat16(static_cast<float>(v));
  else if constexpr (std::is_same_v<T, float16>) return to_float16(static_cast<float>(v));
  else return static_cast<T>(v);
}
template <class T>
double to_double(T v) {
  if constexpr (std::is_same_v<T, bfloat16> || std::is_same_v<T, float16>) return to_float(v);
  else return static_cast<double>(v);
}
// The expected result in dtype T: the exact value, rounded once into T.
template <class T>
double expected(int ranks, std::int64_t i, ReduceOp op) {
  double exact = expected_sum(ranks, i);
  if (op == ReduceOp::average) exact /= ranks;
  if constexpr (std::is_same_v<T, double>) return exact;
  else return to_double(from_double<T>(exact));
}

// (reduce-scatter algorithm, all-gather algorithm, segment bytes): 64-byte segments force many
// pipelined segments per chunk and many pieces per recursive-doubling step.
using Algorithms = std::tuple<Algorithm, Algorithm, std::size_t>;

CommunicatorConfig config_for(const Algorithms& algorithms) {
  CommunicatorConfig config;
  config.reduce_scatter = std::get<0>(algorithms);
  config.all_gather = std::get<1>(algorithms);
  config.segment_bytes = std::get<2>(algorithms);
  config.all_gather_segment_bytes = std::get<2>(algorithms);
  config.receive_window = 3;
  config.all_gather_crossover_bytes = 256;  // `automatic` takes both branches at the sizes tested
  return config;
}

class CollectiveTest : public testing::MpiTest, public ::testing::WithParamInterface<Algorithms> {
 protected:
  Communicator comm{MPI_COMM_WORLD, config_for(GetParam())};

  template <class T>
  void check_all_reduce(std::int64_t count, ReduceOp op) {
    std::vector<T> data(count);
    for (std::int64_t i = 0; i < count; ++i) data[i] = from_double<T>(contribution(comm.rank(), i));
    comm.all_reduce(std::span<T>(data), {.op = op}).wait();
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < count; ++i) wrong += to_double(data[i]) != expected<T>(comm.size(), i, op);
    EXPECT_EQ(wrong, 0) << "all_reduce " << to_string(op) << " of " << count << " " << to_string(dtype_of<T>());
  }

  template <class T>
  void check_reduce_scatter(std::int64_t shard_count, ReduceOp op, bool in_place) {
    const int n = comm.size(), r = comm.rank();
    std::vector<T> full(shard_count * n), separate(shard_count);
    for (std::int64_t i = 0; i < shard_count * n; ++i) full[i] = from_double<T>(contribution(r, i));
    std::span<T> shard = in_place ? std::span<T>(full).subspan(r * shard_count, shard_count) : std::span<T>(separate);
    comm.reduce_scatter(std::span<T>(full), shard, {.op = op}).wait();
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < shard_count; ++i)
      wrong += to_double(shard[i]) != expected<T>(n, r * shard_count + i, op);
    EXPECT_EQ(wrong, 0) << "reduce_scatter " << to_string(op) << " shard " << shard_count << " "
                        << to_string(dtype_of<T>()) << (in_place ? " in place" : "");
  }

  template <class T>
  void check_all_gather(std::int64_t shard_count, bool in_place) {
    const int n = comm.size(), r = comm.rank();
    std::vector<T> full(shard_count * n, from_double<T>(-1.0)), separate(shard_count);
    std::span<T> shard = in_place ? std::span<T>(full).subspan(r * shard_count, shard_count) : std::span<T>(separate);
    for (std::int64_t i = 0; i < shard_count; ++i) shard[i] = from_double<T>(contribution(r, r * shard_count + i));
    comm.all_gather(shard, std::span<T>(full)).wait();
    std::int64_t wrong = 0;
    for (std::int64_t i = 0; i < shard_count * n; ++i)
      wrong += to_double(full[i]) != contribution(static_cast<int>(i / std::max<std::int64_t>(shard_count, 1)), i);
    EXPECT_EQ(wrong, 0) << "all_gather shard " << shard_count << " " << to_string(dtype_of<T>());
  }

  template <class T>
  void check_every_shape() {
    const int n = comm.size();
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::average}) {
      // 0, 1, fewer than the ranks, not a multiple of the ranks, several segments.
      for (std::int64_t count : {std::int64_t{0}, std::int64_t{1}, std::int64_t{n - 1}, std::int64_t{5 * n + 3}, std::int64_t{4099}})
        check_all_reduce<T>(count, op);
      for (std::int64_t shard : {0, 1, 7, 1030})
        for (bool in_place : {false, true}) check_reduce_scatter<T>(shard, op, in_place);
    }
    for (std::int64_t shard : {0, 1, 7, 1030})
      for (bool in_place : {false, true}) check_all_gather<T>(shard, in_place);
  }
};

TEST_P(CollectiveTest, Float32) { check_every_shape<float>(); }
TEST_P(CollectiveTest, Float64) { check_every_shape<double>(); }
TEST_P(CollectiveTest, BFloat16) { check_every_shape<bfloat16>(); }
TEST_P(CollectiveTest, Float16) { check_every_shape<float16>(); }

// all_reduce must equal reduce_scatter + all_gather bit for bit, on every rank, with inputs
// whose sums round (random non-integers): the engine's stage invariance rests on this.
TEST_P(CollectiveTest, AllReduceIsBitwiseReduceScatterThenAllGather) {
  const int n = comm.size(), r = comm.rank();
  const std::int64_t shard = 2053;
  std::mt19937 random(1234 + r);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  std::vector<float> input(shard * n);
  for (float& x : input) x = uniform(random) * 1e3f;
  std::vector<float> reduced = input, scattered = input, gathered(shard * n), own(shard);
  comm.all_reduce(std::span<float>(reduced)).wait();
  comm.reduce_scatter(std::span<float>(scattered), std::span<float>(own)).wait();
  comm.all_gather(std::span<float>(own), std::span<float>(gathered)).wait();
  EXPECT_EQ(0, std::memcmp(reduced.data(), gathered.data(), reduced.size() * sizeof(float)));
  // And every rank holds the same bits.
  std::vector<float> from_root = reduced;
  comm.broadcast(std::span<float>(from_root), 0);
  EXPECT_EQ(0, std::memcmp(reduced.data(), from_root.data(), reduced.size() * sizeof(float)));
}

// Waiting on collectives in the reverse of issue order must not deadlock: any wait advances
// every collective in flight.
TEST_P(CollectiveTest, ManyInFlightWaitedInReverseOrder) {
  const int n = comm.size(), r = comm.rank();
  constexpr int kOps = 6;
  const std::int64_t count = 3001;
  std::vector<std::vector<float>> buffers(kOps, std::vector<float>(count));
  std::vector<Work> works;
  for (int k = 0; k < kOps; ++k) {
    for (std::int64_t i = 0; i < count; ++i) buffers[k][i] = static_cast<float>(contribution(r, i) * (k + 1));
    works.push_back(comm.all_reduce(std::span<float>(buffers[k])));
  }
  for (int k = kOps - 1; k >= 0; --k) works[k].wait();
  std::int64_t wrong = 0;
  for (int k = 0; k < kOps; ++k)
    for (std::int64_t i = 0; i < count; ++i) wrong += buffers[k][i] != expected_sum(n, i) * (k + 1);
  EXPECT_EQ(wrong, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Algorithms, CollectiveTest,
    ::testing::Values(Algorithms{Algorithm::ring, Algorithm::ring, 64},
                      Algorithms{Algorithm::ring, Algorithm::ring, std::size_t{1} << 20},
                      Algorithms{Algorithm::ring, Algorithm::recursive_doubling, 64},
                      Algorithms{Algorithm::ring, Algorithm::recursive_doubling, std::size_t{1} << 20},
                      Algorithms{Algorithm::ring, Algorithm::automatic, std::size_t{1} << 20},
                      Algorithms{Algorithm::mpi, Algorithm::mpi, std::size_t{1} << 20},
                      Algorithms{Algorithm::shared_memory, Algorithm::shared_memory, 64},
                      Algorithms{Algorithm::shared_memory, Algorithm::shared_memory, std::size_t{1} << 20},
                      Algorithms{Algorithm::automatic, Algorithm::automatic, 64},
                      Algorithms{Algorithm::automatic, Algorithm::automatic, std::size_t{1} << 20}),
    [](const auto& info) {
      return to_string(std::get<0>(info.param)) + "_" + to_string(std::get<1>(info.param)) + "_segment" +
             std::to_string(std::get<2>(info.param));
    });

// The shared-memory reduce-scatter sums in the ring's order: the same bits as the ring at every
// world size, with inputs whose sums round (random non-integers of mixed magnitude), at a
// segment size that makes many rounds and at one that makes one. Switching the default to
// shared memory therefore changes no training run.
class SharedMemoryCollectiveTest : public testing::MpiTest {};

TEST_F(SharedMemoryCollectiveTest, ReduceScatterIsBitwiseTheRing) {
  for (std::size_t segment : {std::size_t{64}, std::size_t{1} << 20}) {
    CommunicatorConfig config;
    config.segment_bytes = segment;
    Communicator comm(MPI_COMM_WORLD, config);
    const int n = comm.size(), r = comm.rank();
    if (n == 1) GTEST_SKIP() << "one rank has no peers to exchange with";
    const std::int64_t shard = 3001;
    std::mt19937 random(99 + r);
    std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
    std::vector<float> input(shard * n);
    for (float& x : input) x = uniform(random) * std::pow(10.0f, static_cast<float>(random() % 7) - 3.0f);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::average}) {
      std::vector<float> ring_full = input, shared_full = input, ring_out(shard), shared_out(shard);
      comm.reduce_scatter(std::span<float>(ring_full), std::span<float>(ring_out), {.op = op, .algorithm = Algorithm::ring}).wait();
      comm.reduce_scatter(std::span<float>(shared_full), std::span<float>(shared_out),
                          {.op = op, .algorithm = Algorithm::shared_memory})
          .wait();
      EXPECT_EQ(0, std::memcmp(ring_out.data(), shared_out.data(), shard * sizeof(float)))
          << "segment " << segment << " " << to_string(op);
      std::vector<double> ring_all = input_as_double(input), shared_all = ring_all;
      comm.all_reduce(std::span<double>(ring_all), {.op = op, .algorithm = Algorithm::ring}).wait();
      comm.all_reduce(std::span<double>(shared_all), {.op = op, .algorithm = Algorithm::shared_memory}).wait();
      EXPECT_EQ(0, std::memcmp(ring_all.data(), shared_all.data(), ring_all.size() * sizeof(double)))
          << "all_reduce float64, segment " << segment << " " << to_string(op);
    }
  }
}

// Collectives of both kinds in flight at once, waited in reverse: each runs its rounds in
// issue order, so none waits on one issued after it.
TEST_F(SharedMemoryCollectiveTest, MixedCollectivesInFlightWaitedInReverseOrder) {
  CommunicatorConfig config;
  config.segment_bytes = 256;  // many rounds per collective
  Communicator comm(MPI_COMM_WORLD, config);
  const int n = comm.size(), r = comm.rank();
  const std::int64_t shard = 501;
  std::vector<std::vector<float>> reduced(3, std::vector<float>(shard * n)), reduced_out(3, std::vector<float>(shard));
  std::vector<std::vector<float>> gathered(3, std::vector<float>(shard * n)), own(3, std::vector<float>(shard));
  std::vector<Work> works;
  for (int k = 0; k < 3; ++k) {
    for (std::int64_t i = 0; i < shard * n; ++i) reduced[k][i] = static_cast<float>(contribution(r, i) * (k + 1));
    for (std::int64_t i = 0; i < shard; ++i) own[k][i] = static_cast<float>(contribution(r, r * shard + i) + k);
    works.push_back(comm.reduce_scatter(std::span<float>(reduced[k]), std::span<float>(reduced_out[k])));
    works.push_back(comm.all_gather(std::span<float>(own[k]), std::span<float>(gathered[k])));
  }
  for (auto w = works.rbegin(); w != works.rend(); ++w) w->wait();
  std::int64_t wrong = 0;
  for (int k = 0; k < 3; ++k) {
    for (std::int64_t i = 0; i < shard; ++i) wrong += reduced_out[k][i] != expected_sum(n, r * shard + i) * (k + 1);
    for (std::int64_t i = 0; i < shard * n; ++i)
      wrong += gathered[k][i] != static_cast<float>(contribution(static_cast<int>(i / shard), i) + k);
  }
  EXPECT_EQ(wrong, 0);
}

class CommunicatorTest : public testing::MpiTest {};

TEST_F(CommunicatorTest, RejectsFullBufferThatIsNotWorldSizeTimesShard) {
  Communicator comm;
  std::vector<float> full(comm.size() * 4 + 1), shard(4);
  try {
    (void)comm.reduce_scatter(std::span<float>(full), std::span<float>(shard));
    ADD_FAILURE() << "a full buffer of n*4+1 elements was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("pad the full buffer"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)comm.all_gather(std::span<float>(shard), std::span<float>(full)), InvalidArgument);
}

TEST_F(CommunicatorTest, RecursiveDoublingCannotReduce) {
  CommunicatorConfig config;
  config.reduce_scatter = Algorithm::recursive_doubling;
  EXPECT_THROW(Communicator(MPI_COMM_WORLD, config), InvalidArgument);
  Communicator comm;
  std::vector<float> data(comm.size() * 2);
  EXPECT_THROW((void)comm.all_reduce(std::span<float>(data), {.algorithm = Algorithm::recursive_doubling}),
               InvalidArgument);
}

TEST_F(CommunicatorTest, RejectsShardThatOverlapsTheWrongChunk) {
  Communicator comm;
  if (comm.size() == 1) GTEST_SKIP() << "one rank: the only chunk is the right one";
  std::vector<float> full(comm.size() * 8);
  const int wrong_chunk = (comm.rank() + 1) % comm.size();
  std::span<float> shard = std::span<float>(full).subspan(wrong_chunk * 8, 8);
  EXPECT_THROW((void)comm.reduce_scatter(std::span<float>(full), shard), InvalidArgument);
}

TEST_F(CommunicatorTest, MismatchedCountsAcrossRanksFailOnEveryRank) {
  CommunicatorConfig config;
  config.verify_across_ranks = true;
  Communicator comm(MPI_COMM_WORLD, config);
  if (comm.size() == 1) GTEST_SKIP() << "one rank cannot disagree with itself";
  std::vector<float> data(100 + (comm.rank() == 1 ? 4 : 0), 1.0f);
  try {
    comm.all_reduce(std::span<float>(data)).wait();
    ADD_FAILURE() << "ranks passed different counts and no error was raised";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("element count"), std::string::npos) << e.what();
  }
  // The communicator is still usable: the check runs before anything is posted.
  std::vector<float> same(10, 1.0f);
  comm.all_reduce(std::span<float>(same)).wait();
  EXPECT_EQ(same[0], static_cast<float>(comm.size()));
}

// range_across_ranks: rank-dependent values, the int64 extremes included, against closed forms.
TEST_F(CommunicatorTest, RangeAcrossRanksGivesLowestAndHighestIncludingInt64Extremes) {
  Communicator comm;
  const std::int64_t r = comm.rank(), n = comm.size();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  const std::vector<std::int64_t> values = {
      7,                           // the same everywhere
      r,                           // 0 .. n-1
      -1000 * r,                   // -1000(n-1) .. 0
      r == n - 1 ? kMin : r,       // the last rank passes INT64_MIN
      r == 0 ? kMax : -r,          // rank 0 passes INT64_MAX
      r % 2 == 0 ? kMax : kMin,    // both extremes once there are two ranks
      kMin,                        // INT64_MIN everywhere
      kMax,                        // INT64_MAX everywhere
  };
  const std::vector<RangeAcrossRanks> expected = {
      {7, 7},
      {0, n - 1},
      {-1000 * (n - 1), 0},
      {kMin, n == 1 ? kMin : n - 2},
      {n == 1 ? kMax : -(n - 1), kMax},
      {n == 1 ? kMax : kMin, kMax},
      {kMin, kMin},
      {kMax, kMax},
  };
  const std::vector<RangeAcrossRanks> ranges = range_across_ranks(values, comm);
  ASSERT_EQ(ranges.size(), expected.size());
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    EXPECT_EQ(ranges[i].low, expected[i].low) << "value " << i << " at " << n << " ranks";
    EXPECT_EQ(ranges[i].high, expected[i].high) << "value " << i << " at " << n << " ranks";
    EXPECT_EQ(ranges[i].agreed(), expected[i].low == expected[i].high) << "value " << i;
  }
  EXPECT_TRUE(range_across_ranks({}, comm).empty());  // still collective: every rank calls it
}

TEST_F(CommunicatorTest, MpiAlgorithmRefusesChunksBeyondIntCount) {
  Communicator comm;
  std::vector<float> small(1);
  // Only sizes and addresses are read before the refusal, so a one-element buffer can claim
  // 3e9 elements; the shard is passed as this rank's chunk of the full buffer (in place).
  const std::int64_t chunk = 3'000'000'000;
  HostBuffer full{small.data(), chunk * comm.size(), DType::float32};
  const auto own = reinterpret_cast<std::uintptr_t>(small.data()) + chunk * comm.rank() * sizeof(float);
  HostBuffer shard{reinterpret_cast<void*>(own), chunk, DType::float32};
  try {
    (void)comm.all_gather(shard, full, {.algorithm = Algorithm::mpi});
    ADD_FAILURE() << "a 3e9-element chunk was passed to MPI";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("algorithm=ring"), std::string::npos) << e.what();
  }
}

TEST_F(CommunicatorTest, WaitWithTimeoutFailsCleanlyWhenAPeerSkipsTheCollective) {
  if (world_size() == 1) GTEST_SKIP() << "one rank has no peer to wait for";
  // Deliberately never freed: the abandoned collective's messages stay queued on this
  // communicator, and freeing it would let MPI hand its context id to a later communicator
  // that would then receive them. After a timeout a real job aborts instead.
  auto* comm = new Communicator();
#if defined(__SANITIZE_ADDRESS__)
  __lsan_ignore_object(comm);  // leaked on purpose (above): not a report of the sanitizer job
#endif
  std::vector<float> data(4096, 1.0f);
  if (comm->rank() != 0) {
    auto start = std::chrono::steady_clock::now();
    Work work = comm->all_reduce(std::span<float>(data));
    try {
      work.wait(std::chrono::milliseconds(300));
      ADD_FAILURE() << "the collective completed although rank 0 never joined";
    } catch (const TimeoutError& e) {
      EXPECT_NE(std::string(e.what()).find("all_reduce"), std::string::npos) << e.what();
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
    EXPECT_TRUE(work.test());  // an abandoned Work is finished, not pending forever
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_F(CommunicatorTest, SplitByParityReducesWithinEachGroup) {
  Communicator world;
  Communicator half = world.split(world.rank() % 2, world.rank());
  double expected_total = 0;
  for (int r = world.rank() % 2; r < world.size(); r += 2) expected_total += r + 1;
  std::vector<double> value(3, world.rank() + 1.0);
  half.all_reduce(std::span<double>(value)).wait();
  EXPECT_EQ(value[2], expected_total);
  EXPECT_EQ(half.size(), (world.size() + 1 - world.rank() % 2) / 2);
  Communicator node = world.split_shared_node();
  EXPECT_EQ(node.size(), world.size());  // all ranks of a test run share one machine
}

// 16-bit reductions on the ring travel in 16 bits: chunk c is summed in the ring's order,
// ((x[c+1] + x[c+2]) + ...) + x[c], each partial sum rounded to 16 bits when sent and added in
// float32; the result is rounded once more. With values that do not sum exactly, the result
// is that sequence exactly (and differs from "rounded once" somewhere, at 3+ ranks). The mpi
// algorithm reduces widened float32 values: rounded once.
TEST_F(CommunicatorTest, SixteenBitRingReduceScatterRoundsPerHop) {
  const int n = world_size(), r = world_rank();
  constexpr std::int64_t kShard = 257;
  // Non-dyadic values in [0.5, 4): their sums need more than bfloat16's 8 bits.
  auto value = [](int rank, std::int64_t i) {
    return to_float(to_bfloat16(0.5f + static_cast<float>((i * 7919 + rank * 104729) % 1000) / 285.7f));
  };
  std::vector<bfloat16> full(static_cast<std::size_t>(n * kShard)), shard(kShard);
  for (std::int64_t i = 0; i < n * kShard; ++i) full[i] = to_bfloat16(value(r, i));
  Communicator ring(MPI_COMM_WORLD, CommunicatorConfig{});
  ring.reduce_scatter(std::span<bfloat16>(full), std::span<bfloat16>(shard)).wait();
  std::vector<bfloat16> again(static_cast<std::size_t>(n * kShard)), shard_mpi(kShard);
  for (std::int64_t i = 0; i < n * kShard; ++i) again[i] = to_bfloat16(value(r, i));
  CommunicatorConfig mpi_config;
  mpi_config.reduce_scatter = Algorithm::mpi;
  Communicator mpi(MPI_COMM_WORLD, mpi_config);
  mpi.reduce_scatter(std::span<bfloat16>(again), std::span<bfloat16>(shard_mpi)).wait();
  int per_hop_differs = 0;
  for (std::int64_t j = 0; j < kShard; ++j) {
    const std::int64_t i = r * kShard + j;
    float acc = value((r + 1) % n, i);
    for (int k = 2; k <= n; ++k) acc = to_float(to_bfloat16(acc)) + value((r + k) % n, i);
    double exact = 0;
    for (int q = 0; q < n; ++q) exact += value(q, i);
    EXPECT_EQ(shard[j].bits, to_bfloat16(acc).bits) << "element " << j << " of rank " << r;
    EXPECT_EQ(shard_mpi[j].bits, to_bfloat16(static_cast<float>(exact)).bits) << "mpi, element " << j;
    per_hop_differs += shard[j].bits != shard_mpi[j].bits;
  }
  int differs = per_hop_differs;
  MPI_Allreduce(MPI_IN_PLACE, &differs, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  if (n >= 3) EXPECT_GT(differs, 0) << "per-hop rounding never showed: are the partial sums still float32 on the wire?";
}

TEST_F(CommunicatorTest, BroadcastFromLastRank) {
  Communicator comm;
  const int root = comm.size() - 1;
  std::vector<double> data(1001, comm.rank() == root ? 42.5 : 0.0);
  comm.broadcast(std::span<double>(data), root);
  EXPECT_EQ(std::count(data.begin(), data.end(), 42.5), 1001);
  EXPECT_THROW(comm.broadcast(std::span<double>(data), comm.size()), InvalidArgument);
}

TEST_F(CommunicatorTest, MpiErrorsAreReturnedAndCarryTheCallAndRank) {
  Communicator comm;
  try {
    ZS_MPI_CHECK(MPI_Send(nullptr, 1, MPI_INT, comm.size() + 5, 0, comm.handle()));
    ADD_FAILURE() << "sending to a rank that does not exist succeeded";
  } catch (const MpiError& e) {
    const std::string text = e.what();
    EXPECT_NE(text.find("MPI_Send"), std::string::npos) << text;
    EXPECT_NE(text.find("test_collectives.cpp:"), std::string::npos) << text;
    EXPECT_NE(text.find("rank " + std::to_string(comm.rank())), std::string::npos) << text;
  }
}

}  // namespace
}  // namespace zs
