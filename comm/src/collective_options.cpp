#include "zeroshard/comm/collective_options.hpp"

#include "zeroshard/error.hpp"

namespace zs {

std::string to_string(Algorithm a) {
  switch (a) {
    case Algorithm::ring: return "ring";
    case Algorithm::recursive_doubling: return "recursive_doubling";
    case Algorithm::mpi: return "mpi";
    case Algorithm::automatic: return "automatic";
    case Algorithm::shared_memory: return "shared_memory";
  }
  return "algorithm(" + std::to_string(static_cast<int>(a)) + ")";
}

std::string to_string(ReduceOp op) { return op == ReduceOp::sum ? "sum" : "average"; }

Algorithm parse_algorithm(const std::string& name) {
  if (name == "ring") return Algorithm::ring;
  if (name == "recursive_doubling") return Algorithm::recursive_doubling;
  if (name == "mpi") return Algorithm::mpi;
  if (name == "automatic") return Algorithm::automatic;
  if (name == "shared_memory") return Algorithm::shared_memory;
  throw InvalidArgument("unknown collective algorithm '" + name +
                        "': use 'automatic', 'ring', 'mpi', 'shared_memory' or (all_gather only) 'recursive_doubling'");
}

}  // namespace zs
