#include "profiler.hpp"

#include <unistd.h>

#include <climits>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/trace_writer.hpp"
#include "zeroshard/timeline.hpp"

namespace zs::detail {

namespace {

// Events reserved per rank per recording (~100 bytes each, reserved only while profiling); a
// step of the examples records a few hundred.
constexpr std::size_t kMaxEvents = std::size_t{1} << 17;
constexpr int kPings = 8;
constexpr int kTag = 1;

// Waits for `requests` like a collective wait: with the communicator's timeout, never forever.
void wait_all(std::vector<MPI_Request>& requests, const Communicator& comm, const char* what) {
  const double timeout_s = comm.config().timeout_s;
  const std::int64_t deadline = timeline::now_ns() + static_cast<std::int64_t>(timeout_s * 1e9);
  for (;;) {
    int done = 0;
    ZS_MPI_CHECK(MPI_Testall(static_cast<int>(requests.size()), requests.data(), &done, MPI_STATUSES_IGNORE));
    if (done) return;
    if (timeout_s > 0 && timeline::now_ns() > deadline) {
      for (MPI_Request& r : requests)
        if (r != MPI_REQUEST_NULL) MPI_Request_free(&r);
      throw TimeoutError(rank_and_host() + ": profiler: " + what + " did not complete within communication.timeout_s = " +
                         std::to_string(timeout_s) + " s: a rank did not reach the same step");
    }
    std::this_thread::yield();
  }
}

std::string host_name() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

std::string trace_path(const std::string& output) {
  const bool has_suffix = output.size() >= 5 && output.compare(output.size() - 5, 5, ".json") == 0;
  return has_suffix ? output : output + ".json";
}

Profiler::Profiler(const ProfilerConfig& config, const Communicator& comm)
    : config_(config), comm_(comm.handle(), comm.config()) {}

void Profiler::before_forward(std::int64_t step) {
  if (recording_ || done_ || step < config_.first_step || step >= config_.end_step) return;
  if (timeline::enabled())
    throw InvalidArgument("profiler.enabled: another engine of this process is recording a timeline; profile one "
                          "engine at a time");
  align_clocks();
  first_recorded_ = step;
  recording_ = true;
  timeline::name_this_thread("training");
  timeline::start(kMaxEvents);
}

void Profiler::after_step(std::int64_t steps_done) {
  if (recording_ && steps_done >= config_.end_step) write();
}

void Profiler::finish() {
  if (recording_) write();
}

void Profiler::align_clocks() {
  const int rank = comm_.rank();
  const MPI_Comm comm = comm_.handle();
  if (rank == 0) {
    origin_ns_ = timeline::now_ns();
    offset_ns_ = 0;
    for (int peer = 1; peer < comm_.size(); ++peer) {
      std::int64_t best_round_trip = INT64_MAX, best_offset = 0;
      for (int k = 0; k < kPings; ++k) {
        std::int64_t sent = timeline::now_ns(), reply = 0;
        std::vector<MPI_Request> requests(2);
        ZS_MPI_CHECK(MPI_Irecv(&reply, 1, MPI_INT64_T, peer, kTag, comm, &requests[1]));
        ZS_MPI_CHECK(MPI_Isend(&sent, 1, MPI_INT64_T, peer, kTag, comm, &requests[0]));
        wait_all(requests, comm_, "clock alignment");
        const std::int64_t received = timeline::now_ns();
        if (received - sent < best_round_trip) {
          best_round_trip = received - sent;
          best_offset = (sent + received) / 2 - reply;
        }
      }
      std::int64_t answer[2] = {best_offset, origin_ns_};
      std::vector<MPI_Request> request(1);
      ZS_MPI_CHECK(MPI_Isend(answer, 2, MPI_INT64_T, peer, kTag, comm, &request[0]));
      wait_all(request, comm_, "clock alignment");
    }
  } else {
    for (int k = 0; k < kPings; ++k) {
      std::int64_t ping = 0;
      std::vector<MPI_Request> request(1);
      ZS_MPI_CHECK(MPI_Irecv(&ping, 1, MPI_INT64_T, 0, kTag, comm, &request[0]));
      wait_all(request, comm_, "clock alignment");
      std::int64_t now = timeline::now_ns();
      ZS_MPI_CHECK(MPI_Isend(&now, 1, MPI_INT64_T, 0, kTag, comm, &request[0]));
      wait_all(request, comm_, "clock alignment");
    }
    std::int64_t answer[2] = {0, 0};
    std::vector<MPI_Request> request(1);
    ZS_MPI_CHECK(MPI_Irecv(answer, 2, MPI_INT64_T, 0, kTag, comm, &request[0]));
    wait_all(request, comm_, "clock alignment");
    offset_ns_ = answer[0];
    origin_ns_ = answer[1];
  }
}

void Profiler::write() {
  std::size_t dropped = 0;
  runtime::RankTimeline mine{.rank = comm_.rank(), .host = host_name(), .events = timeline::stop(&dropped),
                             .thread_names = {}, .clock_offset_ns = offset_ns_, .origin_ns = origin_ns_};
  recording_ = false;
  done_ = true;
  int threads = 0;
  for (const timeline::Event& e : mine.events) threads = std::max(threads, e.thread + 1);
  for (int t = 0; t < threads; ++t) mine.thread_names.push_back(timeline::thread_name(t));
  const std::string text = runtime::chrome_trace_events(mine);
  if (text.size() > static_cast<std::size_t>(INT_MAX))
    throw InvalidArgument("profiler: rank " + std::to_string(comm_.rank()) + "'s trace exceeds 2 GiB: record fewer steps");

  // Every rank's events to rank 0, which merges them into one document.
  const int size = comm_.size();
  int length = static_cast<int>(text.size());
  std::vector<int> lengths(static_cast<std::size_t>(size)), starts(static_cast<std::size_t>(size));
  std::vector<MPI_Request> request(1);
  ZS_MPI_CHECK(MPI_Igather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, comm_.handle(), &request[0]));
  wait_all(request, comm_, "gathering the ranks' traces");
  std::int64_t total = 0;
  for (int r = 0; r < size; ++r) {
    starts[static_cast<std::size_t>(r)] = static_cast<int>(total);
    total += lengths[static_cast<std::size_t>(r)];
  }
  if (comm_.rank() == 0 && total > INT_MAX)
    throw InvalidArgument("profiler: the ranks' traces exceed 2 GiB together: record fewer steps");
  std::string all(comm_.rank() == 0 ? static_cast<std::size_t>(total) : 0, '\0');
  ZS_MPI_CHECK(MPI_Igatherv(text.data(), length, MPI_CHAR, all.data(), lengths.data(), starts.data(), MPI_CHAR, 0,
                            comm_.handle(), &request[0]));
  wait_all(request, comm_, "gathering the ranks' traces");

  const std::string path = trace_path(config_.output);
  std::string error;
  if (comm_.rank() == 0) {
    try {
      std::vector<std::string> arrays;
      for (int r = 0; r < size; ++r)
        arrays.push_back(all.substr(static_cast<std::size_t>(starts[static_cast<std::size_t>(r)]),
                                    static_cast<std::size_t>(lengths[static_cast<std::size_t>(r)])));
      const std::string document = runtime::merge_chrome_traces(
          arrays, {{"producer", "ZeroShard profiler"},
                   {"steps", std::to_string(first_recorded_) + ":" + std::to_string(config_.end_step)},
                   {"ranks", std::to_string(size)},
                   {"clock_alignment", "per rank, the shortest of 8 ping-pongs with rank 0 (Cristian's algorithm)"},
                   {"dropped_events_rank0", std::to_string(dropped)}});
      std::ofstream file(path, std::ios::binary | std::ios::trunc);
      file << document;
      file.close();
      if (!file) error = "cannot write '" + path + "': check profiler.output's directory and permissions";
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  // Every rank learns whether rank 0 managed, so all go on or all throw.
  std::int64_t failed = error.empty() ? 0 : 1;
  comm_.all_reduce_scalars(std::span<std::int64_t>(&failed, 1), ScalarOp::max, "profiler outcome");
  if (failed)
    throw Error("profiler: rank 0 could not write the trace" + (error.empty() ? std::string(" (see rank 0's error)") : ": " + error));
  written_ = path;
}

}  // namespace zs::detail
