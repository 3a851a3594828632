#pragma once
// The memory planner's replay (memory_plan.cpp): the engine's allocation schedule over sizes,
// on a ledger of its own. Every take and reset below stands for one in runtime/src/engine/
// (named in the comments: EngineCore, GatherScheduler, GradientReducer, BufferPool);
// tests/mpi/test_memory_plan.cpp holds the two together by comparing predictions with the
// ledger of real engines at every stage and world size 1-4.

#include <cstdint>
#include <string>
#include <vector>

#include "zeroshard/runtime/memory_plan.hpp"

namespace zs::detail {

/// "12.34 MiB".
std::string mib_text(std::int64_t bytes);

/// The ledger one rank's engine would have after initialisation and two optimizer steps
/// (gradient_accumulation_steps micro-steps each) of the plain forward in unit order:
/// `activation_bytes` are recorded after the first forward, as EngineCore::record_activations
/// does. Throws InvalidArgument for a unit borrowing from a unit that is not earlier.
MemoryLedger replay_allocations(const std::vector<PlannedUnit>& units, const EngineConfig& config, int world_size,
                                int optimizer_states, std::int64_t activation_bytes);

}  // namespace zs::detail
