// The model-state formula shared by the memory planner and zeroshard-estimate, against the
// ZeRO paper's published figures (Rajbhandari et al., 2020, figure 1: 7.5B parameters, 64
// ranks, mixed-precision Adam, K = 12) and against float32 Adam's bytes counted by hand.
#include <gtest/gtest.h>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/model_state_formula.hpp"

namespace zs {
namespace {

std::int64_t total(std::int64_t psi, int ranks, int stage, const StatePrecision& precision) {
  return model_state_bytes_per_rank(psi, ranks, ShardedCategories::of_stage(stage), precision).total();
}

TEST(ModelStateFormula, ReproducesTheZeroPapersFigureForSevenPointFiveBillionOnSixtyFourRanks) {
  const std::int64_t psi = 7'500'000'000;
  const StatePrecision mixed = StatePrecision::mixed_adam();
  // 120 GB, 31.4 GB, 16.6 GB, 1.9 GB in the paper (GB = 1e9 bytes).
  EXPECT_EQ(total(psi, 64, 0, mixed), 120'000'000'000);
  EXPECT_EQ(total(psi, 64, 1, mixed), 31'406'250'000);
  EXPECT_EQ(total(psi, 64, 2, mixed), 16'640'625'000);
  EXPECT_EQ(total(psi, 64, 3, mixed), 1'875'000'000);
}

TEST(ModelStateFormula, Float32AdamIsFourPlusFourPlusEightBytes) {
  const std::int64_t psi = 1'000'000;
  const StatePrecision fp32 = StatePrecision::float32(2);
  const ModelStateBytes stage1 = model_state_bytes_per_rank(psi, 4, ShardedCategories::of_stage(1), fp32);
  EXPECT_EQ(stage1.parameters, 4'000'000);
  EXPECT_EQ(stage1.gradients, 4'000'000);
  EXPECT_EQ(stage1.optimizer_states, 2'000'000);  // 8 bytes x 250000 own elements
  EXPECT_EQ(total(psi, 4, 0, fp32), 16'000'000);
  EXPECT_EQ(total(psi, 4, 2, fp32), 4'000'000 + 3'000'000);
  EXPECT_EQ(total(psi, 4, 3, fp32), 4'000'000);
  EXPECT_EQ(total(psi, 4, 3, StatePrecision::float32(0)), 2'000'000);  // plain SGD
}

TEST(ModelStateFormula, ShardsRoundUpAsPaddedUnitsDo) {
  // 10 elements on 3 ranks: each rank holds ceil(10 / 3) = 4.
  EXPECT_EQ(total(10, 3, 3, StatePrecision::float32(2)), 4 * 16);
}

TEST(ModelStateFormula, RefusesImpossibleInput) {
  EXPECT_THROW(model_state_bytes_per_rank(-1, 4, {}, {}), InvalidArgument);
  EXPECT_THROW(model_state_bytes_per_rank(10, 0, {}, {}), InvalidArgument);
  EXPECT_THROW(ShardedCategories::of_stage(4), InvalidArgument);
}

}  // namespace
}  // namespace zs
