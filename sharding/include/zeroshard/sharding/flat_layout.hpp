#pragma once
// Pure layout math, no MPI: how named tensors pack into one flat buffer and how that buffer is
// split into one contiguous shard per rank.
//
// Layout: tensors in the given order, each starting at a multiple of `alignment` elements;
// the total is padded to a multiple of world_size * alignment so every shard has the same
// size and starts aligned. Padding is never rejected: any world size can be served.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "zeroshard/dtype.hpp"

namespace zs::sharding {

struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;  // empty = scalar
  DType dtype = DType::float32;

  /// The product of the dimensions (1 for a scalar). Throws InvalidArgument naming the tensor
  /// for a negative dimension or a product past 2^63-1 (checked, never wrapped).
  std::int64_t numel() const;
  bool operator==(const TensorSpec&) const = default;
};

/// A tensor's place in the flat buffer.
struct TensorSlot {
  TensorSpec spec;
  std::int64_t offset = 0;  // elements from the buffer's start
  std::int64_t numel = 0;
  std::int64_t end() const { return offset + numel; }
};

/// A half-open element range [begin, begin + size).
struct ShardRange {
  std::int64_t begin = 0;
  std::int64_t size = 0;
  std::int64_t end() const { return begin + size; }
};

class FlatLayout {
 public:
  /// Throws InvalidArgument for an empty or duplicated name, a negative dimension, mixed dtypes
  /// (one flat buffer holds one dtype), world_size < 1 or alignment < 1, or a total (tensor,
  /// offsets, padding) past 2^63-1 elements: all arithmetic is overflow-checked, since shapes
  /// also come from files (a checkpoint's tensor_shapes).
  static FlatLayout build(std::vector<TensorSpec> tensors, int world_size, std::int64_t alignment = 1);

  const std::vector<TensorSlot>& tensors() const { return slots_; }
  DType dtype() const { return dtype_; }
  int world_size() const { return world_size_; }
  std::int64_t alignment() const { return alignment_; }
  /// Elements up to the end of the last tensor (alignment gaps included, final padding not).
  std::int64_t numel() const { return numel_; }
  /// Elements including padding: world_size() * shard_numel().
  std::int64_t padded_numel() const { return shard_numel_ * world_size_; }
  std::int64_t shard_numel() const { return shard_numel_; }
  /// The slice of the flat buffer that `rank` owns. Throws for a rank outside [0, world_size).
  ShardRange shard(int rank) const;
  std::optional<std::size_t> index_of(std::string_view name) const;
  /// Throws InvalidArgument naming the missing tensor.
  const TensorSlot& find(std::string_view name) const;
  /// The same tensors laid out for another world size and/or alignment.
  FlatLayout relayout(int world_size, std::int64_t alignment) const;

 private:
  std::vector<TensorSlot> slots_;
  DType dtype_ = DType::float32;
  int world_size_ = 1;
  std::int64_t alignment_ = 1;
  std::int64_t numel_ = 0;
  std::int64_t shard_numel_ = 0;
};

}  // namespace zs::sharding
