#pragma once
// Internal: recursive-doubling all-gather, for power-of-two world sizes.
//
// Step k of log2(n): rank r exchanges with r XOR 2^k everything it has gathered so far, the
// aligned group of 2^k chunks that contains its own, a contiguous range. It moves the same
// bytes per rank as the ring, in log2(n) steps instead of n-1: fewer hand-offs between ranks,
// which wins for small messages and whenever ranks share cores (docs/collectives.md).
// Each step's message is cut into pieces of at most all_gather_segment_bytes (MPI counts are
// int); pieces to one partner share the collective's tag and match in posting order.

#include <mpi.h>

#include <cstdint>
#include <vector>

#include "chunk_bounds.hpp"
#include "comm_context.hpp"
#include "pending_op.hpp"

namespace zs::detail {

template <class T>
class RecursiveDoublingGatherOp final : public PendingOp {
 public:
  /// `full` receives all n equal chunks; `own_chunk` (may alias this rank's chunk of `full`)
  /// holds this rank's. Requires a power-of-two world size.
  RecursiveDoublingGatherOp(CommContext& ctx, T* full, std::int64_t count, const T* own_chunk, int tag);
  ~RecursiveDoublingGatherOp() override { abandon(); }
  bool progress() override;
  void abandon() noexcept override;
  std::string describe() const override;
  /// The step's receives while any is pending (they gate the next step), then its sends.
  void outstanding_requests(std::vector<MPI_Request*>& out) override;

  static bool supports(int world_size) { return world_size > 0 && (world_size & (world_size - 1)) == 0; }

 private:
  void post_step();

  CommContext& ctx_;
  T* full_;
  const T* own_chunk_;
  ChunkBounds bounds_;
  int tag_;
  std::int64_t piece_elems_;
  int step_ = 0;
  int steps_ = 0;
  std::vector<MPI_Request> requests_;  // the current step's receives and sends
  bool started_ = false;
};

extern template class RecursiveDoublingGatherOp<float>;
extern template class RecursiveDoublingGatherOp<double>;
extern template class RecursiveDoublingGatherOp<std::uint16_t>;

}  // namespace zs::detail
