#pragma once
// Internal: reduce-scatter and all-gather through the node's shared memory
// (SharedMemoryChannel), for communicators whose ranks share one node.
//
// Each chunk (ChunkBounds) moves in rounds of `segment` elements:
//   all_gather: a rank copies its chunk's segment into its slot; each peer copies it from there
//     into its output.
//   reduce_scatter: a rank copies its contribution to every other rank's chunk into its slot
//     (n-1 segments); rank r then sums chunk r's segment from the peers' slots and its own
//     data in one pass, in the ring's order ((x[r+1] + x[r+2]) + ...) + x[r] (RingOp): the
//     same bits as the ring reduce-scatter at every world size, so switching algorithms never
//     changes a training run.
// Nothing is posted to MPI: the collective advances only when progress() runs (a wait, or the
// engine's polling between compute blocks), and PendingOp::polled() says so.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chunk_bounds.hpp"
#include "pending_op.hpp"
#include "shared_memory_channel.hpp"

namespace zs::detail {

template <class T>
class SharedMemoryOp final : public PendingOp {
 public:
  /// The RingOp contract: reduce_scatter sums `full` (count elements; left unchanged here) and
  /// writes this rank's chunk to `own_chunk` (which may alias the chunk inside `full`),
  /// divided by the world size when `average`; all_gather fills `full` from every rank's
  /// chunk, this rank's taken from `own_chunk` (which may alias its place in `full`).
  /// Construct it when the collective is issued: it takes its turn in the channel's issue
  /// order then, unless `reserved_turn` holds a turn taken earlier (a later stage of a
  /// composite). A collective of no elements has no rounds: it takes no turn and is complete
  /// at once (needs_turn(count) says which).
  SharedMemoryOp(SharedMemoryChannel& channel, ShardCollective kind, T* full, std::int64_t count, T* own_chunk,
                 bool average, std::optional<std::uint64_t> reserved_turn = std::nullopt);
  static bool needs_turn(std::int64_t count) { return count > 0; }
  ~SharedMemoryOp() override;

  bool progress() override;
  void outstanding_requests(std::vector<MPI_Request*>&) override {}
  bool polled() const override { return true; }
  void abandon() noexcept override;
  std::string describe() const override;

 private:
  /// Advances the current round; true once it is complete.
  bool advance_round();
  void write_own_slot(std::uint64_t round);
  bool gather_from_peers(std::uint64_t round);
  bool reduce_from_peers(std::uint64_t round);
  std::int64_t segment_length(int chunk) const;

  SharedMemoryChannel& channel_;
  ShardCollective kind_;
  T* full_;
  T* own_chunk_;
  bool average_;
  ChunkBounds bounds_;
  std::uint64_t ticket_ = 0;
  std::int64_t segment_elems_ = 1;  // per chunk per round
  std::int64_t rounds_ = 0;
  std::int64_t round_index_ = 0;    // rounds completed
  std::uint64_t first_round_ = 0;
  bool started_ = false, finished_ = false, slot_written_ = false;
  std::vector<char> copied_;        // all_gather: peers copied in this round
};

extern template class SharedMemoryOp<float>;
extern template class SharedMemoryOp<double>;
extern template class SharedMemoryOp<std::uint16_t>;

}  // namespace zs::detail
