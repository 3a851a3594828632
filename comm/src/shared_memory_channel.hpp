#pragma once
// Internal: the per-communicator state of the shared-memory collectives (shared_memory_op.hpp)
// for a communicator whose ranks all live on one node.
//
// Why: inside a node, Open MPI moves a large message with one kernel copy (CMA,
// process_vm_readv) that pins pages as it goes; on the development VM that runs at 2-3 GB/s,
// against ~17 GB/s for a plain memcpy. Here each rank owns two slots in one segment that every
// rank of the node maps; a collective proceeds in rounds: a rank writes its data for round R
// into slot R % 2 and publishes R, the peers read it straight from there and mark R consumed.
// Two slots let a rank fill round R+1 while its peers still read round R; it writes round R+2
// only once every peer has consumed round R. docs/collectives.md has the measurements.
//
// Rounds are numbered per communicator and every collective takes the same number of rounds
// on every rank (it depends only on its size and the world size), so the numbering stays in
// step across ranks. Collectives run one at a time in issue order: each takes a ticket when it
// is issued (the same ticket on every rank) and starts rounds once the one before it is done.

#include <mpi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "node_segment.hpp"

namespace zs::detail {

class SharedMemoryChannel {
 public:
  /// Collective over `comm` (whose `size` ranks the caller knows to share one node). Returns
  /// null on every rank when any rank could not map the segment (the callers then use the
  /// point-to-point algorithms). `slot_bytes`: bytes one rank publishes per round.
  static std::unique_ptr<SharedMemoryChannel> open(MPI_Comm comm, int rank, int size, std::size_t slot_bytes);

  int rank() const { return rank_; }
  int size() const { return size_; }
  std::size_t slot_bytes() const { return slot_bytes_; }

  /// Issue order: the ticket a new collective runs under, and whether it may run now.
  std::uint64_t take_ticket() { return issued_++; }
  bool is_turn_of(std::uint64_t ticket) const { return serving_ == ticket; }
  /// The running collective finished its rounds: the next ticket may start.
  void finish_turn() { ++serving_; }
  /// A collective was abandoned part-way: the rounds are out of step with the peers for good.
  void break_channel() { broken_ = true; }
  bool broken() const { return broken_; }

  /// Rounds: a collective draws its rounds when it starts (round numbers begin at 1).
  std::uint64_t draw_rounds(std::uint64_t count) {
    const std::uint64_t first = next_round_;
    next_round_ += count;
    return first;
  }
  /// True once every peer has consumed round `round` - 2 (this rank's slot for `round` is free).
  bool slot_free(std::uint64_t round) const;
  std::byte* own_slot(std::uint64_t round) const { return slot(rank_, round); }
  /// Makes this rank's slot for `round` visible to the peers (release).
  void publish(std::uint64_t round);
  /// Peer `peer`'s slot for `round`, or null while it has not published it (acquire).
  const std::byte* published_slot(int peer, std::uint64_t round) const;
  /// This rank is done reading every peer's slot for `round` (release).
  void consume(std::uint64_t round);
  /// For reports: the peers that have not yet published `round`, or not yet consumed `round`.
  std::vector<int> peers_behind_publishing(std::uint64_t round) const;
  std::vector<int> peers_behind_consuming(std::uint64_t round) const;

 private:
  struct alignas(64) Flags {
    std::atomic<std::uint64_t> published;
    alignas(64) std::atomic<std::uint64_t> consumed;
  };
  static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the flags live in shared memory");
  SharedMemoryChannel(NodeSegment segment, int rank, int size, std::size_t slot_bytes);
  Flags& flags(int r) const { return static_cast<Flags*>(segment_.data())[r]; }
  /// The peers whose `flag` is below `round` (for reports; slot_free checks without allocating).
  std::vector<int> peers_below(std::atomic<std::uint64_t> Flags::*flag, std::uint64_t round) const;
  std::byte* slot(int r, std::uint64_t round) const {
    return slots_ + (static_cast<std::size_t>(r) * 2 + round % 2) * slot_bytes_;
  }

  NodeSegment segment_;
  std::byte* slots_ = nullptr;
  int rank_ = 0, size_ = 1;
  std::size_t slot_bytes_ = 0;
  std::uint64_t issued_ = 0, serving_ = 0;
  std::uint64_t next_round_ = 1;
  bool broken_ = false;
};

}  // namespace zs::detail
