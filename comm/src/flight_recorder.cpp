#include "zeroshard/comm/flight_recorder.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>

#include "zeroshard/error.hpp"
#include "zeroshard/timeline.hpp"

namespace zs {

std::string to_string(CollectiveState state) {
  switch (state) {
    case CollectiveState::issued: return "issued";
    case CollectiveState::completed: return "completed";
    case CollectiveState::failed: return "failed";
    case CollectiveState::abandoned: return "abandoned";
  }
  return "?";
}

std::int64_t monotonic_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string_view CollectiveRecord::label_view() const { return {label.data(), std::strlen(label.data())}; }

std::string CollectiveRecord::describe(std::int64_t now_ns) const {
  char line[256];
  const double age_ms = static_cast<double>((finished_ns ? finished_ns : now_ns) - issued_ns) / 1e6;
  std::snprintf(line, sizeof line, "#%llu %s %lld B %s%s%s%s %s %s %.3f ms", static_cast<unsigned long long>(sequence),
                op, static_cast<long long>(bytes), to_string(dtype).c_str(), label[0] ? " '" : "", label.data(),
                label[0] ? "'" : "", to_string(state).c_str(), state == CollectiveState::issued ? "for" : "after",
                age_ms);
  return line;
}

FlightRecorder::FlightRecorder(int capacity) {
  if (capacity < 1 || capacity > (1 << 20))
    throw InvalidArgument("communication.flight_recorder_entries = " + std::to_string(capacity) +
                          " is out of range: use 1 .. 1048576 (default 32)");
  ring_.resize(static_cast<std::size_t>(capacity));
}

std::uint64_t FlightRecorder::issue(const char* op, std::int64_t count, DType dtype, std::string_view label) {
  CollectiveRecord& r = ring_[next_ % ring_.size()];
  r.sequence = next_;
  r.op = op;
  r.count = count;
  r.dtype = dtype;
  r.bytes = count * static_cast<std::int64_t>(size_of(dtype));
  const std::size_t n = std::min(label.size(), r.label.size() - 1);
  std::copy_n(label.data(), n, r.label.data());  // not memcpy: an empty label's data() may be null
  r.label[n] = '\0';
  r.state = CollectiveState::issued;
  r.issued_ns = monotonic_ns();
  r.finished_ns = 0;
  return next_++;
}

const CollectiveRecord* FlightRecorder::find(std::uint64_t sequence) const {
  if (sequence >= next_) return nullptr;
  const CollectiveRecord& r = ring_[sequence % ring_.size()];
  return r.sequence == sequence ? &r : nullptr;
}

void FlightRecorder::finish(std::uint64_t sequence, CollectiveState state) {
  auto* r = const_cast<CollectiveRecord*>(find(sequence));
  if (!r || r->state != CollectiveState::issued) return;
  r->state = state;
  r->finished_ns = monotonic_ns();
  // The profiler's collective spans, issue to completion (same clock as the timeline).
  if (timeline::enabled())
    timeline::record(timeline::Kind::collective, r->op, r->label_view(), r->issued_ns, r->finished_ns,
                     static_cast<std::int64_t>(sequence), r->bytes);
}

std::vector<CollectiveRecord> FlightRecorder::records() const {
  std::vector<CollectiveRecord> out;
  const std::uint64_t held = std::min<std::uint64_t>(next_, ring_.size());
  for (std::uint64_t s = next_ - held; s < next_; ++s) out.push_back(ring_[s % ring_.size()]);
  return out;
}

}  // namespace zs
