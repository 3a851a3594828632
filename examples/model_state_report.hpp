#pragma once
// The examples' closing model-state report: every rank's model-state bytes next to the ZeRO
// formula for the run's stage and precision (model_state_formula.hpp); and the start-up line
// that says which precision the run trains in.

#include <string>

#include "zeroshard/runtime/engine.hpp"

namespace zs::examples {

/// Collective over `comm` (an MPI_Gather to rank 0). Rank 0 gets the report's lines, the
/// other ranks an empty string.
std::string model_state_report(const Engine& engine, const Communicator& comm);

/// One line for the start-up header: "precision: float32", or the 16-bit dtype, the reduce
/// dtype, the float32 master and states, and under fp16 the loss scale (fixed, or dynamic with
/// its DeepSpeed settings). Not collective.
std::string precision_summary(const EngineConfig& config);
/// Lines (each ending in a newline; empty when neither applies) for hybrid sharding (groups and
/// replicas) and node-shared parameters (one copy per shard group), for the start-up banner.
std::string sharding_summary(const Engine& engine);

}  // namespace zs::examples
