#pragma once
// Internal: advances every collective in flight on one communicator, in issue order.
// Single-threaded by contract: the owner calls it from one thread at a time.

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "pending_op.hpp"

namespace zs::detail {

class ProgressEngine {
 public:
  ProgressEngine() = default;
  ~ProgressEngine();
  ProgressEngine(const ProgressEngine&) = delete;
  ProgressEngine& operator=(const ProgressEngine&) = delete;

  /// Takes ownership of a collective and gives it a first chance to progress.
  std::shared_ptr<OpSlot> submit(std::unique_ptr<PendingOp> op);
  /// One non-blocking pass over all collectives in flight; completed ones leave the queue.
  void progress_all();
  /// Blocks inside MPI (MPI_Waitsome) until a request of some collective in flight completes;
  /// false, without blocking, when none has a request outstanding. MPI's own blocking wait
  /// is far kinder than a polling loop when ranks share cores (docs/collectives.md).
  bool block_until_some_request_completes();
  /// Cancels one collective and drops it from the queue.
  void abandon(OpSlot& slot) noexcept;

 private:
  static void advance(OpSlot& slot);
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
