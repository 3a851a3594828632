#pragma once
// Options for communicators and collectives. New fields get defaults so callers never break.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace zs {

enum class ReduceOp { sum, average };

/// The algorithm families behind the collectives:
///  - ring: our ring over nonblocking point-to-point, pipelined in segments. Deterministic
///    summation order for a given world size; never calls MPI's collectives.
///  - recursive_doubling: all_gather only; log2(n) exchanges instead of n-1, for
///    power-of-two world sizes (other sizes use the ring).
///  - mpi:  MPI's own nonblocking collectives (MPI_Ireduce_scatter_block, MPI_Iallgather).
///  - automatic: all_gather only; below CommunicatorConfig::all_gather_crossover_bytes
///    recursive doubling (the ring on other world sizes), at and above it MPI's own
///    all-gather (the ring inside all_reduce, whose gather stage cannot be an MPI collective),
///    except on a communicator whose ranks span several shared-memory nodes
///    (MPI_COMM_TYPE_SHARED): there the ring, which sends fewer bytes over the links.
///    The choices the benchmark showed fastest (docs/collectives.md; across nodes
///    docs/performance.md, "Across a link").
enum class Algorithm { ring, recursive_doubling, mpi, automatic };

std::string to_string(Algorithm a);
std::string to_string(ReduceOp op);
/// "ring", "recursive_doubling", "mpi" or "automatic"; throws InvalidArgument naming the bad value otherwise.
Algorithm parse_algorithm(const std::string& name);

struct CommunicatorConfig {
  // Defaults come from bench/collective_bench on the development machine (docs/collectives.md):
  // the ring beats MPI_Reduce_scatter_block ~10x; for all-gather see the table.
  Algorithm reduce_scatter = Algorithm::ring;  // ring or mpi
  Algorithm all_gather = Algorithm::automatic;
  /// Full-buffer size where `automatic` all-gathers switch from recursive doubling to MPI's.
  std::size_t all_gather_crossover_bytes = std::size_t{1} << 20;
  /// Pipelining unit of the ring reduce-scatter: each step's chunk moves in segments of this
  /// many bytes so the reduction of one segment overlaps the transfer of the next.
  std::size_t segment_bytes = std::size_t{1} << 20;
  /// Receive segments posted ahead per ring reduce-scatter (its scratch is this many segments).
  int receive_window = 4;
  /// Pipelining unit of the ring all-gather. It has no arithmetic to overlap, so segments only
  /// let a rank forward the start of a chunk before its end arrives (n > 2); small segments
  /// cost more per-message overhead than they save (docs/collectives.md). All its receives
  /// are posted at once, straight into the output: no scratch.
  std::size_t all_gather_segment_bytes = std::size_t{16} << 20;
  /// Before each collective, check with one small all-reduce that every rank passed the same
  /// kind, element count, dtype and op; all ranks throw InvalidArgument if not. Costs one
  /// latency per collective: meant for tests and debugging.
  bool verify_across_ranks = false;
  /// Seconds a wait on a collective may last before it ends with a hang report
  /// (TimeoutError naming the ranks that have not reached the collective and what each was
  /// doing; docs/architecture.md, Hang diagnosis). 0 = wait forever. The torch.distributed
  /// init_process_group(timeout) of this library; generous by default, since a slow step is
  /// not a hang.
  double timeout_s = 600;
  /// Collectives each communicator keeps in its flight recorder (flight_recorder.hpp), shown
  /// in hang reports; NCCL's TORCH_NCCL_TRACE_BUFFER_SIZE.
  int flight_recorder_entries = 32;
};

struct CollectiveOptions {
  ReduceOp op = ReduceOp::sum;
  /// Overrides the communicator's configured algorithm for this call.
  std::optional<Algorithm> algorithm;
  /// Names the collective in the flight recorder, hang reports and the timeline ("unit 3
  /// gather", "bucket 1"); copied (47 characters at most), so it may point at a temporary.
  std::string_view label;
};

/// Default options that name the collective (see CollectiveOptions::label).
inline CollectiveOptions labelled(std::string_view label) {
  CollectiveOptions options;
  options.label = label;
  return options;
}

}  // namespace zs
