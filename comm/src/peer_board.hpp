#pragma once
// Internal: what every rank of a communicator is doing, readable by the other ranks of its
// node without their help (the hang report's view of a rank stuck elsewhere: sleeping in
// compute, or waiting on another collective).
//
// Why shared memory and not MPI: a rank that times out must learn the state of a peer that is
// not calling MPI (busy in a step) or is blocked in another collective. MPI's passive-target
// RMA does not guarantee that: Open MPI's osc/pt2pt and osc/ucx need the target to enter MPI
// to serve a lock or get (open-mpi/ompi#6819, #7631, #3750), so the reader would hang on the
// very rank it wants to diagnose, and MPI_Win_free is collective, so an erroring rank could
// hang in a destructor. A POSIX shared-memory segment per node is plain memory: each rank
// writes its own slot with a few stores (a seqlock) and reads the others' without any call
// into MPI; teardown is a local munmap. Ranks on other nodes are not visible (their own
// reports cover them); the segment is unlinked as soon as every rank of the node mapped it, so
// nothing is left behind after a crash.

#include <mpi.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "node_segment.hpp"

namespace zs::detail {

/// A collective as peers see it: enough to compare "#N" across ranks.
struct PeerCollective {
  std::int64_t sequence = -1;  // -1: none
  char op[24] = {};
  std::int64_t bytes = 0;
  char label[48] = {};
};

/// A snapshot of one rank's published state.
struct PeerState {
  bool visible = false;        // false: the rank is on another node (or the board is unavailable)
  int pid = 0;
  std::int64_t issued = 0;     // collectives issued so far on this communicator
  PeerCollective last_issued;
  PeerCollective waiting;      // sequence -1 when not waiting
  std::int64_t waiting_since_ns = 0;
  bool gave_up = false;        // the wait on `waiting` timed out (the rank is reporting or gone)
  char activity[48] = {};      // what the engine last said it was doing ("forward unit 2")
  std::int64_t activity_since_ns = 0;
};

class PeerBoard {
 public:
  /// Collective over `comm` (a rank of `comm` is slot `rank`). Never throws: if the segment
  /// cannot be made, available() is false and reports say so.
  PeerBoard(MPI_Comm comm, int rank, int size);
  ~PeerBoard();
  PeerBoard(const PeerBoard&) = delete;
  PeerBoard& operator=(const PeerBoard&) = delete;

  bool available() const { return slots_ != nullptr; }
  /// This rank's state; each is a few stores, no allocation, no system call.
  void issued(std::int64_t sequence, const char* op, std::int64_t bytes, std::string_view label) noexcept;
  void waiting(std::int64_t sequence, const char* op, std::int64_t bytes, std::string_view label) noexcept;
  void not_waiting() noexcept;
  /// The wait published by waiting() timed out: it stays visible to the peers' reports, for
  /// good (later waiting()/not_waiting() calls leave it): the communicator is abandoned, and a
  /// rank unwinding after its timeout, waiting on other collectives, must not look to its
  /// peers' reports like a rank that waits on nothing (the suspect of a stall).
  void gave_up() noexcept;
  void activity(std::string_view what) noexcept;
  /// Every rank's state (invisible ones marked so).
  std::vector<PeerState> read_all() const;

 private:
  struct Slot;
  template <class Write>
  void write(Write write) noexcept;
  NodeSegment segment_;
  Slot* slots_ = nullptr;
  int rank_ = 0, size_ = 0;
};

}  // namespace zs::detail
