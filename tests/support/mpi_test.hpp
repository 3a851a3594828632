#pragma once
// GoogleTest under MPI (see tests/support/mpi_gtest_main.cpp).
//
// Derive multi-rank tests from MpiTest. Its TearDown is collective: it learns which ranks
// failed, and every rank that did not fail records a failure naming the ranks that did, with
// their messages (gathered to rank 0, which alone prints). So a test that fails on one rank
// fails everywhere, and the process exit codes agree.
//
// Rules that keep tests from hanging: use EXPECT_* around collectives (an early ASSERT_* on one
// rank skips collectives its peers wait in); every rank runs the same tests in the same order.

#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

namespace zs::testing {

int world_rank();
int world_size();

class MpiTest : public ::testing::Test {
 protected:
  void TearDown() override;
};

}  // namespace zs::testing

/// For tests of how stages 1-3 shard, gather and bound memory: at world size 1 every stage runs
/// as stage 0 (ShardingPolicy::from: nothing to shard), so there is nothing to check. Every rank
/// skips alike (the world size is the same everywhere).
#define ZS_SKIP_AT_WORLD_SIZE_ONE()                                                                  \
  if (::zs::testing::world_size() == 1)                                                              \
  GTEST_SKIP() << "world size 1 runs every stage as stage 0 (nothing is sharded or gathered)"

