#pragma once
// Internal: the ring reduce-scatter and all-gather over nonblocking point-to-point.
//
// Step s of n-1: rank r sends one chunk to r+1 and receives one from r-1. Each chunk moves in
// segments (CommunicatorConfig::segment_bytes); segment j of step s+1 is sent as soon as
// segment j of step s has arrived (and, for reduce-scatter, been added), so transfers
// pipeline with the additions. Receives are posted `receive_window` segments ahead.
//
//   reduce_scatter: step s sends chunk (r-s-1) and receives chunk (r-s-2) (mod n), adding the
//     arrival into the full buffer. Chunk c is summed in the fixed order
//     ((x[c+1] + x[c+2]) + ...) + x[c]: deterministic for a given world size.
//   all_gather: step s sends chunk (r-s) and receives chunk (r-s-1) straight into the output.
//
// A float32 reduce-scatter may travel in 16 bits (`wire` bfloat16 or float16: mixed
// precision's gradients): each partial sum is rounded to the wire dtype when sent, and each
// arrival is widened and added in float32, as NCCL reduces bf16 (one rounding per hop; the
// first hop sends a rank's own values, which are 16-bit already, unchanged). Half the bytes.
//
// Messages of one collective share one tag; MPI's non-overtaking rule matches them in order
// because both sides post segments in the same (step, segment) order.

#include <mpi.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "zeroshard/dtype.hpp"

#include "chunk_bounds.hpp"
#include "comm_context.hpp"
#include "pending_op.hpp"
#include "scratch_pool.hpp"

namespace zs::detail {

template <class T>
class RingOp final : public PendingOp {
 public:
  /// reduce_scatter: `full` (count elements) is summed in place (its contents are scratch
  ///   afterwards); this rank's chunk of the sum is written to `own_chunk`, which may alias
  ///   the chunk inside `full`. `average` divides by the world size.
  /// all_gather: `full` receives every chunk; `own_chunk` holds this rank's chunk on entry
  ///   (it may alias the chunk inside `full`).
  /// `tag` comes from ctx.next_tag() drawn when the collective is issued (not when a stage
  /// of a composite starts), so every rank gives the same collective the same tag.
  /// `wire`: the dtype on the wire; another than T's only for a float32 reduce_scatter
  /// (bfloat16 or float16, see above). Throws InvalidArgument otherwise.
  RingOp(CommContext& ctx, ShardCollective kind, T* full, std::int64_t count, T* own_chunk,
         bool average, int tag, DType wire = wire_dtype_of());
  ~RingOp() override;

  bool progress() override;
  void abandon() noexcept override;
  std::string describe() const override;
  void outstanding_requests(std::vector<MPI_Request*>& out) override;

 private:
  static DType wire_dtype_of() {
    if constexpr (std::is_same_v<T, std::uint16_t>) return DType::bfloat16;  // raw 16-bit words
    else return dtype_of<T>();
  }
  bool narrow_wire() const { return wire_ != wire_dtype_of(); }
  void* slot(std::size_t index);
  struct Segment {
    int step;
    std::int64_t offset;  // into `full`
    int length;
  };
  void start();
  void post_receives_in_window();
  void post_send(const T* source, int length);
  void finish();
  std::vector<Segment> segments_of_chunk(int step, int chunk) const;

  CommContext& ctx_;
  ShardCollective kind_;
  T* full_;
  T* own_chunk_;
  bool average_;
  ChunkBounds bounds_;
  int tag_;
  int left_, right_;
  std::int64_t segment_elems_;
  int window_;

  std::vector<Segment> first_sends_;  // step 0
  std::vector<Segment> arrivals_;     // every receive, in posting order
  std::vector<MPI_Request> receive_requests_;
  std::vector<MPI_Request> send_requests_;
  std::size_t next_receive_to_post_ = 0;
  std::size_t arrived_ = 0;
  ScratchBuffer receive_slots_;  // reduce_scatter only: window_ segments
  DType wire_;
  std::size_t wire_bytes_;
  ScratchBuffer staging_;            // 16-bit wire: the rounded partial sums sent, by offset
  std::vector<float> widened_;       // 16-bit wire: one arrival widened
  bool started_ = false;
};

extern template class RingOp<float>;
extern template class RingOp<double>;
extern template class RingOp<std::uint16_t>;

}  // namespace zs::detail
