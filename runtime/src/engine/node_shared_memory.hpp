#pragma once
// One region of memory that every rank of a node maps (POSIX shared memory, a file in
// /dev/shm): zero_optimization.node_shared_parameters keeps each unit's whole parameters there
// once per shard group, each rank writing only its own shard's slice, so that nobody gathers them
// (docs/architecture.md "Node-shared parameters").

#include <cstddef>
#include <cstdint>
#include <string>

#include "zeroshard/comm/communicator.hpp"

namespace zs::detail {

class NodeSharedMemory {
 public:
  /// Collective over `node` (every rank of it on one node: the caller checks). Rank 0 creates
  /// an empty file under `directory` (tmpfs; /dev/shm by default); once every rank has opened
  /// it, it is unlinked, and only then are its `bytes` bytes reserved (posix_fallocate,
  /// zero-filled) and mapped: a rank that dies at any point leaves at most an empty file (if
  /// before every rank opened it), never reserved memory. Not collective to destroy. Throws
  /// InvalidArgument on every rank when any rank fails, naming the failing rank, the path and
  /// the fix: ranks asking for different sizes, a directory too small for `bytes` (Docker's
  /// 64 MiB /dev/shm: --shm-size), or a file that cannot be created, opened, reserved or mapped.
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
