#pragma once
// Internal: advances every collective in flight on one communicator, in issue order.
// Single-threaded by contract: the owner calls it from one thread at a time.

#include <deque>
#include <memory>

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
  /// Cancels one collective and drops it from the queue.
  void abandon(OpSlot& slot) noexcept;

 private:
  static void advance(OpSlot& slot);
  std::deque<std::shared_ptr<OpSlot>> in_flight_;
};

}  // namespace zs::detail
