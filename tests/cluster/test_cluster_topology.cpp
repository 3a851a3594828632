// The emulated cluster (scripts/zs-cluster) as ZeroShard sees it: run under
// `zs-cluster run -np N` with ZS_EXPECT_NODES and ZS_EXPECT_RANKS_PER_NODE set, the world splits
// by shared memory into that many nodes of that many ranks, each node with its own hostname,
// and our collectives across the link give exact sums. The reference is arithmetic on the
// ranks' indices, not the code under test.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "../support/mpi_test.hpp"
#include "zeroshard/comm/communicator.hpp"

namespace zs {
namespace {

class ClusterTopologyTest : public testing::MpiTest {};

int expected(const char* variable) {
  const char* text = std::getenv(variable);
  return text ? std::atoi(text) : 0;
}

std::string processor_name() {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  MPI_Get_processor_name(name, &length);
  return std::string(name, static_cast<std::size_t>(length));
}

TEST_F(ClusterTopologyTest, SharedMemorySplitGivesOneCommunicatorPerNode) {
  const int nodes = expected("ZS_EXPECT_NODES"), per_node = expected("ZS_EXPECT_RANKS_PER_NODE");
  if (nodes == 0 || per_node == 0) GTEST_SKIP() << "ZS_EXPECT_NODES / ZS_EXPECT_RANKS_PER_NODE not set (run by tests/cluster/)";
  Communicator world;
  Communicator node = world.split_shared_node();
  EXPECT_EQ(node.size(), per_node);
  // Each node's leader (node rank 0) contributes its hostname once: nodes x distinct names.
  const std::string name = processor_name();
  std::vector<char> mine(MPI_MAX_PROCESSOR_NAME, 0), all(static_cast<std::size_t>(world.size()) * MPI_MAX_PROCESSOR_NAME);
  std::copy(name.begin(), name.end(), mine.begin());
  MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                MPI_COMM_WORLD);
  std::set<std::string> names;
  for (int r = 0; r < world.size(); ++r) names.insert(std::string(all.data() + r * MPI_MAX_PROCESSOR_NAME));
  EXPECT_EQ(static_cast<int>(names.size()), nodes) << "hostnames seen: " << names.size();
  // Ranks sharing a node share a hostname: the node communicator's ranks all hold this name.
  int same = 1, all_same = 0;
  std::vector<char> node_names(static_cast<std::size_t>(node.size()) * MPI_MAX_PROCESSOR_NAME);
  MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, node_names.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR,
                node.handle());
  for (int r = 0; r < node.size(); ++r) same &= std::string(node_names.data() + r * MPI_MAX_PROCESSOR_NAME) == name;
  MPI_Allreduce(&same, &all_same, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  EXPECT_EQ(all_same, 1) << "a shared-memory communicator spans two hostnames";
}

TEST_F(ClusterTopologyTest, CollectivesAcrossTheLinkGiveExactSums) {
  Communicator world;
  const int n = world.size(), r = world.rank();
  const std::int64_t shard = 3 << 20;  // 12 MiB of float32 per rank: many segments cross the link
  std::vector<float> full(static_cast<std::size_t>(shard * n)), own(static_cast<std::size_t>(shard));
  // Element i of rank r holds (r + 1) * (i mod 251): sums over ranks are n(n+1)/2 * (i mod 251), exact in fp32.
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = static_cast<float>((r + 1) * static_cast<int>(i % 251));
  const float ranks_sum = static_cast<float>(n * (n + 1) / 2);
  world.reduce_scatter(std::span<float>(full), std::span<float>(own)).wait();
  std::int64_t wrong = 0;
  for (std::int64_t i = 0; i < shard; ++i)
    wrong += own[i] != ranks_sum * static_cast<float>((r * shard + i) % 251);
  world.all_gather(std::span<const float>(own), std::span<float>(full)).wait();
  for (std::size_t i = 0; i < full.size(); ++i) wrong += full[i] != ranks_sum * static_cast<float>(i % 251);
  for (std::size_t i = 0; i < full.size(); ++i) full[i] = static_cast<float>((r + 1) * static_cast<int>(i % 251));
  world.all_reduce(std::span<float>(full)).wait();
  for (std::size_t i = 0; i < full.size(); ++i) wrong += full[i] != ranks_sum * static_cast<float>(i % 251);
  EXPECT_EQ(wrong, 0) << "rank " << r;
}

// The bytes this job's nodes have sent on `iface` (one reader per node), summed: collective.
// The barrier first: a rank's all-gather can end while its node-mate still sends to the other
// node; once every rank has reached the barrier, every rank has received everything.
std::int64_t link_bytes_sent(Communicator& world, Communicator& node, const std::string& iface) {
  MPI_Barrier(world.handle());
  std::int64_t bytes = 0;
  if (node.rank() == 0) std::ifstream("/sys/class/net/" + iface + "/statistics/tx_bytes") >> bytes;
  MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_INT64_T, MPI_SUM, world.handle());
  return bytes;
}

// Across nodes, communication.all_gather = automatic takes the ring above the crossover: placed
// node by node (ranks 0..k-1 on the first node, ...) it sends m (n-1)/n of the buffer over the
// m nodes' links; Open MPI 4.1's all-gather at 2 x 2 ranks sends the whole buffer out of each
// node (4/3 of the ring's). Counted on the links (tests/cluster/run_on_cluster.sh sets
// ZS_LINK_INTERFACE): the counters are exact, so this is no timing test.
TEST_F(ClusterTopologyTest, AutomaticAllGatherAcrossNodesSendsTheRingsBytes) {
  const char* iface = std::getenv("ZS_LINK_INTERFACE");
  const int nodes = expected("ZS_EXPECT_NODES");
  if (!iface || nodes < 2) GTEST_SKIP() << "ZS_LINK_INTERFACE / ZS_EXPECT_NODES not set (run by tests/cluster/)";
  Communicator world;
  Communicator node = world.split_shared_node();
  const int n = world.size(), r = world.rank();
  const std::int64_t shard = 4 << 20;  // 16 MiB of float32 per rank: far above the crossover
  std::vector<float> own(static_cast<std::size_t>(shard), static_cast<float>(r)), full(static_cast<std::size_t>(shard * n));
  world.all_gather(std::span<float>(own), std::span<float>(full)).wait();  // warm-up: connections made
  const std::int64_t before = link_bytes_sent(world, node, iface);
  world.all_gather(std::span<float>(own), std::span<float>(full)).wait();
  const std::int64_t sent = link_bytes_sent(world, node, iface) - before;
  const double buffer = static_cast<double>(shard * n) * sizeof(float);
  const double ring = nodes * (n - 1.0) / n * buffer;
  EXPECT_GT(static_cast<double>(sent), 0.99 * ring) << "sent " << sent << " bytes";
  EXPECT_LT(static_cast<double>(sent), 1.02 * ring) << "sent " << sent << " bytes, the ring sends " << ring;
  std::int64_t wrong = 0;
  for (std::size_t i = 0; i < full.size(); ++i) wrong += full[i] != static_cast<float>(static_cast<std::int64_t>(i) / shard);
  EXPECT_EQ(wrong, 0);
}

}  // namespace
}  // namespace zs
