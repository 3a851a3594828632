#include "memory_check.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

MemoryLimit resolve_memory_limit(const MemoryConfig& config, const Communicator& comm) {
  MemoryLimit limit;
  if (config.limit_bytes > 0) limit = {config.limit_bytes, "memory.limit_bytes"};
  if (config.limit_fraction > 0) {
    // Ranks sharing this node's memory: those MPI can put in one shared-memory communicator.
    MPI_Comm node = MPI_COMM_NULL;
    ZS_MPI_CHECK(MPI_Comm_split_type(comm.handle(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node));
    int node_ranks = 1;
    ZS_MPI_CHECK(MPI_Comm_size(node, &node_ranks));
    ZS_MPI_CHECK(MPI_Comm_free(&node));
    const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
    const auto bytes = static_cast<std::int64_t>(config.limit_fraction * physical / node_ranks);
    if (limit.bytes == 0 || bytes < limit.bytes) {
      char source[160];
      std::snprintf(source, sizeof source, "memory.limit_fraction (%g x %.2f GiB physical / %d ranks on this node)",
                    config.limit_fraction, physical / (1 << 30), node_ranks);
      limit = {bytes, source};
    }
  }
  return limit;
}

std::vector<PlannedUnit> planned_units(const std::vector<std::unique_ptr<ParameterGroup>>& groups) {
  std::vector<PlannedUnit> units;
  for (const auto& group : groups) {
    PlannedUnit unit;
    for (const nn::Parameter* p : group->params) unit.parameter_shapes.push_back(p->shape);
    for (const ParameterGroup* owner : group->borrowed_from) unit.borrows.push_back(owner->index);
    unit.modules.assign(group->modules.begin(), group->modules.end());
    units.push_back(std::move(unit));
  }
  return units;
}

MemoryPlan check_memory_plan(const std::vector<PlannedUnit>& units, const EngineConfig& config, int optimizer_states,
                             const std::optional<Shape>& input_shape, const MemoryLimit& limit, const Communicator& comm,
                             bool print, int shard_ranks) {
  if (shard_ranks == 0) shard_ranks = comm.size();
  const MemoryPlan plan = plan_memory(units, config, shard_ranks, optimizer_states, input_shape);
  // Nothing to check or print (the same answer on every rank: the settings agree): no collective.
  if (limit.bytes == 0 && !print) return plan;
  const bool over = limit.bytes > 0 && plan.peak > limit.bytes;
  // Ranks may differ (a node with more ranks has a smaller memory.limit_fraction share): one
  // all-reduce tells every rank whether any is over, and the spread of the predictions.
  const std::int64_t mine[2] = {over ? 1 : 0, plan.peak};
  const auto ranges = range_across_ranks(mine, comm);
  if (print && comm.rank() == 0) {
    std::string text = plan.table();
    if (!ranges[1].agreed())
      text += "  (ranks differ: predicted peaks " + std::to_string(ranges[1].low) + " to " +
              std::to_string(ranges[1].high) + " bytes)\n";
    if (limit.bytes > 0) text += "  limit " + std::to_string(limit.bytes) + " bytes (" + limit.source + ")\n";
    std::fputs(text.c_str(), stdout);
    std::fflush(stdout);
  }
  if (ranges[0].high == 0) return plan;
  if (!over)
    throw InvalidArgument(rank_and_host() + ": another rank's predicted peak memory exceeds its limit (" + limit.source +
                          "); this rank predicts " + std::to_string(plan.peak) + " bytes. The message on that rank "
                          "names the largest categories and the settings that fit");
  const auto fixes = settings_that_fit(units, config, shard_ranks, optimizer_states, input_shape, limit.bytes);
  // Rank 0's message carries the plan's table too (the same on every rank, printed once).
  throw InvalidArgument(rank_and_host() + ": " + memory_limit_message(plan, limit.bytes, limit.source, fixes) +
                        (comm.rank() == 0 ? "\n" + plan.table() : std::string()));
}

}  // namespace zs::detail
