#pragma once
// The collective flight recorder (NCCL's Flight Recorder, TORCH_NCCL_TRACE_BUFFER_SIZE): each
// communicator keeps its last N collectives in a ring, so that a timed-out wait can say what
// this rank issued, what completed and what it was waiting on. Fixed storage, allocated once:
// recording a collective copies a few words and a short label, never allocates.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "zeroshard/dtype.hpp"

namespace zs {

/// The state of a recorded collective.
enum class CollectiveState : std::uint8_t { issued, completed, failed, abandoned };
std::string to_string(CollectiveState state);

/// One collective as recorded. Times are steady_clock nanoseconds (CLOCK_MONOTONIC: comparable
/// between processes of one node); 0 = not yet.
struct CollectiveRecord {
  /// The collective's sequence number on its communicator: the Nth collective every rank
  /// issues on it is #N on every rank (starting at 0), whatever the algorithm or tags.
  std::uint64_t sequence = 0;
  const char* op = "";      ///< "all_reduce", "reduce_scatter", "all_gather", "all_reduce_scalars", "barrier"
  std::int64_t count = 0;   ///< elements of the full buffer (all_reduce: the buffer)
  DType dtype = DType::float32;
  std::int64_t bytes = 0;   ///< count x the dtype's size
  std::array<char, 48> label{};  ///< who issued it ("unit 3 gather", "bucket 1"); empty if not named
  CollectiveState state = CollectiveState::issued;
  std::int64_t issued_ns = 0;
  std::int64_t finished_ns = 0;  ///< completed, failed or abandoned

  std::string_view label_view() const;
  /// One line: "#12 all_gather 4096 B float32 'unit 3 gather' completed after 0.25 ms".
  std::string describe(std::int64_t now_ns) const;
};

/// The ring of the last `capacity` collectives of one communicator. Single-threaded, like the
/// communicator that owns it.
class FlightRecorder {
 public:
  /// `capacity` >= 1 entries (CommunicatorConfig::flight_recorder_entries); throws
  /// InvalidArgument otherwise.
  explicit FlightRecorder(int capacity);

  /// Records a new collective as issued now and returns its sequence number (0, 1, 2, ...).
  /// The label is truncated to 47 characters.
  std::uint64_t issue(const char* op, std::int64_t count, DType dtype, std::string_view label);
  /// Marks collective `sequence` finished now (completed, failed or abandoned); a no-op if the
  /// ring has already overwritten it.
  void finish(std::uint64_t sequence, CollectiveState state);
  /// The record of `sequence`, or nullptr when it was overwritten or never issued.
  const CollectiveRecord* find(std::uint64_t sequence) const;
  /// The sequence number the next collective will get (= collectives issued so far).
  std::uint64_t next_sequence() const { return next_; }
  /// The records still held, oldest first (allocates: for reports and tests, not the hot path).
  std::vector<CollectiveRecord> records() const;
  int capacity() const { return static_cast<int>(ring_.size()); }

 private:
  std::vector<CollectiveRecord> ring_;
  std::uint64_t next_ = 0;
};

/// steady_clock now, in nanoseconds.
std::int64_t monotonic_ns();

}  // namespace zs
