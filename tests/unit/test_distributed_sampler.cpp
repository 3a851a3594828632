// zs::DistributedSampler against its contract (runtime/include/zeroshard/runtime/distributed_sampler.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/distributed_sampler.hpp"

namespace zs {
namespace {

// Every rank's batches of one epoch, rank-major within each step: the global order as seen
// by `world` ranks.
std::vector<std::int64_t> epoch_across_ranks(std::int64_t n, std::uint64_t seed, int world, std::int64_t micro,
                                             std::int64_t epoch) {
  std::vector<std::int64_t> all;
  std::vector<DistributedSampler> ranks;
  for (int r = 0; r < world; ++r) {
    ranks.emplace_back(n, seed, world, r, micro);
    ranks.back().set_epoch(epoch);
  }
  for (std::int64_t step = 0; step < ranks[0].steps_per_epoch(); ++step)
    for (const DistributedSampler& sampler : ranks) {
      const std::vector<std::int64_t> batch = sampler.batch(step);
      EXPECT_EQ(static_cast<std::int64_t>(batch.size()), micro);
      all.insert(all.end(), batch.begin(), batch.end());
    }
  return all;
}

TEST(DistributedSampler, EveryIndexOfAnEpochAppearsExactlyOnceAcrossRanksAndTheTailIsDropped) {
  const std::int64_t n = 103;  // divisible by none of the global batch sizes below
  for (int world = 1; world <= 4; ++world)
    for (std::int64_t micro : {1, 5, 7}) {
      const std::vector<std::int64_t> all = epoch_across_ranks(n, 11, world, micro, 2);
      const std::int64_t steps = n / (world * micro);
      ASSERT_EQ(static_cast<std::int64_t>(all.size()), steps * world * micro) << world << " ranks, micro " << micro;
      const std::set<std::int64_t> distinct(all.begin(), all.end());
      EXPECT_EQ(distinct.size(), all.size()) << "an index given twice at " << world << " ranks, micro " << micro;
      EXPECT_GE(*distinct.begin(), 0);
      EXPECT_LT(*distinct.rbegin(), n);
      EXPECT_LT(n - static_cast<std::int64_t>(all.size()), world * micro);  // only a partial global batch dropped
    }
}

TEST(DistributedSampler, GlobalOrderIsTheSameAtEveryWorldSize) {
  // One rank with micro-batch world x m sees, step by step, what `world` ranks with m see.
  const std::int64_t n = 1000, m = 3;
  for (int world = 1; world <= 4; ++world) {
    DistributedSampler one(n, 7, 1, 0, world * m);
    one.set_epoch(3);
    const std::vector<std::int64_t> split = epoch_across_ranks(n, 7, world, m, 3);
    std::vector<std::int64_t> whole;
    for (std::int64_t step = 0; step < one.steps_per_epoch(); ++step) {
      const auto batch = one.batch(step);
      whole.insert(whole.end(), batch.begin(), batch.end());
    }
    EXPECT_EQ(split, whole) << world << " ranks";
    EXPECT_EQ(one.steps_per_epoch(), n / (world * m));
  }
}

TEST(DistributedSampler, RankTakesItsRunOfTheGlobalBatch) {
  const std::int64_t n = 60, m = 4;
  const int world = 3;
  DistributedSampler whole(n, 5, 1, 0, world * m);
  for (int r = 0; r < world; ++r) {
    DistributedSampler part(n, 5, world, r, m);
    for (std::int64_t step = 0; step < part.steps_per_epoch(); ++step) {
      const auto global = whole.batch(step);
      const std::vector<std::int64_t> run(global.begin() + r * m, global.begin() + (r + 1) * m);
      EXPECT_EQ(part.batch(step), run) << "rank " << r << " step " << step;
    }
  }
}

TEST(DistributedSampler, EpochsShuffleDifferentlyAndSeedAndEpochFixTheOrder) {
  const std::int64_t n = 500;
  std::vector<std::vector<std::int64_t>> epochs;
  for (std::int64_t e = 0; e < 5; ++e) epochs.push_back(epoch_across_ranks(n, 42, 3, 4, e));
  for (std::size_t a = 0; a < epochs.size(); ++a)
    for (std::size_t b = a + 1; b < epochs.size(); ++b) EXPECT_NE(epochs[a], epochs[b]) << "epochs " << a << ", " << b;
  // Same seed and epoch: the same order, whatever was set before; a fresh sampler is at epoch 0.
  DistributedSampler again(n, 42, 3, 1, 4);
  EXPECT_EQ(again.epoch(), 0);
  const auto first = again.batch(0);
  again.set_epoch(4);
  again.set_epoch(0);
  EXPECT_EQ(again.batch(0), first);
  EXPECT_EQ(epoch_across_ranks(n, 42, 3, 4, 2), epochs[2]);
  // Another seed: another order.
  EXPECT_NE(epoch_across_ranks(n, 43, 3, 4, 2), epochs[2]);
  // A shuffle, not the identity.
  std::vector<std::int64_t> identity(epochs[0].size());
  for (std::size_t i = 0; i < identity.size(); ++i) identity[i] = static_cast<std::int64_t>(i);
  EXPECT_NE(epochs[0], identity);
}

TEST(DistributedSampler, SmallDatasetsHaveNoStepsAndBadArgumentsThrow) {
  DistributedSampler tiny(7, 1, 4, 3, 2);  // 7 samples < one global batch of 8
  EXPECT_EQ(tiny.steps_per_epoch(), 0);
  EXPECT_THROW((void)tiny.batch(0), InvalidArgument);
  DistributedSampler empty(0, 1, 1, 0, 1);
  EXPECT_EQ(empty.steps_per_epoch(), 0);

  EXPECT_THROW(DistributedSampler(-1, 1, 1, 0, 1), InvalidArgument);
  EXPECT_THROW(DistributedSampler(10, 1, 0, 0, 1), InvalidArgument);
  EXPECT_THROW(DistributedSampler(10, 1, 2, 2, 1), InvalidArgument);
  EXPECT_THROW(DistributedSampler(10, 1, 2, -1, 1), InvalidArgument);
  EXPECT_THROW(DistributedSampler(10, 1, 2, 0, 0), InvalidArgument);
  DistributedSampler sampler(10, 1, 2, 1, 2);
  EXPECT_THROW(sampler.set_epoch(-1), InvalidArgument);
  EXPECT_EQ(sampler.steps_per_epoch(), 2);
  EXPECT_THROW((void)sampler.batch(-1), InvalidArgument);
  EXPECT_THROW((void)sampler.batch(2), InvalidArgument);
  try {
    (void)sampler.batch(5);
    ADD_FAILURE() << "step 5 of 2 was accepted";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("step 5"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace zs
