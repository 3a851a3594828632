#pragma once
// The engine's choice of compute threads per rank (EngineConfig::compute_threads).

#include <string>

namespace zs {

class Communicator;

/// `requested` >= 1 is used as given. 0 (auto): OMP_NUM_THREADS when the environment sets it
/// (the user's explicit choice, as torch honours it); else the CPUs this process may run on
/// the node's CPUs divided by the ranks of the job on this node (Open MPI's
/// OMPI_COMM_WORLD_LOCAL_SIZE, MPICH's MPI_LOCALNRANKS, else the size of `comm`'s shared-memory
/// split: collective over `comm` then), capped by the CPUs of this process's affinity mask (a
/// rank bound to one core gets 1), at least 1: the ranks of a node never oversubscribe its cores
/// by default. Throws InvalidArgument for a bad
/// OMP_NUM_THREADS.
int resolve_compute_threads(int requested, const Communicator& comm);

/// A warning when `threads` per rank times the ranks on this node (Open MPI's
/// OMPI_COMM_WORLD_LOCAL_SIZE or MPICH's MPI_LOCALNRANKS; without either, no warning) exceeds
/// the node's CPUs: OpenMP's threads spin while they wait, so oversubscribed they slow a step
/// many times over (6-18x measured on 2 cores, with bit-identical results, so nothing else
/// shows it). Empty otherwise, and when OMP_WAIT_POLICY=passive (the remedy it names) is set.
/// Not collective.
std::string oversubscription_warning(int threads);

}  // namespace zs
