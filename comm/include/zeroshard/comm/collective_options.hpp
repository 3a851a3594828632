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
///  - shared_memory: a communicator whose ranks all share one node (MPI_COMM_TYPE_SHARED):
///    ranks exchange data through a POSIX shared-memory segment in /dev/shm, plain memcpy
///    speed instead of MPI's single-copy transfers (2-3x faster on the development VM,
///    docs/collectives.md). Reduce-scatter sums in the ring's order: the same bits as `ring`.
///    A reduction that travels in 16 bits (a bfloat16/float16 wire) takes the ring. Throws
///    InvalidArgument at the call when the ranks span nodes or /dev/shm could not be mapped.
///  - automatic: shared_memory where the ranks share one node (and /dev/shm could be mapped
///    on all of them); otherwise, for all_gather, recursive doubling below
///    CommunicatorConfig::all_gather_crossover_bytes (the ring on other world sizes), and at
///    and above it MPI's own all-gather on one node, the ring across nodes (it sends fewer
///    bytes over the links); for reduce_scatter, the ring. The choices the benchmark showed
///    fastest (docs/collectives.md; across nodes docs/performance.md, "Across a link").
enum class Algorithm { ring, recursive_doubling, mpi, automatic, shared_memory };

std::string to_string(Algorithm a);
std::string to_string(ReduceOp op);
/// "ring", "recursive_doubling", "mpi", "automatic" or "shared_memory"; throws InvalidArgument naming the bad value otherwise.
Algorithm parse_algorithm(const std::string& name);

struct CommunicatorConfig {
  // Defaults come from bench/collective_bench on the development machine (docs/collectives.md):
  // the ring beats MPI_Reduce_scatter_block ~10x, shared memory beats the ring 1.7-2x on one
  // node; for all-gather see the table.
  Algorithm reduce_scatter = Algorithm::automatic;  // automatic, ring, mpi or shared_memory
  Algorithm all_gather = Algorithm::automatic;
  /// Full-buffer size where `automatic` all-gathers switch from recursive doubling to MPI's.
  std::size_t all_gather_crossover_bytes = std::size_t{1} << 20;
  /// Pipelining unit of the ring reduce-scatter: each step's chunk moves in segments of this
  /// many bytes so the reduction of one segment overlaps the transfer of the next.
  std::size_t segment_bytes = std::size_t{1} << 20;
  /// Bytes a rank publishes per round of a shared-memory collective (Algorithm::shared_memory).
  /// Each rank owns two such slots, so it runs up to 2x this ahead of its slowest peer: a
  /// stage-3 unit's gather published at issue completes when the peers next poll. Reserved in
  /// /dev/shm when the communicator is made (2 x this x ranks). 0 = 8 MiB / ranks (at least
  /// 64 KiB): 4 MiB at 2 ranks, 16 MiB of /dev/shm per communicator.
  std::size_t shared_memory_slot_bytes = 0;
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

  /// Throws InvalidArgument naming the first field out of range as `prefix` + its name (the
  /// engine passes "communication.", its config keys; the Communicator "CommunicatorConfig."),
  /// with the accepted range and the default. Not collective. The one range check both use.
  void validate(const std::string& prefix) const;
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
