#pragma once
// Internal: how a collective splits `count` elements into one chunk per rank. Chunk c is
// [c*S, min(count, (c+1)*S)) with S = ceil(count / n): equal chunks when n divides count (the
// reduce-scatter / all-gather contract), trailing short or empty chunks otherwise (all-reduce
// accepts any count).

#include <algorithm>
#include <cstdint>

namespace zs::detail {

/// The two collectives that move one chunk per rank (ring and shared-memory implementations).
enum class ShardCollective { reduce_scatter, all_gather };

struct ChunkBounds {
  std::int64_t count = 0;
  int ranks = 1;

  std::int64_t chunk_elems() const { return (count + ranks - 1) / ranks; }
  std::int64_t begin(int c) const { return std::min(count, c * chunk_elems()); }
  std::int64_t end(int c) const { return std::min(count, (c + 1) * chunk_elems()); }
  std::int64_t size(int c) const { return end(c) - begin(c); }
};

}  // namespace zs::detail
