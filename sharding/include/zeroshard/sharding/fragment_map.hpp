#pragma once
// Which tensors, and which element ranges of each, a rank's shard holds; and where a range of
// a sharded flat buffer lives (what checkpoint loading at another world size reads by).

#include <cstdint>
#include <vector>

#include "zeroshard/sharding/flat_layout.hpp"

namespace zs::sharding {

/// Elements [tensor_offset, tensor_offset + length) of tensor `tensor` (an index into
/// FlatLayout::tensors(), elements in row-major order) sit at [shard_offset, ...) of the shard.
struct Fragment {
  std::size_t tensor = 0;
  std::int64_t tensor_offset = 0;
  std::int64_t shard_offset = 0;
  std::int64_t length = 0;
  bool operator==(const Fragment&) const = default;
};

/// The fragments of `rank`'s shard, in shard order; padding and alignment gaps hold none.
std::vector<Fragment> fragment_map(const FlatLayout& layout, int rank);

/// Copy `length` elements from offset `source_offset` of `source_rank`'s shard to
/// `target_offset` of the destination.
struct ReshardPiece {
  int source_rank = 0;
  std::int64_t source_offset = 0;
  std::int64_t target_offset = 0;
  std::int64_t length = 0;
};

/// Elements [flat_begin, flat_begin + length) of a flat buffer sharded in `shard_numel`-element
/// shards, cut at shard edges: `source_rank`/`source_offset` say where each piece lives,
/// `target_offset` is its offset from flat_begin. CheckpointReader::read reads by it.
std::vector<ReshardPiece> split_at_shard_edges(std::int64_t flat_begin, std::int64_t length, std::int64_t shard_numel);

}  // namespace zs::sharding
