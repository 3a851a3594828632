#pragma once
// Internal: advances every collective in flight on one communicator, in issue order.
// Single-threaded by contract: the owner calls it from one thread at a time.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "pending_op.hpp"
#include "zeroshard/comm/flight_recorder.hpp"

namespace zs::detail {

class ProgressEngine {
 public:
  /// Finished collectives are marked in `recorder` (which outlives the engine).
  explicit ProgressEngine(FlightRecorder& recorder) : recorder_(recorder) {}
  ~ProgressEngine();
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  /// Takes ownership of collective number `sequence` and gives it a first chance to progress.
  std::shared_ptr<OpSlot> submit(std::unique_ptr<PendingOp> op, std::uint64_t sequence);
  /// One non-blocking pass over all collectives in flight; completed ones leave the queue.
  void progress_all();
  /// Blocks inside MPI (MPI_Waitsome) until a request of some collective in flight completes;
  /// false, without blocking, when none has a request outstanding. MPI's own blocking wait
  /// is far kinder than a polling loop when ranks share cores (docs/collectives.md). Also false
  /// while a polled collective (shared memory) is in flight: the caller yields and progresses.
  bool block_until_some_request_completes();
  /// As above, but gives up at `deadline_ns` (steady_clock nanoseconds): polls MPI_Testsome,
  /// yielding the core between polls like Open MPI's own blocking wait does when ranks share
  /// cores. Returns false when nothing is outstanding or the deadline passed.
  bool block_until_some_request_completes(std::int64_t deadline_ns);
  /// Cancels one collective and drops it from the queue.
  void abandon(OpSlot& slot) noexcept;

 private:
  void advance(OpSlot& slot);
  /// Collects the awaited requests of every collective in flight into requests_; false if none,
  /// or if a collective in flight is polled (then the caller polls too).
  bool collect_awaited();
  /// Hands the requests back to their owners and throws the failure of a failed one, if any.
  void settle(int code, int count);
  FlightRecorder& recorder_;
  std::deque<std::shared_ptr<OpSlot>> in_flight_;
  std::vector<MPI_Request*> awaited_;  // reused by block_until_some_request_completes
  std::vector<MPI_Request> requests_;
  std::vector<int> completed_;
  std::vector<MPI_Status> statuses_;
  std::vector<OpSlot*> owners_;  // owners_[i]: the collective awaited_[i] belongs to
};

/// Throws MpiError: `collective` failed with MPI error `code`, with MPI's message and what
/// usually causes it (mismatched collectives) and the setting that diagnoses it.
[[noreturn]] void throw_collective_error(int code, const std::string& collective);

}  // namespace zs::detail
