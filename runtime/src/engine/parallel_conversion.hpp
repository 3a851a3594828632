#pragma once
// The engine's dtype conversions (zs::widen, narrow, add_into, widen_scaled) spread over the
// rank's compute threads. Under mixed precision every unit is widened before its forward and
// again before its backward, its float32 gradients are folded into 16 bits, and the optimizer
// widens the gradient shard and rounds the master back: on one thread those passes made bf16
// steps 1.3-1.8x float32's on a 16-core node whose GEMMs ran on 4 threads per rank, and widening
// a Linear's weight twice cut its forward+backward to 0.28x of cblas_sgemm's rate there
// (docs/performance.md, "Mixed precision on a 16-core node"). Every conversion is elementwise,
// so the bits do not depend on the thread count.
#include <cstddef>
#include <cstdint>
#include <functional>

#include "zeroshard/dtype.hpp"

namespace zs::detail {

/// Fewer elements than this convert on the calling thread (a parallel region costs a few
/// microseconds; the optimizer's update uses the same bound).
inline constexpr std::int64_t kParallelConversionElements = std::int64_t{1} << 15;

/// Calls convert(first, count) on disjoint chunks that cover [0, elements) exactly, one chunk
/// per compute thread (nn::compute_threads()) run concurrently through OpenMP, or one call on
/// the calling thread below kParallelConversionElements. Chunk boundaries are multiples of 64
/// elements (whole cache lines at every dtype). Exceptions from convert propagate.
void for_each_chunk(std::int64_t elements, const std::function<void(std::int64_t first, std::int64_t count)>& convert);

/// The address of element `index` of a buffer of `type` starting at `base`.
inline const void* element_at(const void* base, DType type, std::int64_t index) {
  return static_cast<const std::byte*>(base) + index * static_cast<std::int64_t>(size_of(type));
}
inline void* element_at(void* base, DType type, std::int64_t index) {
  return static_cast<std::byte*>(base) + index * static_cast<std::int64_t>(size_of(type));
}

}  // namespace zs::detail
