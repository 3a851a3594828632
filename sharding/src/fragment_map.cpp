#include "zeroshard/sharding/fragment_map.hpp"

#include <algorithm>

namespace zs::sharding {

std::vector<Fragment> fragment_map(const FlatLayout& layout, int rank) {
  const ShardRange range = layout.shard(rank);
  std::vector<Fragment> fragments;
  for (std::size_t i = 0; i < layout.tensors().size(); ++i) {
    const TensorSlot& slot = layout.tensors()[i];
    const std::int64_t begin = std::max(slot.offset, range.begin);
    const std::int64_t end = std::min(slot.end(), range.end());
    if (begin < end) fragments.push_back({i, begin - slot.offset, begin - range.begin, end - begin});
  }
  return fragments;
}

std::vector<ReshardPiece> split_at_shard_edges(std::int64_t flat_begin, std::int64_t length, std::int64_t shard_numel) {
  std::vector<ReshardPiece> pieces;
  for (std::int64_t done = 0; done < length;) {
    const std::int64_t flat = flat_begin + done;
    const int rank = static_cast<int>(flat / shard_numel);
    const std::int64_t within = flat - rank * shard_numel;
    const std::int64_t piece = std::min(length - done, shard_numel - within);
    pieces.push_back({rank, within, done, piece});
    done += piece;
  }
  return pieces;
}

}  // namespace zs::sharding
