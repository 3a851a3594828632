#pragma once
// A contiguous range of a tensor's row-major elements as a list of boxes (hyperslabs).
// Fragments of a flat buffer cover contiguous element ranges, but HDF5 selections on an
// N-d dataset are boxes: this is the bridge (the checkpoint index maps each box of a full
// tensor to a 1-d range of a shard file).

#include <cstdint>
#include <vector>

namespace zs::sharding {

struct Box {
  std::vector<std::int64_t> start;  // per dimension
  std::vector<std::int64_t> count;
  std::int64_t numel() const;
};

/// Boxes covering exactly elements [begin, begin + length) of a row-major tensor of `shape`,
/// in increasing element order; each box is itself contiguous in row-major order, so box k
/// holds the next numel() elements after box k-1. At most 2 * rank - 1 boxes. A scalar
/// (empty shape) is one element. Throws InvalidArgument if the range is outside the tensor.
std::vector<Box> row_major_boxes(const std::vector<std::int64_t>& shape, std::int64_t begin, std::int64_t length);

}  // namespace zs::sharding
