#include "ring_op.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "mpi_type.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/dtype.hpp"
#include "zeroshard/dtype_convert.hpp"

namespace zs::detail {

namespace {
int wrap(int value, int n) { return ((value % n) + n) % n; }

template <class T>
std::string element_name() {
  if constexpr (std::is_same_v<T, std::uint16_t>) return "16-bit";
  else return to_string(dtype_of<T>());
}
}  // namespace

template <class T>
RingOp<T>::RingOp(CommContext& ctx, ShardCollective kind, T* full, std::int64_t count, T* own_chunk,
                  bool average, int tag, DType wire)
    : ctx_(ctx),
      kind_(kind),
      full_(full),
      own_chunk_(own_chunk),
      average_(average),
      bounds_{count, ctx.size},
      tag_(tag),
      left_(wrap(ctx.rank - 1, ctx.size)),
      right_(wrap(ctx.rank + 1, ctx.size)),
      segment_elems_(std::max<std::int64_t>(
          1, (kind == ShardCollective::reduce_scatter ? ctx.config.segment_bytes : ctx.config.all_gather_segment_bytes) /
                 size_of(wire))),
      window_(ctx.config.receive_window),
      wire_(wire),
      wire_bytes_(size_of(wire)) {
  if (narrow_wire() && !(std::is_same_v<T, float> && kind == ShardCollective::reduce_scatter && is_half(wire)))
    throw InvalidArgument("ring: only a float32 reduce_scatter travels in another dtype (bfloat16 or float16), not " +
                          to_string(wire));
  if constexpr (std::is_same_v<T, std::uint16_t>) {
    if (kind == ShardCollective::reduce_scatter)
      throw InvalidArgument("ring reduce_scatter cannot add raw 16-bit words; widen to float32");
  }
  const int n = ctx.size, r = ctx.rank;
  const int first_send_chunk = kind == ShardCollective::reduce_scatter ? wrap(r - 1, n) : r;
  if (n > 1) first_sends_ = segments_of_chunk(0, first_send_chunk);  // one rank: nothing moves
  for (int step = 0; step < n - 1; ++step) {
    const int chunk = kind == ShardCollective::reduce_scatter ? wrap(r - step - 2, n) : wrap(r - step - 1, n);
    for (const Segment& seg : segments_of_chunk(step, chunk)) arrivals_.push_back(seg);
  }
  receive_requests_.assign(arrivals_.size(), MPI_REQUEST_NULL);
  // All-gather receives land in the output, not in scratch slots: post them all at once.
  if (kind == ShardCollective::all_gather) window_ = static_cast<int>(std::max<std::size_t>(1, arrivals_.size()));
  send_requests_.reserve(first_sends_.size() + arrivals_.size());
}

template <class T>
RingOp<T>::~RingOp() {
  abandon();  // no-op once complete: every request is MPI_REQUEST_NULL by then
}

template <class T>
std::vector<typename RingOp<T>::Segment> RingOp<T>::segments_of_chunk(int step, int chunk) const {
  std::vector<Segment> segments;
  for (std::int64_t at = bounds_.begin(chunk); at < bounds_.end(chunk); at += segment_elems_)
    segments.push_back({step, at, static_cast<int>(std::min(segment_elems_, bounds_.end(chunk) - at))});
  return segments;
}

template <class T>
void RingOp<T>::start() {
  started_ = true;
  if (kind_ == ShardCollective::reduce_scatter)
    receive_slots_ = ctx_.scratch.acquire(static_cast<std::size_t>(window_ * segment_elems_) * wire_bytes_);
  if (narrow_wire()) {
    // Every chunk is sent at most once in a reduce-scatter: one staging slot per element.
    staging_ = ctx_.scratch.acquire(static_cast<std::size_t>(bounds_.count) * wire_bytes_);
    widened_.resize(static_cast<std::size_t>(segment_elems_));
  }
  // Receives first: a message that finds its receive already posted skips the unexpected-
  // message queue (and, for large ones, the rendezvous can start at once).
  post_receives_in_window();
  const std::int64_t own_begin = bounds_.begin(ctx_.rank);
  for (const Segment& seg : first_sends_) {
    // All-gather sends its own chunk from where the caller holds it, so the local copy into
    // the output below overlaps the transfer instead of delaying it.
    const T* source = kind_ == ShardCollective::all_gather ? own_chunk_ + (seg.offset - own_begin) : full_ + seg.offset;
    post_send(source, seg.length);
  }
  if (kind_ == ShardCollective::all_gather && own_chunk_ != full_ + own_begin)
    std::copy_n(own_chunk_, bounds_.size(ctx_.rank), full_ + own_begin);  // not memcpy: may be empty and null
}

template <class T>
void RingOp<T>::post_receives_in_window() {
  while (next_receive_to_post_ < arrivals_.size() && next_receive_to_post_ < arrived_ + window_) {
    const Segment& seg = arrivals_[next_receive_to_post_];
    void* destination = kind_ == ShardCollective::reduce_scatter ? slot(next_receive_to_post_ % window_)
                                                           : static_cast<void*>(full_ + seg.offset);
    ZS_MPI_CHECK(MPI_Irecv(destination, seg.length, narrow_wire() ? MPI_UINT16_T : mpi_type<T>(), left_, tag_,
                           ctx_.comm, &receive_requests_[next_receive_to_post_]));
    ++next_receive_to_post_;
  }
}

template <class T>
void* RingOp<T>::slot(std::size_t index) {
  return receive_slots_.as<std::byte>() + index * static_cast<std::size_t>(segment_elems_) * wire_bytes_;
}

template <class T>
void RingOp<T>::post_send(const T* source, int length) {
  send_requests_.push_back(MPI_REQUEST_NULL);
  if constexpr (std::is_same_v<T, float>) {
    if (narrow_wire()) {
      // Reduce-scatter sends come from `full_` only; the staging slot at the same offset
      // stays untouched until the send completes (no chunk is sent twice).
      std::byte* staged = staging_.as<std::byte>() + static_cast<std::size_t>(source - full_) * wire_bytes_;
      zs::narrow(source, staged, wire_, length);
      ZS_MPI_CHECK(MPI_Isend(staged, length, MPI_UINT16_T, right_, tag_, ctx_.comm, &send_requests_.back()));
      return;
    }
  }
  ZS_MPI_CHECK(MPI_Isend(source, length, mpi_type<T>(), right_, tag_, ctx_.comm, &send_requests_.back()));
}

template <class T>
bool RingOp<T>::progress() {
  if (!started_) start();
  while (arrived_ < arrivals_.size()) {
    int flag = 0;
    ZS_MPI_CHECK(MPI_Test(&receive_requests_[arrived_], &flag, MPI_STATUS_IGNORE));
    if (!flag) break;
    const Segment& seg = arrivals_[arrived_];
    if constexpr (!std::is_same_v<T, std::uint16_t>) {
      if (kind_ == ShardCollective::reduce_scatter) {
        const T* incoming = static_cast<const T*>(slot(arrived_ % window_));
        if constexpr (std::is_same_v<T, float>) {
          if (narrow_wire()) {
            zs::widen(slot(arrived_ % window_), wire_, widened_.data(), seg.length);
            incoming = widened_.data();
          }
        }
        T* partial = full_ + seg.offset;
        // The last step's sums are this rank's results: written straight to own_chunk when it
        // lies outside `full` (no copy at finish()).
        const std::int64_t own_begin = bounds_.begin(ctx_.rank);
        T* sum = seg.step == ctx_.size - 2 && own_chunk_ != full_ + own_begin ? own_chunk_ + (seg.offset - own_begin)
                                                                              : partial;
        for (int i = 0; i < seg.length; ++i) sum[i] = incoming[i] + partial[i];
      }
    }
    // What arrived at step s is what this rank forwards at step s+1, segment for segment.
    if (seg.step + 1 < ctx_.size - 1) post_send(full_ + seg.offset, seg.length);
    ++arrived_;
    post_receives_in_window();
  }
  if (arrived_ < arrivals_.size()) return false;
  int all_sent = 0;
  ZS_MPI_CHECK(MPI_Testall(static_cast<int>(send_requests_.size()), send_requests_.data(), &all_sent,
                           MPI_STATUSES_IGNORE));
  if (!all_sent) return false;
  finish();
  return true;
}

template <class T>
void RingOp<T>::finish() {
  if (kind_ != ShardCollective::reduce_scatter) return;
  if constexpr (!std::is_same_v<T, std::uint16_t>) {
    const T* sum = full_ + bounds_.begin(ctx_.rank);
    const std::int64_t length = bounds_.size(ctx_.rank);
    // With more than one rank the last step wrote own_chunk already (progress()).
    if (own_chunk_ != sum && ctx_.size == 1) std::copy_n(sum, length, own_chunk_);
    if (average_) {
      const T divisor = static_cast<T>(ctx_.size);
      for (std::int64_t i = 0; i < length; ++i) own_chunk_[i] /= divisor;
    }
  }
}

template <class T>
void RingOp<T>::outstanding_requests(std::vector<MPI_Request*>& out) {
  // Arrivals are processed in order: only the next one can move the ring on. Sends matter
  // once everything has arrived.
  if (arrived_ < arrivals_.size()) {
    out.push_back(&receive_requests_[arrived_]);
    return;
  }
  for (MPI_Request& request : send_requests_)
    if (request != MPI_REQUEST_NULL) out.push_back(&request);
}

template <class T>
void RingOp<T>::abandon() noexcept {
  for (MPI_Request& request : receive_requests_) {
    if (request == MPI_REQUEST_NULL) continue;
    MPI_Cancel(&request);
    MPI_Request_free(&request);
  }
  // Sends cannot be recalled safely; freeing lets MPI finish or drop them on its own.
  for (MPI_Request& request : send_requests_)
    if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
}

template <class T>
std::string RingOp<T>::describe() const {
  return std::string("ring ") + (kind_ == ShardCollective::reduce_scatter ? "reduce_scatter" : "all_gather") +
         " of " + std::to_string(bounds_.count) + " " + element_name<T>() + " elements" +
         (narrow_wire() ? " in " + to_string(wire_) + " on the wire" : std::string()) + " (tag " +
         std::to_string(tag_) + ", receiving from rank " + std::to_string(left_) + ")";
}

template class RingOp<float>;
template class RingOp<double>;
template class RingOp<std::uint16_t>;

}  // namespace zs::detail
