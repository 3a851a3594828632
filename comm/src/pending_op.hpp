#pragma once
// Internal: a collective in flight is a state machine that the progress engine advances.

#include <mpi.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <vector>

namespace zs::detail {

class PendingOp {
 public:
  virtual ~PendingOp() = default;
  /// Posts or advances MPI operations without blocking; true once the result is in the
  /// caller's buffers. Throws MpiError on a failed MPI call.
  virtual bool progress() = 0;
  /// Appends the addresses of the outstanding requests whose completion lets this collective
  /// move on (the next receive it will process, say, rather than every send in flight: fewer
  /// needless wake-ups). A blocking wait sleeps in MPI until one of them completes, so every
  /// state change of a collective must follow the completion of a request it lists.
  virtual void outstanding_requests(std::vector<MPI_Request*>& out) = 0;
  /// True for a collective that moves without MPI requests (shared memory): it advances only
  /// when progress() runs, so a wait must poll rather than sleep inside MPI.
  virtual bool polled() const { return false; }
  /// Cancels or frees every outstanding request; never blocks, never throws.
  virtual void abandon() noexcept = 0;
  /// One line for errors: "ring reduce_scatter of 1048576 float32 (tag 7)".
  virtual std::string describe() const = 0;
};

/// What a Work shares with the progress engine.
struct OpSlot {
  std::unique_ptr<PendingOp> op;  // released as soon as the collective completes or fails
  std::uint64_t sequence = 0;     // its number in the communicator's flight recorder
  bool done = false;
  std::exception_ptr error;
};

}  // namespace zs::detail
