#pragma once
// Internal: everything a Communicator and its Works share. Member order is destruction order
// reversed: collectives in flight (engine) die before the scratch they borrow and before the
// MPI communicator they use.

#include <mpi.h>

#include <memory>
#include <vector>

#include "peer_board.hpp"
#include "progress_engine.hpp"
#include "shared_memory_channel.hpp"
#include "scratch_pool.hpp"
#include "zeroshard/comm/collective_options.hpp"
#include "zeroshard/comm/flight_recorder.hpp"

namespace zs::detail {

/// CommunicatorConfig::shared_memory_slot_bytes, or its automatic value for `ranks` ranks.
std::size_t shared_memory_slot_bytes(const CommunicatorConfig& config, int ranks);

/// Throws InvalidArgument if `algorithm` cannot reduce (recursive_doubling only gathers).
void require_reduce_scatter_algorithm(Algorithm algorithm, const char* where);

struct CommContext {
  CommContext(MPI_Comm parent, CommunicatorConfig config);
  ~CommContext();
  CommContext(const CommContext&) = delete;
  CommContext& operator=(const CommContext&) = delete;

  /// A tag no other collective in flight on this communicator uses. Every rank issues
  /// collectives in the same order, so every rank draws the same tag for the same collective.
  int next_tag();

  MPI_Comm comm = MPI_COMM_NULL;
  int rank = 0;
  int size = 1;
  int tag_upper_bound = 32767;
  /// world_ranks[r]: MPI_COMM_WORLD's rank of this communicator's rank r (reports name ranks
  /// by it: under hybrid sharding a shard group's rank 0 is not the job's rank 0).
  std::vector<int> world_ranks;
  /// Whether the ranks live on more than one shared-memory node (MPI_COMM_TYPE_SHARED): there
  /// `automatic` all-gathers take the ring, which sends less over the links (resolve_gather).
  bool spans_nodes = false;
  int tag_counter = 0;
  CommunicatorConfig config;
  FlightRecorder recorder;
  std::unique_ptr<PeerBoard> peers;  // when timeout_s > 0 and there are peers
  ScratchPool scratch;
  /// The shared-memory collectives' channel, made with the communicator (collectively: made
  /// later, inside a collective's issue, a rank that skipped that collective would leave the
  /// others blocked in the set-up, beyond any timeout). Null on a one-rank communicator, one
  /// whose ranks span nodes, or where /dev/shm could not be reserved on some rank (then on
  /// every rank).
  SharedMemoryChannel* shared_memory_channel() const { return shared_memory.get(); }
  std::unique_ptr<SharedMemoryChannel> shared_memory;
  ProgressEngine engine{recorder};
  std::int64_t bytes_sent = 0;  // Communicator::bytes_sent

  /// Records a new collective (flight recorder, peer board); returns its sequence number.
  std::uint64_t issue(const char* op, std::int64_t count, DType dtype, std::string_view label);
};

}  // namespace zs::detail
