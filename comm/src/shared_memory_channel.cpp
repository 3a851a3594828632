#include "shared_memory_channel.hpp"

#include <algorithm>

namespace zs::detail {

namespace {
std::size_t round_up(std::size_t bytes, std::size_t to) { return (bytes + to - 1) / to * to; }
}  // namespace

std::unique_ptr<SharedMemoryChannel> SharedMemoryChannel::open(MPI_Comm comm, int rank, int size,
                                                               std::size_t slot_bytes) {
  // A reduce-scatter round holds at least one element (up to 8 bytes) for each of n-1 peers.
  slot_bytes = round_up(std::max<std::size_t>({slot_bytes, 64, 8 * static_cast<std::size_t>(size)}), 64);
  const std::size_t flags_bytes = round_up(sizeof(Flags) * static_cast<std::size_t>(size), 4096);
  NodeSegment segment(comm, flags_bytes + 2 * slot_bytes * static_cast<std::size_t>(size), "collectives");
  // All or none: ranks that chose different algorithms would wait on each other forever.
  int mapped = segment.available() ? 1 : 0;
  if (MPI_Allreduce(MPI_IN_PLACE, &mapped, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS || !mapped) return nullptr;
  std::unique_ptr<SharedMemoryChannel> channel(new SharedMemoryChannel(std::move(segment), rank, size, slot_bytes));
  channel->slots_ = static_cast<std::byte*>(channel->segment_.data()) + flags_bytes;
  return channel;
}

SharedMemoryChannel::SharedMemoryChannel(NodeSegment segment, int rank, int size, std::size_t slot_bytes)
    : segment_(std::move(segment)), rank_(rank), size_(size), slot_bytes_(slot_bytes) {}

bool SharedMemoryChannel::slot_free(std::uint64_t round) const {
  if (round <= 2) return true;
  for (int r = 0; r < size_; ++r)
    if (r != rank_ && flags(r).consumed.load(std::memory_order_acquire) < round - 2) return false;
  return true;
}

void SharedMemoryChannel::publish(std::uint64_t round) {
  flags(rank_).published.store(round, std::memory_order_release);
}

const std::byte* SharedMemoryChannel::published_slot(int peer, std::uint64_t round) const {
  return flags(peer).published.load(std::memory_order_acquire) >= round ? slot(peer, round) : nullptr;
}

std::vector<int> SharedMemoryChannel::peers_below(std::atomic<std::uint64_t> Flags::*flag, std::uint64_t round) const {
  std::vector<int> behind;
  for (int r = 0; r < size_; ++r)
    if (r != rank_ && (flags(r).*flag).load(std::memory_order_acquire) < round) behind.push_back(r);
  return behind;
}

std::vector<int> SharedMemoryChannel::peers_behind_publishing(std::uint64_t round) const {
  return peers_below(&Flags::published, round);
}

std::vector<int> SharedMemoryChannel::peers_behind_consuming(std::uint64_t round) const {
  return peers_below(&Flags::consumed, round);
}

void SharedMemoryChannel::consume(std::uint64_t round) {
  flags(rank_).consumed.store(round, std::memory_order_release);
}

}  // namespace zs::detail
