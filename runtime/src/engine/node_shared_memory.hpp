#pragma once
// One region of memory that every rank of a node maps (POSIX shared memory, a file in
// /dev/shm): zero_optimization.node_shared_parameters keeps each unit's whole parameters there
// once per node, each rank writing only its own shard's slice, so that nobody gathers them
// (docs/architecture.md "Node-shared parameters").

#include <cstddef>
#include <cstdint>
#include <string>

#include "zeroshard/comm/communicator.hpp"

namespace zs::detail {

class NodeSharedMemory {
 public:
  /// Collective over `node` (every rank of it on one node: the caller checks). Rank 0 creates
  /// a file of `bytes` bytes under `directory` (tmpfs; /dev/shm by default) and reserves its
  /// pages (posix_fallocate, zero-filled), every rank maps it, and the file is unlinked once
  /// mapped, so nothing is left behind whatever happens next. Not collective to destroy.
  /// Throws InvalidArgument on every rank when any rank fails, naming the failing rank, the
  /// path and the fix: a directory too small for `bytes` (Docker's 64 MiB /dev/shm:
  /// --shm-size), or one that cannot be created or mapped.
  NodeSharedMemory(Communicator& node, std::int64_t bytes, const std::string& directory = "/dev/shm");
  ~NodeSharedMemory();
  NodeSharedMemory(const NodeSharedMemory&) = delete;
  NodeSharedMemory& operator=(const NodeSharedMemory&) = delete;

  /// The mapping: `bytes` bytes, page-aligned, the same contents on every rank of the node.
  std::byte* data() const { return data_; }
  std::int64_t bytes() const { return bytes_; }

 private:
  std::byte* data_ = nullptr;
  std::int64_t bytes_ = 0;
};

}  // namespace zs::detail
