#include "gradient_norm.hpp"

#include <algorithm>
#include <cmath>

#include "zeroshard/nn/compute_threads.hpp"

namespace zs::detail {
namespace {

// Sum of squares in double over 8 partial sums, combined in a fixed order: 8 independent
// chains the compiler vectorises, where one chain of dependent additions ran at one add per
// latency (4.3% of a stage-1 step, perf).
double sum_of_squares(const float* g, std::int64_t n, float unscale) {
  constexpr int kParts = 8;
  double part[kParts] = {};
  auto square = [&](std::int64_t i) {
    const auto x = static_cast<double>(g[i] * unscale);
    return x * x;
  };
  std::int64_t i = 0;
  for (; i + kParts <= n; i += kParts)
    for (int k = 0; k < kParts; ++k) part[k] += square(i + k);
  for (; i < n; ++i) part[0] += square(i);
  return ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
}

// max |g * unscale| over the block, and whether a NaN was seen (std::max would drop it).
PartialNorm max_abs(const float* g, std::int64_t n, float unscale) {
  float m = 0;
  bool nan = false;
  for (std::int64_t i = 0; i < n; ++i) {
    const float x = g[i] * unscale;
    nan |= x != x;
    m = std::max(m, std::abs(x));
  }
  return {static_cast<double>(m), nan ? 1.0 : 0.0};
}

}  // namespace

void add_partial(PartialNorm& total, const PartialNorm& group, bool max_norm) {
  if (max_norm) {
    total.value = std::max(total.value, group.value);
    total.nan_seen = std::max(total.nan_seen, group.nan_seen);
  } else {
    total.value += group.value;
  }
}

void accumulate_norm(PartialNorm& partial, const float* grads, std::int64_t base, const std::vector<ParameterRun>& runs,
                     float unscale, bool max_norm) {
  const int threads = nn::compute_threads();
  std::vector<PartialNorm> blocks;
  for (const ParameterRun& run : runs) {
    const float* g = grads + base + run.offset;
    const std::int64_t count = (run.length + kNormBlockElements - 1) / kNormBlockElements;
    blocks.assign(static_cast<std::size_t>(count), PartialNorm{});
    // Nothing in the loop throws (plain arithmetic), so the region needs no exception guard.
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1 && count > 1)
    for (std::int64_t b = 0; b < count; ++b) {
      const std::int64_t first = b * kNormBlockElements;
      const std::int64_t n = std::min(kNormBlockElements, run.length - first);
      blocks[static_cast<std::size_t>(b)] =
          max_norm ? max_abs(g + first, n, unscale) : PartialNorm{sum_of_squares(g + first, n, unscale), 0};
    }
    // Block order: the same bits at any thread count.
    for (const PartialNorm& block : blocks) add_partial(partial, block, max_norm);
  }
}

}  // namespace zs::detail
