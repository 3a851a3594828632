#include "zeroshard/timeline.hpp"

#include <chrono>
#include <mutex>
#include <string>

namespace zs::timeline {

namespace detail {
std::atomic<bool> recording{false};
}

namespace {

struct Recorder {
  std::mutex mutex;
  std::vector<Event> events;  // capacity reserved by start(); never grown while recording
  std::size_t dropped = 0;
  std::vector<const char*> thread_names;
};

Recorder& recorder() {
  static Recorder r;
  return r;
}

std::atomic<int> next_thread_id{0};
thread_local int thread_id = -1;

}  // namespace

std::int64_t now_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int this_thread_id() noexcept {
  if (thread_id < 0) thread_id = next_thread_id.fetch_add(1);
  return thread_id;
}

void name_this_thread(const char* name) noexcept {
  const int id = this_thread_id();
  Recorder& r = recorder();
  std::lock_guard lock(r.mutex);
  try {
    if (r.thread_names.size() <= static_cast<std::size_t>(id)) r.thread_names.resize(static_cast<std::size_t>(id) + 1, nullptr);
    r.thread_names[static_cast<std::size_t>(id)] = name;
  } catch (...) {
    // Out of memory naming a thread: the trace shows "thread N" instead.
  }
}

std::string thread_name(int thread) {
  Recorder& r = recorder();
  std::lock_guard lock(r.mutex);
  if (thread >= 0 && static_cast<std::size_t>(thread) < r.thread_names.size() && r.thread_names[static_cast<std::size_t>(thread)])
    return r.thread_names[static_cast<std::size_t>(thread)];
  return "thread " + std::to_string(thread);
}

void start(std::size_t capacity) {
  Recorder& r = recorder();
  std::lock_guard lock(r.mutex);
  r.events.clear();
  r.events.reserve(capacity);
  r.dropped = 0;
  detail::recording.store(true, std::memory_order_relaxed);
}

std::vector<Event> stop(std::size_t* dropped) {
  Recorder& r = recorder();
  std::lock_guard lock(r.mutex);
  detail::recording.store(false, std::memory_order_relaxed);
  if (dropped) *dropped = r.dropped;
  std::vector<Event> out;
  out.swap(r.events);
  return out;
}

void pause() noexcept { detail::recording.store(false, std::memory_order_relaxed); }
void resume() noexcept { detail::recording.store(true, std::memory_order_relaxed); }

void record(Kind kind, const char* name, std::string_view label, std::int64_t begin_ns, std::int64_t end_ns,
            std::int64_t sequence, std::int64_t bytes) noexcept {
  if (!enabled()) return;
  Event e;
  e.kind = kind;
  e.name = name;
  const std::size_t n = label.size() < sizeof e.label ? label.size() : sizeof e.label - 1;
  label.copy(e.label, n);
  e.label[n] = '\0';
  e.thread = this_thread_id();
  e.begin_ns = begin_ns;
  e.end_ns = end_ns;
  e.sequence = sequence;
  e.bytes = bytes;
  Recorder& r = recorder();
  std::lock_guard lock(r.mutex);
  if (!detail::recording.load(std::memory_order_relaxed)) return;
  if (r.events.size() < r.events.capacity()) r.events.push_back(e);  // never reallocates
  else ++r.dropped;
}

}  // namespace zs::timeline
