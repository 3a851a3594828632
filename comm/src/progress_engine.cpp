#include "progress_engine.hpp"

#include <algorithm>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

ProgressEngine::~ProgressEngine() {
  for (auto& slot : in_flight_) abandon(*slot);
}

void ProgressEngine::advance(OpSlot& slot) {
  if (slot.done) return;
  try {
    if (slot.op->progress()) {
      slot.done = true;
      slot.op.reset();  // returns scratch and request memory now, not when the Work dies
    }
  } catch (...) {
    slot.error = std::current_exception();
    slot.done = true;
    slot.op->abandon();
    slot.op.reset();
  }
}

std::shared_ptr<OpSlot> ProgressEngine::submit(std::unique_ptr<PendingOp> op) {
  auto slot = std::make_shared<OpSlot>();
  slot->op = std::move(op);
  advance(*slot);
  if (!slot->done) in_flight_.push_back(slot);
  return slot;
}

void ProgressEngine::progress_all() {
  for (auto& slot : in_flight_) advance(*slot);
  std::erase_if(in_flight_, [](const std::shared_ptr<OpSlot>& s) { return s->done; });
}

bool ProgressEngine::block_until_some_request_completes() {
  awaited_.clear();
  for (auto& slot : in_flight_)
    if (slot->op) slot->op->outstanding_requests(awaited_);
  if (awaited_.empty()) return false;
  requests_.resize(awaited_.size());
  for (std::size_t i = 0; i < awaited_.size(); ++i) requests_[i] = *awaited_[i];
  completed_.resize(awaited_.size());
  int count = 0;
  const int code = MPI_Waitsome(static_cast<int>(requests_.size()), requests_.data(), &count, completed_.data(),
                                MPI_STATUSES_IGNORE);
  // Completed requests come back as MPI_REQUEST_NULL: hand every handle back to its owner
  // before reporting any error, so no owner keeps a freed handle.
  for (std::size_t i = 0; i < awaited_.size(); ++i) *awaited_[i] = requests_[i];
  ZS_MPI_CHECK(code);
  return true;
}

void ProgressEngine::abandon(OpSlot& slot) noexcept {
  if (slot.op) {
    slot.op->abandon();
    slot.op.reset();
  }
  slot.done = true;
  std::erase_if(in_flight_, [&](const std::shared_ptr<OpSlot>& s) { return s.get() == &slot; });
}

}  // namespace zs::detail
