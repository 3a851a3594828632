#include "comm_context.hpp"

#include <algorithm>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

std::size_t shared_memory_slot_bytes(const CommunicatorConfig& config, int ranks) {
  if (config.shared_memory_slot_bytes != 0) return config.shared_memory_slot_bytes;
  // Two slots per rank: 16 MiB of /dev/shm per communicator whatever its size, and room for
  // a rank's whole chunk of a 16 MiB bucket or unit to be published at once (4 MiB at 2 ranks).
  return std::max<std::size_t>(std::size_t{64} << 10, (std::size_t{8} << 20) / static_cast<std::size_t>(ranks));
}

void require_reduce_scatter_algorithm(Algorithm algorithm, const char* where) {
  if (algorithm == Algorithm::recursive_doubling)
    throw InvalidArgument(std::string(where) + " = " + to_string(algorithm) +
                          ": that is an all_gather algorithm; reduce_scatter and all_reduce take automatic, ring, "
                          "mpi or shared_memory");
}

CommContext::CommContext(MPI_Comm parent, CommunicatorConfig cfg)
    : config(cfg), recorder(cfg.flight_recorder_entries) {
  config.validate("CommunicatorConfig.");
  ZS_MPI_CHECK(MPI_Comm_dup(parent, &comm));
  // Without this, MPI's default handler aborts the job and every ZS_MPI_CHECK is dead code.
  ZS_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
  ZS_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  ZS_MPI_CHECK(MPI_Comm_size(comm, &size));
  void* value = nullptr;
  int found = 0;
  ZS_MPI_CHECK(MPI_Comm_get_attr(comm, MPI_TAG_UB, &value, &found));
  if (found) tag_upper_bound = *static_cast<int*>(value);
  world_ranks.resize(static_cast<std::size_t>(size));
  std::vector<int> own(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) own[static_cast<std::size_t>(r)] = r;
  MPI_Group group = MPI_GROUP_NULL, world_group = MPI_GROUP_NULL;
  ZS_MPI_CHECK(MPI_Comm_group(comm, &group));
  ZS_MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
  ZS_MPI_CHECK(MPI_Group_translate_ranks(group, size, own.data(), world_group, world_ranks.data()));
  ZS_MPI_CHECK(MPI_Group_free(&group));
  ZS_MPI_CHECK(MPI_Group_free(&world_group));
  if (size > 1) {
    // Every rank agrees: "my node holds fewer ranks than the world" is true on all or on none.
    MPI_Comm node = MPI_COMM_NULL;
    ZS_MPI_CHECK(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
    int node_size = size;
    ZS_MPI_CHECK(MPI_Comm_size(node, &node_size));
    ZS_MPI_CHECK(MPI_Comm_free(&node));
    spans_nodes = node_size < size;
    if (!spans_nodes) shared_memory = SharedMemoryChannel::open(comm, rank, size, shared_memory_slot_bytes(config, size));
  }
  if (config.timeout_s > 0 && size > 1) peers = std::make_unique<PeerBoard>(comm, rank, size);
}

std::uint64_t CommContext::issue(const char* op, std::int64_t count, DType dtype, std::string_view label) {
  const std::uint64_t sequence = recorder.issue(op, count, dtype, label);
  // What a bandwidth-optimal algorithm sends from this rank (Communicator::bytes_sent).
  const std::int64_t bytes = count * static_cast<std::int64_t>(size_of(dtype));
  const std::string_view name(op);
  if (name == "all_reduce") bytes_sent += 2 * bytes * (size - 1) / size;
  else if (name == "reduce_scatter" || name == "all_gather") bytes_sent += bytes * (size - 1) / size;
  if (peers)
    peers->issued(static_cast<std::int64_t>(sequence), op, count * static_cast<std::int64_t>(size_of(dtype)), label);
  return sequence;
}

CommContext::~CommContext() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (comm != MPI_COMM_NULL && !finalized) MPI_Comm_free(&comm);
}

// A point-to-point stage's tag: drawn in issue order (modulo MPI's tag bound), so every rank
// draws the same tag for the same stage. Not the collective's sequence number (#N in errors and
// the flight recorder): all_reduce draws two tags and MPI's own collectives none.
int CommContext::next_tag() {
  const int tag = tag_counter;
  tag_counter = (tag_counter + 1) % tag_upper_bound;
  return tag;
}

}  // namespace zs::detail
