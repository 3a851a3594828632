#pragma once
// The handle of a nonblocking collective (the c10d Work / MPI request contract).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace zs {

namespace detail {
struct CommContext;
struct OpSlot;
}  // namespace detail

/// Move-only handle of one collective in flight.
///
/// test() and wait() advance *every* collective in flight on the same communicator, in issue
/// order, not only this one: a rank waiting on a later collective still serves the earlier ones
/// its peers may be waiting on. The buffers passed to the collective must stay alive and
/// untouched until it completes.
///
/// Destroying an incomplete Work abandons it (its MPI requests are cancelled or freed) without
/// blocking; the communicator should not be used for collectives afterwards, because its peers
/// may still expect the abandoned messages.
class [[nodiscard]] Work {
 public:
  Work() = default;  ///< an empty handle; test() is true at once
  ~Work();
  Work(Work&& other) noexcept = default;
  Work& operator=(Work&& other) noexcept;
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;

  /// Advances communication; true when this collective is complete. Rethrows its failure.
  bool test();
  /// Blocks until complete; rethrows the collective's failure (an MpiError, say). With the
  /// communicator's timeout_s > 0 (the default), a wait longer than that throws TimeoutError
  /// with a hang report: the collective's sequence number, which ranks of this node have not
  /// issued it and what each was doing, and this rank's flight recorder; the collective is then
  /// abandoned (see the class comment).
  void wait();
  /// As wait(), with `timeout` instead of the communicator's timeout_s.
  void wait(std::chrono::milliseconds timeout);

 private:
  friend class Communicator;
  Work(std::shared_ptr<detail::CommContext> context, std::shared_ptr<detail::OpSlot> slot);
  void abandon() noexcept;
  /// `limit_s`: the limit, for the report; `configured`: it is communication.timeout_s.
  void wait_until(std::int64_t deadline_ns, double limit_s, bool configured);

  std::shared_ptr<detail::CommContext> context_;
  std::shared_ptr<detail::OpSlot> slot_;
};

}  // namespace zs
