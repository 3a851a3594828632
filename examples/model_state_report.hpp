#pragma once
// The examples' closing model-state report: every rank's model-state bytes next to the ZeRO
// formula for the run's stage and precision (model_state_formula.hpp).

#include <string>

#include "zeroshard/runtime/engine.hpp"

namespace zs::examples {

/// Collective over `comm` (an MPI_Gather to rank 0). Rank 0 gets the report's lines, the
/// other ranks an empty string.
std::string model_state_report(const Engine& engine, const Communicator& comm);

}  // namespace zs::examples
