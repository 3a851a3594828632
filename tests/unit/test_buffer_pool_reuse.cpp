// The buffer pool's reuse rules (detail::IdleStorage, runtime/src/engine/buffer_pool.hpp),
// shared by the engine's BufferPool and the memory planner's replay: a buffer kept across
// steps reuses only storage at most a quarter larger; a buffer of one step may take any larger
// storage its category used, and a miss replaces the category's largest idle storage instead
// of adding one. Checked against what each rule promises: the pool stops allocating after a
// few steps of any repeating pattern (no page faults after warm-up), holds one buffer for units
// of different sizes taken one after another (optimizer.in_backward), and ledgers every byte.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "engine/buffer_pool.hpp"

namespace zs {
namespace {

using detail::IdleStorage;
using detail::Lifetime;

// A pool over capacities (in floats) as BufferPool runs it: reuse, else allocate (a miss).
struct CountingPool {
  explicit CountingPool(MemoryLedger& l) : ledger(l), idle(l) {}
  struct Held {
    std::int64_t capacity, floats;
    MemoryCategory category;
  };
  Held take(std::int64_t floats, Lifetime lifetime, MemoryCategory category) {
    std::optional<std::int64_t> reused = idle.reuse(floats, lifetime, category);
    if (!reused) ++misses;
    ledger.allocate(category, floats * 4);
    return {reused.value_or(floats), floats, category};
  }
  void give_back(const Held& held) { idle.add(held.capacity, held.floats, held.category); }
  MemoryLedger& ledger;
  IdleStorage<std::int64_t> idle;
  int misses = 0;
};

TEST(BufferPoolReuse, UnitsOfDifferentSizesOneAfterAnotherSettleOnOneBuffer) {
  // optimizer.in_backward at one rank: each unit's gradients are taken, applied and given back
  // before the next unit's; the sizes grow as backward walks towards the input.
  MemoryLedger ledger;
  CountingPool pool(ledger);
  const std::vector<std::int64_t> sizes = {40, 300, 1000, 10};
  std::vector<int> misses_per_step;
  for (int step = 0; step < 4; ++step) {
    const int before = pool.misses;
    for (std::int64_t size : sizes) pool.give_back(pool.take(size, Lifetime::step, MemoryCategory::gradients_full));
    misses_per_step.push_back(pool.misses - before);
  }
  EXPECT_EQ(misses_per_step, (std::vector<int>{3, 0, 0, 0}));  // 40, 300, 1000; then 10 and all later from 1000
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), 1000 * 4) << "one idle buffer, the largest unit's";
  EXPECT_EQ(ledger.current(MemoryCategory::gradients_full), 0);
}

TEST(BufferPoolReuse, HeldBytesBeyondTheRequestAreLedgeredAsBuffers) {
  MemoryLedger ledger;
  CountingPool pool(ledger);
  pool.give_back(pool.take(1000, Lifetime::step, MemoryCategory::gradients_full));
  const auto held = pool.take(10, Lifetime::step, MemoryCategory::gradients_full);
  EXPECT_EQ(held.capacity, 1000);
  EXPECT_EQ(ledger.current(MemoryCategory::gradients_full), 10 * 4);
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), 990 * 4);
  EXPECT_EQ(ledger.current_total(), 1000 * 4) << "the storage's bytes, once";
  pool.give_back(held);
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), 1000 * 4);
  EXPECT_EQ(ledger.current(MemoryCategory::gradients_full), 0);
}

TEST(BufferPoolReuse, KeptBuffersReuseOnlyStorageAtMostAQuarterLarger) {
  MemoryLedger ledger;
  CountingPool pool(ledger);
  pool.give_back(pool.take(1000, Lifetime::step, MemoryCategory::parameters_full));
  // A shard of half the size would keep the other half resident for good: new storage.
  const auto shard = pool.take(500, Lifetime::kept, MemoryCategory::parameters_full);
  EXPECT_EQ(shard.capacity, 500);
  EXPECT_EQ(pool.misses, 2);
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), 1000 * 4) << "a kept take's miss frees nothing";
  const auto close = pool.take(800, Lifetime::kept, MemoryCategory::optimizer_states);
  EXPECT_EQ(close.capacity, 1000) << "1000 <= 800 + 800 / 4: reused, whatever its category";
  EXPECT_EQ(pool.misses, 2);
}

TEST(BufferPoolReuse, AStepBufferTakesLargerStorageOnlyFromItsOwnCategory) {
  // Stage 3: a small unit's gradients taking the large gathered buffer made the large gather
  // allocate again.
  MemoryLedger ledger;
  CountingPool pool(ledger);
  pool.give_back(pool.take(1000, Lifetime::step, MemoryCategory::parameters_full));
  const auto gradients = pool.take(10, Lifetime::step, MemoryCategory::gradients_full);
  EXPECT_EQ(gradients.capacity, 10);
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), 1000 * 4) << "another category's storage is not made way";
  const auto gathered = pool.take(600, Lifetime::step, MemoryCategory::parameters_full);
  EXPECT_EQ(gathered.capacity, 1000);
  EXPECT_EQ(pool.misses, 2);
}

TEST(BufferPoolReuse, AStepMissReplacesItsCategorysLargestIdleStorage) {
  MemoryLedger ledger;
  CountingPool pool(ledger);
  const auto a = pool.take(100, Lifetime::step, MemoryCategory::gradients_full);
  const auto b = pool.take(200, Lifetime::step, MemoryCategory::gradients_full);
  const auto c = pool.take(50, Lifetime::step, MemoryCategory::communication);
  pool.give_back(a);
  pool.give_back(b);
  pool.give_back(c);
  pool.take(300, Lifetime::step, MemoryCategory::gradients_full);  // held: misses
  EXPECT_EQ(ledger.current(MemoryCategory::buffers), (100 + 50) * 4) << "200 made way for 300; 100 and 50 stay";
}

TEST(BufferPoolReuse, AnyRepeatingPatternOfStepBuffersStopsAllocating) {
  // Random steps (takes of a few sizes and categories, given back in random order, several
  // held at once), each repeated step after step as training repeats its schedule: the pool
  // must stop allocating, and hold no more storage than the step's most bytes in use at once
  // times the number of its buffers in use at once.
  const std::vector<MemoryCategory> categories = {MemoryCategory::parameters_full, MemoryCategory::gradients_full,
                                                  MemoryCategory::gradients_shard};
  std::mt19937 random(12345);
  for (int pattern = 0; pattern < 2000; ++pattern) {
    struct Op {
      bool take;
      std::int64_t floats;
      MemoryCategory category;
      std::size_t release_pick;
    };
    std::vector<Op> ops;
    std::vector<std::int64_t> sizes;
    for (int k = 0, n = 1 + static_cast<int>(random() % 6); k < n; ++k) sizes.push_back(1 + random() % 2000);
    int live = 0, most_live = 0;
    for (int k = 0, n = 2 + static_cast<int>(random() % 24); k < n || live > 0; ++k) {
      const bool take = k < n && (live == 0 || random() % 2 == 0);
      ops.push_back({take, sizes[random() % sizes.size()], categories[random() % categories.size()], random()});
      live += take ? 1 : -1;
      most_live = std::max(most_live, live);
    }
    MemoryLedger ledger;
    CountingPool pool(ledger);
    int steps = 0, misses_last_step = -1;
    for (; steps < 40 && misses_last_step != 0; ++steps) {
      const int before = pool.misses;
      std::vector<CountingPool::Held> held;
      for (const Op& op : ops) {
        if (op.take) {
          held.push_back(pool.take(op.floats, Lifetime::step, op.category));
        } else {
          const std::size_t pick = op.release_pick % held.size();
          pool.give_back(held[pick]);
          held.erase(held.begin() + static_cast<std::ptrdiff_t>(pick));
        }
      }
      misses_last_step = pool.misses - before;
      ASSERT_EQ(ledger.current_total(), ledger.current(MemoryCategory::buffers)) << "pattern " << pattern;
    }
    EXPECT_EQ(misses_last_step, 0) << "pattern " << pattern << ": still allocating after " << steps << " steps";
    const std::int64_t largest = *std::max_element(sizes.begin(), sizes.end());
    EXPECT_LE(ledger.current(MemoryCategory::buffers), most_live * largest * 4 * 3)
        << "pattern " << pattern << ": at most the buffers in use at once per category, each at most the largest";
  }
}

}  // namespace
}  // namespace zs
