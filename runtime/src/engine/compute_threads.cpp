#include "compute_threads.hpp"

#include <sched.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <string>
#include <thread>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/error.hpp"

namespace zs {
namespace {

// A positive whole number from the environment, or 0 when unset. A list ("4,2": OpenMP's
// counts per nesting level) gives its first entry, the outermost level, which is ours.
int positive_from_environment(const char* name) {
  const char* text = std::getenv(name);
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if ((*end != '\0' && *end != ',') || value < 1 || value > 4096)
    throw InvalidArgument(std::string(name) + "='" + text + "' is not a thread or rank count: a whole number from 1 to 4096 " +
                          "(or a comma-separated list of them, whose first entry counts)");
  return static_cast<int>(value);
}

int cpus_of_this_process() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return std::max(1u, std::thread::hardware_concurrency());
}

int ranks_on_this_node(const Communicator& comm) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (const int n = positive_from_environment(name)) return n;
  return comm.split_shared_node().size();
}

// OMP_WAIT_POLICY=passive (any case, as OpenMP reads it): waiting threads sleep instead of
// spinning, the remedy the warning offers, so a user who set it has been told.
bool waits_passively() {
  const char* text = std::getenv("OMP_WAIT_POLICY");
  if (!text) return false;
  std::string policy(text);
  std::transform(policy.begin(), policy.end(), policy.begin(), [](unsigned char c) { return std::tolower(c); });
  return policy == "passive";
}

}  // namespace

int resolve_compute_threads(int requested, const Communicator& comm) {
  if (requested > 0) return requested;
  if (const int n = positive_from_environment("OMP_NUM_THREADS")) return n;
  // The node's CPUs shared evenly by its ranks, and never more than this rank may run on: bound
  // to one core (mpirun --bind-to core) gives 1; bound to a socket, the socket's share.
  const int node_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(1, std::min(cpus_of_this_process(), node_cpus / ranks_on_this_node(comm)));
}

std::string oversubscription_warning(int threads) {
  if (threads <= 1) return "";
  int ranks = 0;
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS"})
    if (!ranks) ranks = positive_from_environment(name);
  const int node_cpus = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (ranks == 0 || threads * ranks <= node_cpus || waits_passively()) return "";
  return "zeroshard: " + std::to_string(threads) + " compute threads per rank x " + std::to_string(ranks) +
         " ranks on this node = " + std::to_string(threads * ranks) + " threads on " + std::to_string(node_cpus) +
         " CPUs. OpenMP threads spin while they wait, so oversubscribed they slow training many times over. Use "
         "compute.threads = 0 (auto: the node's CPUs / its ranks) and leave OMP_NUM_THREADS unset, or set "
         "OMP_WAIT_POLICY=passive.";
}

}  // namespace zs
