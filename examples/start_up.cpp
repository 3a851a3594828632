#include "start_up.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <mpi.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/collective_outcome.hpp"
#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/error.hpp"

namespace zs::examples {

namespace fs = std::filesystem;

void on_every_rank(Communicator& comm, const std::function<void()>& body) {
  try {
    checkpoint::run_on_all_ranks(comm, body);
  } catch (const checkpoint::CheckpointError& e) {  // raised on every rank alike
    throw RefusedOnEveryRank(e.what());
  }
}

std::int64_t fingerprint(const std::string& text) {
  std::uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return static_cast<std::int64_t>(hash);
}

void require_same_on_every_rank(const std::vector<AgreedValue>& values, const Communicator& comm) {
  std::vector<std::int64_t> numbers;
  for (const AgreedValue& v : values) numbers.push_back(v.value);
  const std::vector<RangeAcrossRanks> ranges = range_across_ranks(numbers, comm);
  std::string differing;
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (ranges[i].agreed()) continue;
    differing += "\n  - " + values[i].name +
                 (values[i].text ? " differs" : " is " + std::to_string(ranges[i].low) + " on some ranks, " +
                                                    std::to_string(ranges[i].high) + " on others");
  }
  if (!differing.empty())
    throw RefusedOnEveryRank("the ranks were started differently:" + differing +
                          "\n  Give every rank the same options, data and checkpoint directory (one command line "
                          "for the whole job, a directory every rank sees alike).");
}

std::int64_t latest_fingerprint(const std::string& save_dir) {
  if (save_dir.empty()) return 0;
  std::ifstream in(fs::path(save_dir) / "latest");
  if (!in) return 0;
  std::ostringstream text;
  text << in.rdbuf();
  return fingerprint("latest:" + text.str());
}

void require_writable_save_dir(const std::string& save_dir, Communicator& comm) {
  on_every_rank(comm, [&] {
    if (comm.rank() != 0) return;
    std::error_code ec;
    fs::create_directories(save_dir, ec);
    if (ec || !fs::is_directory(save_dir))
      throw checkpoint::CheckpointError("--save-dir " + save_dir + " cannot be created: " +
                                        (ec ? ec.message() : std::string("a file is in the way")) +
                                        ": choose a writable directory");
  });
  on_every_rank(comm, [&] {
    const std::string probe = (fs::path(save_dir) / (".write_probe_" + std::to_string(comm.rank()))).string();
    const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      throw checkpoint::CheckpointError("--save-dir " + save_dir + " is not writable: " + std::strerror(errno) +
                                        ": every rank writes its checkpoint shard there; choose a writable directory");
    ::close(fd);
    ::unlink(probe.c_str());
  });
}

void agree_on_options(std::vector<AgreedValue> options, const std::string& save_dir, bool resume, Communicator& comm) {
  options.push_back({"--resume", resume});
  options.push_back({"--save-dir", fingerprint(save_dir), true});
  options.push_back({"DIR/latest (the checkpoint --resume continues)", resume ? latest_fingerprint(save_dir) : 0, true});
  require_same_on_every_rank(options, comm);
  // Found now, not at the first save after the work is done.
  if (!save_dir.empty()) require_writable_save_dir(save_dir, comm);
}

int exit_on_error(const char* program, const std::exception& error) {
  const std::string prefix = rank_and_host();
  std::string message = error.what();
  if (message.rfind(prefix + ": ", 0) == 0) message.erase(0, prefix.size() + 2);
  std::fprintf(stderr, "%s (%s): %s\n", program, prefix.c_str(), message.c_str());
  std::fflush(stderr);
  if (dynamic_cast<const RefusedOnEveryRank*>(&error)) return 2;
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MPI_Abort(MPI_COMM_WORLD, 2);
  return 2;
}

}  // namespace zs::examples
