#include "zeroshard/comm/collective_options.hpp"

#include "zeroshard/error.hpp"

namespace zs {

std::string to_string(Algorithm a) { return a == Algorithm::ring ? "ring" : "mpi"; }

std::string to_string(ReduceOp op) { return op == ReduceOp::sum ? "sum" : "average"; }

Algorithm parse_algorithm(const std::string& name) {
  if (name == "ring") return Algorithm::ring;
  if (name == "mpi") return Algorithm::mpi;
  throw InvalidArgument("unknown collective algorithm '" + name + "': use 'ring' or 'mpi'");
}

}  // namespace zs
