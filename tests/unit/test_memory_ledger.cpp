#include <gtest/gtest.h>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"

namespace zs {
namespace {

TEST(MemoryLedger, TracksCurrentAndHighWaterPerCategoryAndInTotal) {
  MemoryLedger ledger;
  ledger.allocate(MemoryCategory::parameters_full, 400);
  ledger.allocate(MemoryCategory::gradients_full, 400);
  ledger.release(MemoryCategory::gradients_full, 400);
  ledger.allocate(MemoryCategory::gradients_shard, 100);
  EXPECT_EQ(ledger.current(MemoryCategory::gradients_full), 0);
  EXPECT_EQ(ledger.high_water(MemoryCategory::gradients_full), 400);
  EXPECT_EQ(ledger.current_total(), 500);
  EXPECT_EQ(ledger.high_water_total(), 800);
  EXPECT_NE(ledger.report().find("gradients (shard)"), std::string::npos);
  EXPECT_EQ(ledger.report().find("master parameters"), std::string::npos) << "a category never used is left out";
}

TEST(MemoryLedger, RejectsReleasingMoreThanHeld) {
  MemoryLedger ledger;
  ledger.allocate(MemoryCategory::buffers, 10);
  EXPECT_THROW(ledger.release(MemoryCategory::buffers, 11), InvalidArgument);
  EXPECT_THROW(ledger.allocate(MemoryCategory::buffers, -1), InvalidArgument);
}

}  // namespace
}  // namespace zs
