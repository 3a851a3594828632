#include "progress_engine.hpp"

#include <algorithm>
#include <thread>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

ProgressEngine::~ProgressEngine() {
  while (!in_flight_.empty()) abandon(*in_flight_.front());  // abandon() erases it
}

void ProgressEngine::advance(OpSlot& slot) {
  if (slot.done) return;
  try {
    if (slot.op->progress()) {
      slot.done = true;
      slot.op.reset();  // returns scratch and request memory now, not when the Work dies
      recorder_.finish(slot.sequence, CollectiveState::completed);
    }
  } catch (const MpiError& e) {
    // Name the collective: the MPI call's own text says which call, not which collective.
    try {
      throw_collective_error(e.code(), slot.op->describe() + " (" + e.what() + ")");
    } catch (...) {
      slot.error = std::current_exception();
    }
    slot.done = true;
    slot.op->abandon();
    slot.op.reset();
    recorder_.finish(slot.sequence, CollectiveState::failed);
  } catch (...) {
    slot.error = std::current_exception();
    slot.done = true;
    slot.op->abandon();
    slot.op.reset();
    recorder_.finish(slot.sequence, CollectiveState::failed);
  }
}

std::shared_ptr<OpSlot> ProgressEngine::submit(std::unique_ptr<PendingOp> op, std::uint64_t sequence) {
  auto slot = std::make_shared<OpSlot>();
  slot->op = std::move(op);
  slot->sequence = sequence;
  advance(*slot);
  if (!slot->done) in_flight_.push_back(slot);
  return slot;
}

void ProgressEngine::progress_all() {
  for (auto& slot : in_flight_) advance(*slot);
  std::erase_if(in_flight_, [](const std::shared_ptr<OpSlot>& s) { return s->done; });
}

bool ProgressEngine::collect_awaited() {
  awaited_.clear();
  owners_.clear();
  // A polled collective (shared memory) moves only when progress() runs: sleeping in MPI
  // until some other request completes could wait on a peer that waits on this one.
  for (auto& slot : in_flight_)
    if (slot->op && slot->op->polled()) return false;
  for (auto& slot : in_flight_)
    if (slot->op) {
      slot->op->outstanding_requests(awaited_);
      owners_.resize(awaited_.size(), slot.get());
    }
  if (awaited_.empty()) return false;
  requests_.resize(awaited_.size());
  for (std::size_t i = 0; i < awaited_.size(); ++i) requests_[i] = *awaited_[i];
  completed_.resize(awaited_.size());
  statuses_.resize(awaited_.size());
  return true;
}

void ProgressEngine::settle(int code, int count) {
  // Completed requests come back as MPI_REQUEST_NULL: hand every handle back to its owner
  // before reporting any error, so no owner keeps a freed handle.
  for (std::size_t i = 0; i < awaited_.size(); ++i) *awaited_[i] = requests_[i];
  if (code == MPI_ERR_IN_STATUS) {
    // The error is in the failed request's status: name its collective and MPI's own reason
    // (MPI_ERR_IN_STATUS alone says only that some request failed).
    for (int k = 0; k < count; ++k) {
      const MPI_Status& status = statuses_[static_cast<std::size_t>(completed_[static_cast<std::size_t>(k)])];
      if (status.MPI_ERROR == MPI_SUCCESS) continue;
      const OpSlot& owner = *owners_[static_cast<std::size_t>(completed_[static_cast<std::size_t>(k)])];
      throw_collective_error(status.MPI_ERROR, owner.op ? owner.op->describe() : std::string("a collective"));
    }
  }
  ZS_MPI_CHECK(code);
}

bool ProgressEngine::block_until_some_request_completes() {
  if (!collect_awaited()) return false;
  int count = 0;
  const int code = MPI_Waitsome(static_cast<int>(requests_.size()), requests_.data(), &count, completed_.data(),
                                statuses_.data());
  settle(code, count);
  return true;
}

bool ProgressEngine::block_until_some_request_completes(std::int64_t deadline_ns) {
  if (!collect_awaited()) return false;
  const std::int64_t started = monotonic_ns();
  for (;;) {
    int count = 0;
    const int code = MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &count, completed_.data(),
                                  statuses_.data());
    if (code != MPI_SUCCESS || count > 0) {
      settle(code, count);
      return true;
    }
    const std::int64_t now = monotonic_ns();
    if (now >= deadline_ns) {
      settle(code, count);
      return false;
    }
    // Spin briefly (small messages complete within microseconds), then give the core away:
    // with more ranks than cores the peer holding our data needs it.
    if (now - started > 50'000) std::this_thread::yield();
  }
}

void throw_collective_error(int code, const std::string& collective) {
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  throw MpiError(code, rank_and_host() + ": " + collective + " failed: " + std::string(text, static_cast<std::size_t>(length)) +
                           ". A collective fails like this when ranks issue different collectives or sizes at the "
                           "same point (a rank that skipped a call, a branch on rank-local data). Set "
                           "communication.verify_across_ranks = true to check every collective's kind, size and "
                           "dtype across ranks before it starts and name the difference.");
}

void ProgressEngine::abandon(OpSlot& slot) noexcept {
  if (slot.op) {
    slot.op->abandon();
    slot.op.reset();
    recorder_.finish(slot.sequence, CollectiveState::abandoned);
  }
  slot.done = true;
  std::erase_if(in_flight_, [&](const std::shared_ptr<OpSlot>& s) { return s.get() == &slot; });
}

}  // namespace zs::detail
