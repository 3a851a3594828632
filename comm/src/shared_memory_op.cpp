#include "shared_memory_op.hpp"

#include <algorithm>
#include <cstring>

#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

template <class T>
const char* element_name() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else return "16-bit";
}

// out = ((s[0] + s[1]) + ...) + s[k-1], elementwise, divided by `divisor` when it is not 1.
// Blocked so that the partial sums stay in L1 and each pass vectorises; `out` may be one of
// the sources (the last one, a rank's own chunk, read in the same pass that writes it).
template <class T>
void sum_in_order(T* out, const T* const* sources, int k, std::int64_t length, T divisor) {
  constexpr std::int64_t kBlock = 1024;
  T partial[kBlock];
  for (std::int64_t at = 0; at < length; at += kBlock) {
    const std::int64_t n = std::min(kBlock, length - at);
    const T* a = sources[0] + at;
    if (k == 1) {
      for (std::int64_t i = 0; i < n; ++i) partial[i] = a[i];
    } else {
      const T* b = sources[1] + at;
      for (std::int64_t i = 0; i < n; ++i) partial[i] = a[i] + b[i];
    }
    for (int s = 2; s < k; ++s) {
      const T* c = sources[s] + at;
      for (std::int64_t i = 0; i < n; ++i) partial[i] += c[i];
    }
    T* o = out + at;
    if (divisor != T(1))
      for (std::int64_t i = 0; i < n; ++i) o[i] = partial[i] / divisor;
    else
      for (std::int64_t i = 0; i < n; ++i) o[i] = partial[i];
  }
}

}  // namespace

template <class T>
SharedMemoryOp<T>::SharedMemoryOp(SharedMemoryChannel& channel, ShardCollective kind, T* full, std::int64_t count,
                                  T* own_chunk, bool average, std::optional<std::uint64_t> reserved_turn)
    : channel_(channel),
      kind_(kind),
      full_(full),
      own_chunk_(own_chunk),
      average_(average),
      bounds_{count, channel.size()} {
  if constexpr (std::is_same_v<T, std::uint16_t>)
    if (kind == ShardCollective::reduce_scatter)
      throw InvalidArgument("shared-memory reduce_scatter of raw 16-bit words: reduce in float32 (WidenedOp)");
  const std::int64_t per_slot = static_cast<std::int64_t>(channel.slot_bytes() / sizeof(T));
  const int n = channel.size();
  segment_elems_ = std::max<std::int64_t>(1, kind == ShardCollective::reduce_scatter ? per_slot / std::max(1, n - 1) : per_slot);
  const std::int64_t chunk = bounds_.chunk_elems();
  rounds_ = (chunk + segment_elems_ - 1) / segment_elems_;
  copied_.assign(static_cast<std::size_t>(n), 0);
  // Every rank computes the same rounds (they depend on count and n only), so every rank
  // agrees on which collectives take a turn. One without rounds is complete now: a caller
  // that drops it unwaited (an empty unit's gather) leaves the channel in step.
  if (!needs_turn(count)) finished_ = true;
  else ticket_ = reserved_turn ? *reserved_turn : channel.take_ticket();
}

template <class T>
SharedMemoryOp<T>::~SharedMemoryOp() = default;

template <class T>
std::int64_t SharedMemoryOp<T>::segment_length(int chunk) const {
  const std::int64_t offset = round_index_ * segment_elems_;
  return std::clamp<std::int64_t>(bounds_.size(chunk) - offset, 0, segment_elems_);
}

template <class T>
bool SharedMemoryOp<T>::progress() {
  if (finished_) return true;
  if (channel_.broken())
    throw Error(describe() +
                ": an earlier collective on this communicator was abandoned part-way, so the ranks are out of "
                "step; this communicator cannot run collectives any more (create a new one)");
  if (!started_) {
    if (!channel_.is_turn_of(ticket_)) return false;  // an earlier collective still runs its rounds
    started_ = true;
    first_round_ = channel_.draw_rounds(static_cast<std::uint64_t>(rounds_));
    const std::int64_t own_begin = bounds_.begin(channel_.rank());
    if (kind_ == ShardCollective::all_gather && own_chunk_ != full_ + own_begin)
      std::copy_n(own_chunk_, bounds_.size(channel_.rank()), full_ + own_begin);
  }
  while (round_index_ < rounds_)
    if (!advance_round()) return false;
  finished_ = true;
  channel_.finish_turn();
  return true;
}

template <class T>
bool SharedMemoryOp<T>::advance_round() {
  const std::uint64_t round = first_round_ + static_cast<std::uint64_t>(round_index_);
  if (!slot_written_) {
    if (!channel_.slot_free(round)) return false;
    write_own_slot(round);
    channel_.publish(round);
    slot_written_ = true;
    std::fill(copied_.begin(), copied_.end(), 0);
  }
  const bool done = kind_ == ShardCollective::all_gather ? gather_from_peers(round) : reduce_from_peers(round);
  if (!done) return false;
  channel_.consume(round);
  slot_written_ = false;
  ++round_index_;
  return true;
}

template <class T>
void SharedMemoryOp<T>::write_own_slot(std::uint64_t round) {
  const int n = channel_.size(), r = channel_.rank();
  const std::int64_t offset = round_index_ * segment_elems_;
  T* slot = reinterpret_cast<T*>(channel_.own_slot(round));
  if (kind_ == ShardCollective::all_gather) {
    std::copy_n(own_chunk_ + offset, segment_length(r), slot);
    return;
  }
  // This rank's contribution to chunk c goes to position (c - r - 1) mod n of its slot: rank c
  // reads peer q's position (c - q - 1) mod n (reduce_from_peers).
  for (int c = 0; c < n; ++c) {
    if (c == r) continue;
    const int position = (c - r - 1 + n) % n;
    std::copy_n(full_ + bounds_.begin(c) + offset, segment_length(c), slot + position * segment_elems_);
  }
}

template <class T>
bool SharedMemoryOp<T>::gather_from_peers(std::uint64_t round) {
  const int n = channel_.size(), r = channel_.rank();
  const std::int64_t offset = round_index_ * segment_elems_;
  bool all = true;
  for (int d = 1; d < n; ++d) {
    const int q = (r + d) % n;
    if (copied_[static_cast<std::size_t>(q)]) continue;
    const std::byte* slot = channel_.published_slot(q, round);
    if (!slot) {
      all = false;
      continue;
    }
    std::copy_n(reinterpret_cast<const T*>(slot), segment_length(q), full_ + bounds_.begin(q) + offset);
    copied_[static_cast<std::size_t>(q)] = 1;
  }
  return all;
}

template <class T>
bool SharedMemoryOp<T>::reduce_from_peers(std::uint64_t round) {
  if constexpr (std::is_same_v<T, std::uint16_t>) {
    return true;  // refused in the constructor
  } else {
    const int n = channel_.size(), r = channel_.rank();
    // The ring's order: x[r+1], x[r+2], ..., x[r-1], then this rank's own x[r].
    const T* sources[64];
    std::vector<const T*> many;
    const T** order = sources;
    if (n > 64) {
      many.resize(static_cast<std::size_t>(n));
      order = many.data();
    }
    for (int d = 1; d < n; ++d) {
      const int q = (r + d) % n;
      const std::byte* slot = channel_.published_slot(q, round);
      if (!slot) return false;
      const int position = (r - q - 1 + n) % n;
      order[d - 1] = reinterpret_cast<const T*>(slot) + position * segment_elems_;
    }
    const std::int64_t offset = round_index_ * segment_elems_;
    order[n - 1] = full_ + bounds_.begin(r) + offset;
    sum_in_order(own_chunk_ + offset, order, n, segment_length(r), average_ ? static_cast<T>(n) : T(1));
    return true;
  }
}

template <class T>
void SharedMemoryOp<T>::abandon() noexcept {
  // The peers count on this rank's rounds (and on its turn in the issue order): once a
  // collective is dropped unfinished, the channel's rounds are out of step for good.
  if (!finished_) channel_.break_channel();
}

// " 0, 2" for the peers a report should point at.
static std::string rank_list(const std::vector<int>& ranks) {
  std::string text;
  for (std::size_t i = 0; i < ranks.size(); ++i) text += (i ? ", " : "") + std::to_string(ranks[i]);
  return text;
}

template <class T>
std::string SharedMemoryOp<T>::describe() const {
  std::string text = std::string("shared-memory ") +
                     (kind_ == ShardCollective::reduce_scatter ? "reduce_scatter" : "all_gather") + " of " +
                     std::to_string(bounds_.count) + " " + element_name<T>() + " elements (round " +
                     std::to_string(round_index_) + " of " + std::to_string(rounds_);
  // Which peer holds it up, as the ring names the rank it receives from (ranks of this
  // communicator).
  if (!finished_ && !started_) {
    text += ", waiting for its turn behind an earlier collective of this communicator";
  } else if (!finished_) {
    const std::uint64_t round = first_round_ + static_cast<std::uint64_t>(round_index_);
    if (!slot_written_ && round > 2) {
      const std::vector<int> behind = channel_.peers_behind_consuming(round - 2);
      if (!behind.empty()) text += ", waiting for rank(s) " + rank_list(behind) + " to read this rank's earlier data";
    } else {
      const std::vector<int> behind = channel_.peers_behind_publishing(round);
      if (!behind.empty()) text += ", waiting for data from rank(s) " + rank_list(behind);
    }
  }
  return text + ")";
}

template class SharedMemoryOp<float>;
template class SharedMemoryOp<double>;
template class SharedMemoryOp<std::uint16_t>;

}  // namespace zs::detail
