#pragma once
// Internal: one POSIX shared-memory segment mapped by every rank of a node, for the comm
// layer's own use (the peer board, the shared-memory collectives). Plain memory: reading and
// writing it never enters MPI, and tearing it down is a local munmap (never collective, so an
// erroring rank cannot hang in a destructor). The name is unlinked as soon as every rank of
// the node has opened the (still empty) file, before any memory is reserved: a crash leaves
// at most an empty file in /dev/shm.

#include <mpi.h>

#include <cstddef>

namespace zs::detail {

class NodeSegment {
 public:
  NodeSegment() = default;
  /// Collective over `comm` (each node's ranks map one segment of `bytes` bytes, zero-filled;
  /// `bytes` must be the same on the ranks of a node). Never throws: on any local failure (no
  /// /dev/shm, out of space, an MPI error) that rank's segment is unavailable, and every rank
  /// still takes part in every call, so a local failure never blocks the others. The pages
  /// are reserved in the tmpfs here (posix_fallocate), so a full /dev/shm makes the segment
  /// unavailable rather than a SIGBUS later; they enter a process's RSS when it touches them.
  NodeSegment(MPI_Comm comm, std::size_t bytes, const char* purpose);
  ~NodeSegment();
  NodeSegment(NodeSegment&& other) noexcept;
  NodeSegment& operator=(NodeSegment&& other) noexcept;

  bool available() const { return data_ != nullptr; }
  void* data() const { return data_; }
  std::size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

}  // namespace zs::detail
