#pragma once
// The profiler's output: Chrome trace-event JSON (the "JSON Object Format" of the Trace Event
// Format), which Perfetto (ui.perfetto.dev) and chrome://tracing open. One process track per
// rank, one thread track per thread that recorded (the training thread, the async checkpoint
// writer), spans as complete events, collectives as async spans from issue to completion.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "zeroshard/timeline.hpp"

namespace zs::runtime {

/// One rank's recorded timeline, ready to be written.
struct RankTimeline {
  int rank = 0;
  std::string host;
  std::vector<timeline::Event> events;
  std::vector<std::string> thread_names;  ///< by thread id; a missing one is "thread N"
  /// Nanoseconds to add to this rank's steady_clock to read rank 0's (clock alignment).
  std::int64_t clock_offset_ns = 0;
  /// Rank 0's steady_clock time (ns) that becomes time 0 of the trace.
  std::int64_t origin_ns = 0;
};

/// The events of one rank as a JSON array of Chrome trace events: metadata naming process
/// `rank` "rank R (host)" and its threads; each span a complete event ("ph": "X", named
/// "<name> <label>", e.g. "forward unit 3", category "compute", or "wait" / "checkpoint");
/// each collective an async pair ("b"/"e", category "collective", named "<op> <label>", args
/// sequence and bytes). Times ("ts", "dur") in microseconds since origin_ns on rank 0's clock.
std::string chrome_trace_events(const RankTimeline& rank);

/// One trace document, {"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}},
/// from ranks' arrays (chrome_trace_events), with `notes` (key, text) in otherData. Throws
/// InvalidArgument if an array is not a JSON array.
std::string merge_chrome_traces(const std::vector<std::string>& rank_event_arrays,
                                const std::vector<std::pair<std::string, std::string>>& notes);

}  // namespace zs::runtime
