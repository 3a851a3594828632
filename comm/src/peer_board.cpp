#include "peer_board.hpp"

#include <unistd.h>

#include <algorithm>
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

PeerBoard::PeerBoard(MPI_Comm comm, int rank, int size)
    : segment_(comm, sizeof(Slot) * static_cast<std::size_t>(size), "peers"), rank_(rank), size_(size) {
  // A zero-filled segment: every slot starts at version 0, pid 0 (invisible).
  slots_ = static_cast<Slot*>(segment_.data());
  write([](PeerState& s) {
    s.pid = static_cast<int>(getpid());
    s.last_issued.sequence = -1;
    s.waiting.sequence = -1;
  });
}

PeerBoard::~PeerBoard() = default;

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
    if (s.gave_up) return;  // the timed-out wait stays what the peers see (gave_up())
    fill(s.waiting, sequence, op, bytes, label);
    s.waiting_since_ns = monotonic_ns();
  });
}

void PeerBoard::gave_up() noexcept {
  write([](PeerState& s) { s.gave_up = true; });
}

void PeerBoard::not_waiting() noexcept {
  write([](PeerState& s) {
    if (!s.gave_up) s.waiting.sequence = -1;
  });
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
