#include "hang_report.hpp"

#include <cstdio>
#include <cstring>
#include <string_view>

#include "comm_context.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

namespace {

std::string seconds_text(std::int64_t ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f s", static_cast<double>(ns) / 1e9);
  return text;
}

// "all_gather 4096 B 'unit 3'", preceded by "#5 " when `numbered`.
std::string collective_text(const PeerCollective& c, bool numbered = true) {
  char text[160];
  std::snprintf(text, sizeof text, "%s %lld B%s%s%s", c.op, static_cast<long long>(c.bytes), c.label[0] ? " '" : "",
                c.label, c.label[0] ? "'" : "");
  return numbered ? std::string("#").append(std::to_string(c.sequence)).append(" ").append(text) : std::string(text);
}

// What rank `r` was doing, as far as this node can see.
std::string doing(const PeerState& s, std::int64_t now) {
  if (!s.visible) return "not visible from here (another node, or no shared memory): see its own report";
  std::string text = "issued " + std::to_string(s.issued) + " collective(s)";
  if (s.last_issued.sequence >= 0) text += ", the last " + collective_text(s.last_issued);
  if (s.waiting.sequence >= 0 && s.gave_up)
    text += "; timed out waiting on " + collective_text(s.waiting);
  else if (s.waiting.sequence >= 0)
    text += "; waiting on " + collective_text(s.waiting) + " for " + seconds_text(now - s.waiting_since_ns);
  else text += "; not waiting on a collective";
  if (s.activity[0]) text += "; in '" + std::string(s.activity) + "' for " + seconds_text(now - s.activity_since_ns);
  return text;
}

// "rank W" by the job's (MPI_COMM_WORLD) rank, then in parentheses "this rank" and a
// sub-communicator's own number where it differs (hybrid sharding's shard and replica groups).
std::string rank_name(const CommContext& ctx, int r) {
  const int world = ctx.world_ranks[static_cast<std::size_t>(r)];
  std::string notes;
  if (r == ctx.rank) notes = "this rank";
  if (world != r) notes += (notes.empty() ? "" : "; ") + ("rank " + std::to_string(r) + " of this communicator");
  return "rank " + std::to_string(world) + (notes.empty() ? "" : " (" + notes + ")");
}

bool same_collective(const PeerCollective& a, const PeerCollective& b) {
  return std::strcmp(a.op, b.op) == 0 && a.bytes == b.bytes;
}

}  // namespace

std::string hang_report(const CommContext& ctx, std::uint64_t sequence, const std::string& described, const std::string& limit) {
  const std::int64_t now = monotonic_ns();
  const CollectiveRecord* mine = ctx.recorder.find(sequence);
  std::string report = rank_and_host() + ": collective #" + std::to_string(sequence) + " (" + described;
  if (mine && mine->label[0]) report += ", '" + std::string(mine->label_view()) + "'";
  report += ") did not complete within " + limit + ".";

  if (!ctx.peers || !ctx.peers->available()) {
    report += "\nThe other ranks' states are not visible (timeout_s = 0 when the communicator was made, or no "
              "shared memory): see their own reports.";
  } else {
    PeerCollective waited;
    if (mine) {
      waited.sequence = static_cast<std::int64_t>(sequence);
      std::snprintf(waited.op, sizeof waited.op, "%s", mine->op);
      waited.bytes = mine->bytes;
    }
    const std::vector<PeerState> peers = ctx.peers->read_all();
    std::string behind, different, earlier, unseen, not_waiting;
    for (int r = 0; r < ctx.size; ++r) {
      const PeerState& s = peers[static_cast<std::size_t>(r)];
      if (r == ctx.rank) continue;
      if (!s.visible) {
        (unseen += ' ') += std::to_string(ctx.world_ranks[static_cast<std::size_t>(r)]);
        continue;
      }
      const std::string rank_text = "\n  " + rank_name(ctx, r);
      const std::string number = std::string("#").append(std::to_string(sequence));
      if (s.issued <= static_cast<std::int64_t>(sequence))
        behind += rank_text + " has not issued " + number + ": " + doing(s, now);
      else if (mine && s.waiting.sequence == static_cast<std::int64_t>(sequence) && !same_collective(s.waiting, waited))
        different += rank_text + " issued " + number + " as " + collective_text(s.waiting, false) + " (this rank: " +
                     collective_text(waited, false) + ")";
      else if (s.waiting.sequence >= 0 && s.waiting.sequence < static_cast<std::int64_t>(sequence))
        earlier += rank_text + " waits on " + collective_text(s.waiting) + (s.gave_up ? " (timed out)" : "");
      else if (s.waiting.sequence < 0)
        not_waiting += rank_text;
    }
    if (!behind.empty()) report += "\nRanks that have not reached #" + std::to_string(sequence) + ":" + behind;
    if (!different.empty())
      report += "\nRanks that issued a different collective as #" + std::to_string(sequence) +
                " (a rank skipped or reordered a collective):" + different;
    // A rank whose part of an earlier collective is unfinished (stopped inside it, say) holds
    // this one up too: it has issued this one (a prefetch) but cannot serve it yet.
    if (!earlier.empty())
      report += "\nRanks still in an earlier collective (if one is stopped or stalled there, it holds #" +
                std::to_string(sequence) + " up):" + earlier;
    // Only a communicator with ranks out of sight (other nodes) can be held up by them or by the
    // network between nodes; on one node the ranks listed below are all there is.
    const bool one_node = unseen.empty();
    const bool explained = !behind.empty() || !different.empty() || !earlier.empty();
    if (!explained && !not_waiting.empty())
      report += "\nEvery rank of this node has issued #" + std::to_string(sequence) +
                ". These are not waiting on any collective, so their part should progress in the background: "
                "if one of these processes is stopped or stalled it holds the collective up" +
                (one_node ? std::string(":") : std::string(", otherwise a rank on another node or the network does:")) +
                not_waiting;
    else if (!explained && one_node)
      report += "\nEvery rank has issued #" + std::to_string(sequence) +
                " and is waiting on a collective, all on this node: no rank is missing. Compare what each waits on "
                "below (one waiting on an earlier or later collective than the others), or the transport stalls "
                "(a process stopped inside MPI).";
    else if (!explained)
      report += "\nEvery rank of this node has issued #" + std::to_string(sequence) +
                "; a rank on another node, or the network, holds it up.";
    report += "\nEvery rank of this node:";
    for (int r = 0; r < ctx.size; ++r)
      if (peers[static_cast<std::size_t>(r)].visible)
        report += "\n  " + rank_name(ctx, r) + ": " + doing(peers[static_cast<std::size_t>(r)], now);
    if (!unseen.empty()) report += "\n  ranks not visible from here (other nodes; see their own reports):" + unseen;
  }
  report += "\nThis rank's last collectives (flight recorder, oldest first):";
  for (const CollectiveRecord& r : ctx.recorder.records()) report += "\n  " + r.describe(now);
  report += "\nThe collective was abandoned: this communicator cannot be used again; end the job (the examples "
            "abort it). Raise communication.timeout_s if a step legitimately takes longer.";
  return report;
}

}  // namespace zs::detail
