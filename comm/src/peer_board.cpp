#include "peer_board.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "zeroshard/comm/flight_recorder.hpp"

namespace zs::detail {

struct PeerBoard::Slot {
  std::atomic<std::uint32_t> version;  // seqlock: odd while its owner writes
  PeerState state;
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "the seqlock lives in shared memory");

namespace {

void copy_text(char* to, std::size_t capacity, std::string_view from) {
  const std::size_t n = std::min(from.size(), capacity - 1);
  std::copy_n(from.data(), n, to);  // not memcpy: an empty view's data() may be null
  to[n] = '\0';
}

void fill(PeerCollective& c, std::int64_t sequence, const char* op, std::int64_t bytes, std::string_view label) {
  c.sequence = sequence;
  copy_text(c.op, sizeof c.op, op);
  c.bytes = bytes;
  copy_text(c.label, sizeof c.label, label);
}

}  // namespace

PeerBoard::PeerBoard(MPI_Comm comm, int rank, int size) : rank_(rank), size_(size) {
  // Every rank takes part in every call below whatever happens locally, so that a local
  // failure (no /dev/shm) leaves that rank without a board but never blocks the others.
  MPI_Comm node = MPI_COMM_NULL;
  if (MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) != MPI_SUCCESS) return;
  int node_rank = 0;
  MPI_Comm_rank(node, &node_rank);
  const std::size_t bytes = sizeof(Slot) * static_cast<std::size_t>(size);
  char name[64] = {};
  if (node_rank == 0) {
    static std::atomic<unsigned> counter{0};
    std::snprintf(name, sizeof name, "/zeroshard-peers-%d-%u-%lld", static_cast<int>(getpid()), counter.fetch_add(1),
                  static_cast<long long>(monotonic_ns() % 1000000007));
    const int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      if (fd >= 0) {
        close(fd);
        shm_unlink(name);
      }
      name[0] = '\0';  // tells the node: no board
    } else {
      close(fd);  // ftruncate zero-fills: every slot starts at version 0, pid 0 (invisible)
    }
  }
  MPI_Bcast(name, sizeof name, MPI_CHAR, 0, node);
  if (name[0] != '\0') {
    const int fd = shm_open(name, O_RDWR, 0600);
    if (fd >= 0) {
      void* at = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
      close(fd);
      if (at != MAP_FAILED) {
        slots_ = static_cast<Slot*>(at);
        mapped_bytes_ = bytes;
      }
    }
  }
  MPI_Barrier(node);  // every rank of the node has mapped it (or given up): unlink the name
  if (node_rank == 0 && name[0] != '\0') shm_unlink(name);
  MPI_Comm_free(&node);
  write([](PeerState& s) {
    s.pid = static_cast<int>(getpid());
    s.last_issued.sequence = -1;
    s.waiting.sequence = -1;
  });
}

PeerBoard::~PeerBoard() {
  if (slots_) munmap(slots_, mapped_bytes_);
}

template <class Write>
void PeerBoard::write(Write change) noexcept {
  if (!slots_) return;
  Slot& slot = slots_[rank_];
  const std::uint32_t v = slot.version.load(std::memory_order_relaxed);
  slot.version.store(v + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  change(slot.state);
  slot.version.store(v + 2, std::memory_order_release);
}

void PeerBoard::issued(std::int64_t sequence, const char* op, std::int64_t bytes, std::string_view label) noexcept {
  write([&](PeerState& s) {
    s.issued = sequence + 1;
    fill(s.last_issued, sequence, op, bytes, label);
  });
}

void PeerBoard::waiting(std::int64_t sequence, const char* op, std::int64_t bytes, std::string_view label) noexcept {
  write([&](PeerState& s) {
    fill(s.waiting, sequence, op, bytes, label);
    s.waiting_since_ns = monotonic_ns();
    s.gave_up = false;
  });
}

void PeerBoard::gave_up() noexcept {
  write([](PeerState& s) { s.gave_up = true; });
}

void PeerBoard::not_waiting() noexcept {
  write([](PeerState& s) { s.waiting.sequence = -1; });
}

void PeerBoard::activity(std::string_view what) noexcept {
  write([&](PeerState& s) {
    copy_text(s.activity, sizeof s.activity, what);
    s.activity_since_ns = monotonic_ns();
  });
}

std::vector<PeerState> PeerBoard::read_all() const {
  std::vector<PeerState> out(static_cast<std::size_t>(size_));
  if (!slots_) return out;
  for (int r = 0; r < size_; ++r) {
    const Slot& slot = slots_[r];
    // A consistent copy: retried while the owner is mid-write; bounded, so a rank that died
    // mid-write cannot stall the report (its state is then shown as read).
    for (int attempt = 0; attempt < 1000; ++attempt) {
      const std::uint32_t before = slot.version.load(std::memory_order_acquire);
      std::memcpy(static_cast<void*>(&out[static_cast<std::size_t>(r)]), &slot.state, sizeof(PeerState));
      std::atomic_thread_fence(std::memory_order_acquire);
      if (before % 2 == 0 && slot.version.load(std::memory_order_relaxed) == before) break;
    }
    PeerState& s = out[static_cast<std::size_t>(r)];
    s.visible = s.pid != 0;
  }
  return out;
}

}  // namespace zs::detail
