#pragma once
// Groups tensors into gradient buckets of at most `max_bytes`, in an order fixed by the caller
// (typically reverse layout order for backward) and identical on every rank: the planner reads
// nothing rank-specific, so every rank issues its bucket collectives in the same order.

#include <cstdint>
#include <span>
#include <vector>

#include "zeroshard/sharding/flat_layout.hpp"

namespace zs::sharding {

/// Elements [begin, begin + length) of tensor `tensor` (index into FlatLayout::tensors()).
struct BucketPiece {
  std::size_t tensor = 0;
  std::int64_t begin = 0;
  std::int64_t length = 0;
};

struct Bucket {
  std::vector<BucketPiece> pieces;
  std::int64_t numel = 0;
};

/// Fills buckets with the tensors in `order`, each bucket at most `max_bytes`
/// (floor(max_bytes / element size) elements). A tensor that does not fit in the space left
/// starts a new bucket; one larger than a whole bucket is split across consecutive buckets, so
/// the bound always holds. Zero-element tensors are skipped. Throws InvalidArgument if
/// `order` is not a permutation-free list of valid indices or max_bytes is below one element.
std::vector<Bucket> plan_buckets(const FlatLayout& layout, std::span<const std::size_t> order,
                                 std::int64_t max_bytes);

/// Every tensor, in reverse layout order: the order gradients become ready in backward.
std::vector<std::size_t> reverse_layout_order(const FlatLayout& layout);

}  // namespace zs::sharding
