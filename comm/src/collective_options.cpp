#include "zeroshard/comm/collective_options.hpp"

#include <cstdio>

#include "comm_context.hpp"
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

namespace {

std::string out_of_range(const std::string& key, const std::string& value, const std::string& accepted) {
  return key + " = " + value + " is out of range: use " + accepted;
}

std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds);
  return text;
}

}  // namespace

void CommunicatorConfig::validate(const std::string& prefix) const {
  constexpr std::size_t kGiB = std::size_t{1} << 30;
  if (!(timeout_s >= 0) || timeout_s > 1e9)
    throw InvalidArgument(out_of_range(prefix + "timeout_s", seconds_text(timeout_s),
                                       "0 .. 1e9 seconds (0 = wait forever; default 600)"));
  detail::require_reduce_scatter_algorithm(reduce_scatter, (prefix + "reduce_scatter").c_str());
  if (segment_bytes < 64 || segment_bytes > kGiB)
    throw InvalidArgument(out_of_range(prefix + "segment_bytes", std::to_string(segment_bytes),
                                       "64 bytes .. 1 GiB (default 1 MiB)"));
  if (all_gather_segment_bytes < 64 || all_gather_segment_bytes > kGiB)
    throw InvalidArgument(out_of_range(prefix + "all_gather_segment_bytes", std::to_string(all_gather_segment_bytes),
                                       "64 bytes .. 1 GiB (default 16 MiB)"));
  if (shared_memory_slot_bytes != 0 && (shared_memory_slot_bytes < 64 || shared_memory_slot_bytes > kGiB))
    throw InvalidArgument(out_of_range(prefix + "shared_memory_slot_bytes", std::to_string(shared_memory_slot_bytes),
                                       "64 bytes .. 1 GiB, or 0 (default) for 8 MiB / ranks"));
  if (receive_window < 1 || receive_window > 1024)
    throw InvalidArgument(out_of_range(prefix + "receive_window", std::to_string(receive_window), "1 .. 1024 (default 4)"));
  if (flight_recorder_entries < 1)
    throw InvalidArgument(out_of_range(prefix + "flight_recorder_entries", std::to_string(flight_recorder_entries),
                                       ">= 1 (default 32)"));
}

}  // namespace zs
