#include "zeroshard/comm/work.hpp"

#include <thread>

#include "comm_context.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

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

namespace {
// A wait with a deadline polls (MPI cannot block with a timeout). Spin briefly (small messages
// complete within microseconds and a yield costs a system call), then yield so that, with more
// ranks than cores, the peer holding our data gets to run.
void pause(std::chrono::steady_clock::time_point started) {
  if (std::chrono::steady_clock::now() - started > std::chrono::microseconds(50)) std::this_thread::yield();
}
}  // namespace

void Work::wait() {
  while (!test())
    if (!context_->engine.block_until_some_request_completes()) std::this_thread::yield();
}

void Work::wait(std::chrono::milliseconds timeout) {
  const auto started = std::chrono::steady_clock::now();
  const auto deadline = started + timeout;
  while (!test()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      std::string what = slot_->op->describe();  // built only now: describing costs a few allocations
      abandon();
      throw TimeoutError(rank_and_host() + ": " + what + " did not complete within " + std::to_string(timeout.count()) +
                         " ms; a peer may have skipped this collective or issued collectives in "
                         "a different order. The collective was abandoned: stop using this "
                         "communicator.");
    }
    pause(started);
  }
}

}  // namespace zs
