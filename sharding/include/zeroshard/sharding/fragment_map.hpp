#pragma once
// Which tensors, and which element ranges of each, a rank's shard holds; and how to move
// elements between two layouts of different world sizes (the basis of checkpoint resharding).

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

/// Copy `length` elements from offset `source_offset` of `source_rank`'s shard (source layout)
/// to `target_offset` of the target rank's shard (target layout).
struct ReshardPiece {
  int source_rank = 0;
  std::int64_t source_offset = 0;
  std::int64_t target_offset = 0;
  std::int64_t length = 0;
};

/// Elements [flat_begin, flat_begin + length) of a flat buffer sharded in `shard_numel`-element
/// shards, cut at shard edges: `source_rank`/`source_offset` say where each piece lives,
/// `target_offset` is its offset from flat_begin. Shared by reshard_plan and checkpoint reads.
std::vector<ReshardPiece> split_at_shard_edges(std::int64_t flat_begin, std::int64_t length, std::int64_t shard_numel);

/// Everything `target_rank` needs to fill its shard of `target` from shards laid out by
/// `source`. Both layouts must hold the same tensors (names, shapes, dtype; order and
/// alignment may differ); otherwise InvalidArgument lists every difference.
std::vector<ReshardPiece> reshard_plan(const FlatLayout& source, const FlatLayout& target, int target_rank);

}  // namespace zs::sharding
