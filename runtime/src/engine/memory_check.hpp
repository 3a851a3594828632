#pragma once
// The engine's use of the memory planner (zeroshard/runtime/memory_plan.hpp): the limit from
// memory.limit_bytes / memory.limit_fraction, the check before the model buffers are
// allocated (construction: no batch shape yet) and again, with activations, before the first
// training forward runs; rank 0 prints the plan.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/memory_plan.hpp"
#include "parameter_group.hpp"

namespace zs::detail {

struct MemoryLimit {
  std::int64_t bytes = 0;  // 0: none
  std::string source;      // the key (and how it was computed) named in a refusal
};

/// Collective (counts the ranks on this node). The smaller of memory.limit_bytes and
/// memory.limit_fraction x physical memory / ranks on the node; bytes 0 when neither is set.
MemoryLimit resolve_memory_limit(const MemoryConfig& config, const Communicator& comm);

/// The planner's view of the engine's groups.
std::vector<PlannedUnit> planned_units(const std::vector<std::unique_ptr<ParameterGroup>>& groups);

/// Collective. Plans (activations too when `input_shape` is given) for model states sharded
/// over `shard_ranks` ranks (hybrid sharding's group size; 0: comm.size()), prints the plan on
/// rank 0 when `print`, and throws InvalidArgument on every rank when any rank's prediction
/// exceeds its limit, naming the largest categories and the settings that would fit.
MemoryPlan check_memory_plan(const std::vector<PlannedUnit>& units, const EngineConfig& config, int optimizer_states,
                             const std::optional<Shape>& input_shape, const MemoryLimit& limit, const Communicator& comm,
                             bool print, int shard_ranks = 0);

}  // namespace zs::detail
