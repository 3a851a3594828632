#pragma once
// Internal: the engine's timeline profiler (profiler.enabled). Records the steps of
// profiler.steps with the process's timeline (zeroshard/timeline.hpp), then merges every
// rank's events into one Chrome trace on rank 0 (trace_writer.hpp) with aligned clocks.
//
// Clock alignment: rank 0 exchanges 8 ping-pongs with every other rank when recording starts
// and keeps, per rank, the exchange with the shortest round trip: offset = (t0 + t1) / 2 - tr
// (Cristian's algorithm), so the error is at most half that round trip (microseconds within a
// node). Not MPI_Wtime after a barrier: ranks leave a barrier at different times (tens of
// microseconds, milliseconds when ranks share cores), and Open MPI's MPI_WTIME_IS_GLOBAL is
// false, so that would be neither aligned nor bounded.

#include <cstdint>
#include <string>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs::detail {

class Profiler {
 public:
  /// Collective over `comm` (duplicates it: the profiler's messages never mix with the
  /// engine's collectives).
  Profiler(const ProfilerConfig& config, const Communicator& comm);

  /// Collective, at every forward: starts recording (clock alignment first) when `step` is
  /// the first step of the range.
  void before_forward(std::int64_t step);
  /// Collective, after every accumulation boundary: `steps_done` boundaries so far; writes the
  /// trace when the range is over.
  void after_step(std::int64_t steps_done);
  /// Collective: writes the trace now if recording (a run that ends inside the range).
  void finish();
  /// The file rank 0 wrote ("" before a trace is written; on every rank).
  const std::string& written() const { return written_; }

 private:
  void align_clocks();
  void write();

  ProfilerConfig config_;
  Communicator comm_;
  bool recording_ = false;
  bool done_ = false;  // one range per run
  std::int64_t first_recorded_ = 0;
  std::int64_t offset_ns_ = 0, origin_ns_ = 0;
  std::string written_;
};

/// The file a profiler with `output` writes: output itself if it ends in ".json", else output + ".json".
std::string trace_path(const std::string& output);

}  // namespace zs::detail
