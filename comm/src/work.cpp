#include "zeroshard/comm/work.hpp"

#include <cstdio>
#include <string>
#include <thread>

#include "comm_context.hpp"
#include "hang_report.hpp"
#include "zeroshard/timeline.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

namespace {
// Between polls of a shared-memory collective (or a composite between stages) nothing calls
// into MPI, yet messages of other collectives keep arriving, some for communicators that a
// peer is about to free. One MPI_Iprobe drives Open MPI's progress engine so they are taken
// in while their communicator lives (fragments that land after it is freed are replayed into
// the next communicator that reuses its id: Open MPI 4.1's ob1 crashes there).
void let_mpi_progress(MPI_Comm comm) {
  int flag = 0;
  MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, comm, &flag, MPI_STATUS_IGNORE);
}
}  // namespace

Work::Work(std::shared_ptr<detail::CommContext> context, std::shared_ptr<detail::OpSlot> slot)
    : context_(std::move(context)), slot_(std::move(slot)) {}

Work::~Work() { abandon(); }

Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    abandon();
    context_ = std::move(other.context_);
    slot_ = std::move(other.slot_);
  }
  return *this;
}

void Work::abandon() noexcept {
  if (slot_ && !slot_->done && context_) context_->engine.abandon(*slot_);
  slot_.reset();
  context_.reset();
}

bool Work::test() {
  if (!slot_) return true;
  if (!slot_->done) context_->engine.progress_all();
  if (!slot_->done) return false;
  if (slot_->error) {
    auto error = slot_->error;
    slot_.reset();  // the failure is reported once
    context_.reset();
    std::rethrow_exception(error);
  }
  return true;
}

void Work::wait() {
  if (!slot_) return;
  const double timeout_s = context_->config.timeout_s;
  if (timeout_s <= 0) {
    timeline::Span span("wait", {}, static_cast<std::int64_t>(slot_->sequence));
    while (!test())
      if (!context_->engine.block_until_some_request_completes()) {
        let_mpi_progress(context_->comm);
        std::this_thread::yield();
      }
    return;
  }
  wait_until(monotonic_ns() + static_cast<std::int64_t>(timeout_s * 1e9), timeout_s, true);
}

void Work::wait(std::chrono::milliseconds timeout) {
  if (!slot_) return;
  wait_until(monotonic_ns() + std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count(),
             static_cast<double>(timeout.count()) / 1e3, false);
}

void Work::wait_until(std::int64_t deadline_ns, double limit_s, bool configured) {
  detail::CommContext& ctx = *context_;
  const std::uint64_t sequence = slot_->sequence;
  const CollectiveRecord* record = ctx.recorder.find(sequence);
  timeline::Span span("wait", record ? record->label_view() : std::string_view{}, static_cast<std::int64_t>(sequence));
  if (ctx.peers && record)
    ctx.peers->waiting(static_cast<std::int64_t>(sequence), record->op, record->bytes, record->label_view());
  struct NotWaiting {  // also when test() rethrows the collective's failure
    detail::CommContext& ctx;
    bool timed_out = false;
    ~NotWaiting() {
      if (!ctx.peers) return;
      if (timed_out) ctx.peers->gave_up();  // peers reporting at the same moment still see the wait
      else ctx.peers->not_waiting();
    }
  } not_waiting{ctx};
  while (!test()) {
    if (context_->engine.block_until_some_request_completes(deadline_ns)) continue;
    if (monotonic_ns() < deadline_ns) {
      // Nothing to sleep on in MPI: a polled collective, or a composite between its stages.
      let_mpi_progress(ctx.comm);
      std::this_thread::yield();
      continue;
    }
    not_waiting.timed_out = true;
    // Built only now (a wait allocates nothing): the report reads the peers' states.
    char limit[64];
    if (configured) std::snprintf(limit, sizeof limit, "communication.timeout_s = %g s", limit_s);
    else std::snprintf(limit, sizeof limit, "Work::wait(%g ms)", limit_s * 1e3);
    const std::string report =
        detail::hang_report(ctx, sequence, slot_->op ? slot_->op->describe() : std::string("a collective"), limit);
    abandon();
    throw TimeoutError(report);
  }
}

}  // namespace zs
