#include "shard_groups.hpp"

#include <cstdint>
#include <string>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

constexpr const char* kKey = "zero_optimization.shard_group_size";

std::string divisors_of(int n) {
  std::string text;
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) text += (text.empty() ? "" : ", ") + std::to_string(d);
  return text;
}

// The ranks of this rank's node, checked to be the same count on every node and consecutive
// world ranks (a group of consecutive ranks is then exactly a node).
int node_group_size(const Communicator& world) {
  const Communicator node = world.split_shared_node();
  // Consecutive: every rank of the node computes the same first world rank.
  const std::int64_t first = world.rank() - node.rank();
  const bool consecutive = range_across_ranks(std::span<const std::int64_t>(&first, 1), node)[0].agreed();
  const std::int64_t facts[2] = {node.size(), consecutive ? 0 : 1};
  const auto ranges = range_across_ranks(facts, world);
  if (!ranges[0].agreed())
    throw InvalidArgument(rank_and_host() + ": " + kKey + " = 0 shards within each node, but nodes hold different "
                          "numbers of ranks (" + std::to_string(ranges[0].low) + " to " + std::to_string(ranges[0].high) +
                          "): start the same number of ranks on every node (mpirun --map-by ppr:K:node) or give " +
                          kKey + " a number of ranks that divides the world size " + std::to_string(world.size()));
  if (ranges[1].high != 0)
    throw InvalidArgument(rank_and_host() + ": " + kKey + " = 0 shards within each node, but some node's ranks are not "
                          "consecutive world ranks (a round-robin mapping): map ranks by node (mpirun --map-by "
                          "ppr:K:node or --map-by core) or give " + kKey + " a number of ranks");
  return node.size();
}

}  // namespace

int resolve_shard_group_size(const EngineConfig& config, const Communicator& world) {
  const int n = world.size();
  // Agreed before anything depends on it: ranks holding different sizes would split
  // differently and hang in their first collective.
  const std::int64_t asked = config.shard_group_size;
  const RangeAcrossRanks range = range_across_ranks(std::span<const std::int64_t>(&asked, 1), world)[0];
  if (!range.agreed())
    throw InvalidArgument(rank_and_host() + ": ranks were given different " + kKey + " (this rank: " +
                          std::to_string(asked) + "; across ranks " + std::to_string(range.low) + " to " +
                          std::to_string(range.high) + "): give every rank the same value");
  if (asked == -1) return n;
  const int size = asked == 0 ? node_group_size(world) : static_cast<int>(asked);
  // Checked at stage 0 too, which ignores it: a size that cannot work is a mistake either way.
  if (asked < -1 || size > n || n % size != 0)
    throw InvalidArgument(rank_and_host() + ": " + kKey + " = " + std::to_string(asked) + " does not divide the world size " +
                          std::to_string(n) + " into groups of equal size: use one of " + divisors_of(n) +
                          " (ranks per group), 0 (the ranks of one node) or -1 (flat ZeRO over all ranks)");
  // Stage 0 holds every model state whole: there is nothing to shard within a group.
  return config.stage == 0 ? n : size;
}

ShardGroups::ShardGroups(const EngineConfig& config, Communicator& world) : world_(world) {
  const int size = resolve_shard_group_size(config, world);
  shard_bytes_before_ = world.bytes_sent();
  if (size == world.size()) return;
  shard_bytes_before_ = 0;
  const int r = world.rank();
  // Shard groups are consecutive ranks (a node under a by-node mapping: gathers and
  // reduce-scatters stay inside it); replica groups take one rank of each.
  shard_ = std::make_unique<Communicator>(world.split(r / size, r));
  replica_ = std::make_unique<Communicator>(world.split(r % size, r));
}

void ShardGroups::progress() const {
  shard().progress();
  if (replica_) replica_->progress();
}

}  // namespace zs::detail
