#pragma once
// The host-path communicator: a duplicated MPI communicator with errors returned (never fatal)
// and nonblocking collectives on host buffers.
//
// Contract of every collective below: *collective* — every rank of the communicator calls it,
// in the same order, with the same element count, dtype and op. (Set
// CommunicatorConfig::verify_across_ranks to have that checked.) Buffers must stay valid and
// untouched until the returned Work completes. One thread at a time uses a communicator.
//
// Determinism: for a given world size, all_reduce gives results bit-identical to reduce_scatter
// followed by all_gather of the same data, on every rank — all_reduce *is* that composition,
// with the same reduce-scatter (the algorithm configured for reduce_scatter). The engine relies
// on it to make ZeRO stages 0-3 agree bitwise.
//
// Element counts are 64-bit. 16-bit float types (bfloat16, float16) are reduced in float32:
// with the ring reduce-scatter (the default, also all_reduce's first half) the partial sums
// travel in 16 bits, rounded at each hop and added in float32 (NCCL's bf16 reduction: half
// the bytes of float32 on the wire); with the mpi algorithm MPI reduces widened float32
// values and the result is rounded once. A 16-bit all_reduce gathers the rounded 16-bit
// chunks. Either way deterministic for a given world size.

#include <mpi.h>

#include <cstdint>
#include <memory>
#include <span>

#include "zeroshard/comm/collective_options.hpp"
#include "zeroshard/comm/flight_recorder.hpp"
#include "zeroshard/comm/work.hpp"
#include "zeroshard/dtype.hpp"

namespace zs {

namespace detail {
class PendingOp;
}

/// A typeless view of a host buffer: what the untyped collective entry points take.
struct HostBuffer {
  void* data = nullptr;
  std::int64_t count = 0;
  DType dtype = DType::float32;

  template <class T>
  static HostBuffer of(std::span<T> span) {
    return {const_cast<std::remove_const_t<T>*>(span.data()), static_cast<std::int64_t>(span.size()),
            dtype_of<std::remove_const_t<T>>()};
  }
};

/// The reductions of Communicator::all_reduce_scalars (MPI_MIN, MPI_MAX, MPI_SUM).
enum class ScalarOp { min, max, sum };

class Communicator {
 public:
  /// Collective over `parent`: duplicates it, so ZeroShard's traffic never mixes with the
  /// caller's, and sets MPI_ERRORS_RETURN on the duplicate.
  explicit Communicator(MPI_Comm parent = MPI_COMM_WORLD, CommunicatorConfig config = {});
  ~Communicator();
  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const;
  int size() const;
  MPI_Comm handle() const;
  const CommunicatorConfig& config() const;

  /// Collective. Ranks with the same color form a new communicator, ordered by (key, rank).
  /// `color` must be >= 0: every rank lands in some sub-communicator.
  Communicator split(int color, int key) const;
  /// Collective. One communicator per shared-memory node (MPI_COMM_TYPE_SHARED).
  Communicator split_shared_node() const;

  /// Collective, blocking (MPI_Ibarrier waited on like Work::wait, so with the timeout).
  void barrier();
  /// Collective, blocking: MPI's own all-reduce of a few scalars in place (agreements, norms),
  /// waited on like Work::wait (with communication.timeout_s); recorded as
  /// "all_reduce_scalars" with `label`. Throws MpiError / TimeoutError. const: it changes no
  /// state a caller sees besides the flight recorder.
  void all_reduce_scalars(std::span<std::int64_t> values, ScalarOp op, std::string_view label = {}) const;
  void all_reduce_scalars(std::span<double> values, ScalarOp op, std::string_view label = {}) const;

  /// Not collective, never blocks or allocates: publishes what this rank is doing now
  /// ("forward unit 2"; 47 characters kept) for the hang reports of the other ranks of its node.
  void set_activity(std::string_view what) const noexcept;
  /// This communicator's record of its last collectives (sequence numbers, states, times).
  const FlightRecorder& flight_recorder() const;
  /// Not collective: bytes this rank has sent in the all_reduce, reduce_scatter and all_gather
  /// calls issued on this communicator so far, counted as a bandwidth-optimal algorithm sends
  /// them (the ring; recursive doubling sends the same): (size - 1) / size of the full buffer
  /// for reduce_scatter and all_gather, twice that for all_reduce (MPI's own algorithms, when
  /// chosen, may send more). all_reduce_scalars and barrier are not counted. A traffic
  /// measure (which group moves how much), not a timing.
  std::int64_t bytes_sent() const;
  /// Not collective, never blocks: advances every collective in flight on this communicator.
  /// Call it between pieces of computation to overlap communication with compute (the
  /// engine does, between modules).
  void progress();
  /// Collective, blocking: `buffer` on `root` is copied to every rank's `buffer`.
  void broadcast(HostBuffer buffer, int root);
  template <class T>
  void broadcast(std::span<T> buffer, int root) { broadcast(HostBuffer::of(buffer), root); }

  /// Collective. Reduces `data` across ranks in place (any count, padding not needed).
  [[nodiscard]] Work all_reduce(HostBuffer data, CollectiveOptions options = {});
  /// Collective. `full` holds size()*S elements; this rank receives the reduced chunk
  /// [rank*S, (rank+1)*S) in `shard` (S elements, may alias that chunk of `full`).
  /// `full` is scratch: its contents are unspecified after completion.
  [[nodiscard]] Work reduce_scatter(HostBuffer full, HostBuffer shard, CollectiveOptions options = {});
  /// Collective. Every rank's `shard` (S elements) lands at [rank*S, (rank+1)*S) of every
  /// rank's `full` (size()*S elements). `shard` may alias that chunk of `full`.
  /// Only options.algorithm is read.
  [[nodiscard]] Work all_gather(HostBuffer shard, HostBuffer full, CollectiveOptions options = {});

  template <class T>
  [[nodiscard]] Work all_reduce(std::span<T> data, CollectiveOptions options = {}) {
    return all_reduce(HostBuffer::of(data), options);
  }
  template <class T>
  [[nodiscard]] Work reduce_scatter(std::span<T> full, std::span<T> shard, CollectiveOptions options = {}) {
    return reduce_scatter(HostBuffer::of(full), HostBuffer::of(shard), options);
  }
  template <class T>
  [[nodiscard]] Work all_gather(std::span<const T> shard, std::span<T> full, CollectiveOptions options = {}) {
    return all_gather(HostBuffer::of(shard), HostBuffer::of(full), options);
  }
  template <class T>
  [[nodiscard]] Work all_gather(std::span<T> shard, std::span<T> full, CollectiveOptions options = {}) {
    return all_gather(HostBuffer::of(shard), HostBuffer::of(full), options);
  }

 private:
  explicit Communicator(std::shared_ptr<detail::CommContext> context);
  detail::CommContext& context() const;
  void verify_same_call(int kind, const HostBuffer& buffer, CollectiveOptions options) const;
  void all_reduce_scalars(void* data, std::size_t count, MPI_Datatype type, const char* type_name, ScalarOp op,
                          std::string_view label) const;
  Work submit(const char* op, const HostBuffer& buffer, std::string_view label, std::unique_ptr<detail::PendingOp> pending) const;

  std::shared_ptr<detail::CommContext> context_;
};

}  // namespace zs
