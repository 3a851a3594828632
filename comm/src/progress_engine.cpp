#include "progress_engine.hpp"

#include <algorithm>

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

void ProgressEngine::abandon(OpSlot& slot) noexcept {
  if (slot.op) {
    slot.op->abandon();
    slot.op.reset();
  }
  slot.done = true;
  std::erase_if(in_flight_, [&](const std::shared_ptr<OpSlot>& s) { return s.get() == &slot; });
}

}  // namespace zs::detail
