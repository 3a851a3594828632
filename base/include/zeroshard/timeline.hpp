#pragma once
// The process's timeline recorder (the profiler's event buffer; profiler.enabled): spans of
// work per thread (forward of a unit, a wait, the optimizer step, a checkpoint phase) and
// collectives from issue to completion, in steady_clock nanoseconds. The engine decides when
// to record (profiler.steps) and writes the events as a Chrome trace (runtime's
// trace_writer.hpp).
//
// Cost: while not recording, every entry point is one relaxed atomic load and a branch; no
// allocation, no clock read. While recording, an event is one clock read and a copy into a
// buffer reserved by start() (a mutex shared with the async checkpoint writer's thread, never
// contended in practice); events past the reserved capacity are counted and dropped, never
// allocated.

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

namespace zs::timeline {

enum class Kind : std::uint8_t {
  span,        ///< work on one thread, nested properly (Chrome "X" complete event)
  collective,  ///< a collective from issue to completion; overlaps others (async "b"/"e" pair)
};

struct Event {
  Kind kind = Kind::span;
  const char* name = "";  ///< static text: "forward", "wait", "all_gather"
  char label[48] = {};    ///< the unit, bucket or phase it concerns ("unit 3"); may be empty
  int thread = 0;         ///< small id of the recording thread (thread_name(thread) names it)
  std::int64_t begin_ns = 0, end_ns = 0;
  std::int64_t sequence = -1;  ///< a collective's sequence number (or the one a wait waits on); -1 none
  std::int64_t bytes = -1;     ///< bytes a collective moves; -1 none
};

namespace detail {
extern std::atomic<bool> recording;
}

/// True while events are being recorded (between start() and stop()).
inline bool enabled() noexcept { return detail::recording.load(std::memory_order_relaxed); }

/// Clears earlier events, reserves room for `capacity` events and starts recording.
void start(std::size_t capacity);
/// Stops recording and returns the events in the order they were recorded (spans when they
/// ended). `dropped` receives how many did not fit in the reserved capacity.
std::vector<Event> stop(std::size_t* dropped = nullptr);

/// Suspends and resumes recording, keeping the events so far (a benchmark interleaving
/// profiled and unprofiled steps in one process). Not for use while other threads record.
void pause() noexcept;
void resume() noexcept;

/// Records a finished span or collective (no-op while not recording). `label` is truncated to
/// 47 characters.
void record(Kind kind, const char* name, std::string_view label, std::int64_t begin_ns, std::int64_t end_ns,
            std::int64_t sequence = -1, std::int64_t bytes = -1) noexcept;

/// steady_clock now, in nanoseconds.
std::int64_t now_ns() noexcept;

/// Names the calling thread in traces ("main", "checkpoint writer"); the first call of a thread
/// that records gives it its id. Names are static strings.
void name_this_thread(const char* name) noexcept;
/// The name given to thread id `thread` ("thread N" if none).
std::string thread_name(int thread);
/// The calling thread's id (ids are 0, 1, 2, ... in order of first use).
int this_thread_id() noexcept;

/// A span from construction to destruction on the calling thread, recorded only if the
/// timeline was recording at construction. `name` must be a static string.
class Span {
 public:
  explicit Span(const char* name, std::string_view label = {}, std::int64_t sequence = -1) noexcept
      : name_(name), sequence_(sequence) {
    if (!enabled()) return;
    begin_ = now_ns();
    const std::size_t n = label.size() < sizeof label_ ? label.size() : sizeof label_ - 1;
    for (std::size_t i = 0; i < n; ++i) label_[i] = label[i];
    label_[n] = '\0';
  }
  ~Span() {
    if (begin_) record(Kind::span, name_, label_, begin_, now_ns(), sequence_);
  }
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

 private:
  const char* name_;
  std::int64_t sequence_;
  std::int64_t begin_ = 0;
  char label_[48];  // filled only when recording: a disabled span touches nothing
};

}  // namespace zs::timeline
