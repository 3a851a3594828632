// Checkpoint benchmark: save and load throughput of Engine::save / load next to the raw
// sequential write (write + fsync) and read of the same number of bytes per rank to the same
// directory, measured in the same run; and how long a save blocks training, sync vs async.
// Built against parallel HDF5, it also times shared-file mode (one file, collective MPI-IO)
// next to per-rank mode in the same run.
//
//   zs-mpirun -np N build/bench/zs_checkpoint_bench [--sizes-mb 100,500,2000] [--dir /tmp/zs_ckpt_bench]
//
// Size = bytes saved across all ranks (fp32 parameters + AdamW's two states: 12 bytes per
// parameter), the model an MLP of 8 square Linear layers at stage 3. Times are the slowest
// rank's; GB/s aggregate = size / time, per rank = size / ranks / time. Reads of files just
// written come from the page cache for both columns alike (no cache dropping without root).
// Loads are the median of 3. "manifest check s" is the part of a load that checks the rank's
// files against the tag's manifest before HDF5 opens them (the index and the rank's data
// file, each read once, as Engine::load does at the saved world size), timed alone. "load /
// without manifest" compares the load with a load of the same files as a checkpoint saved
// before manifests (a copy without manifest.txt: no whole-file check, block CRCs instead),
// alternating, in the same run: what the manifest costs a load (> 1: slower).
#include <fcntl.h>
#include <mpi.h>
#include <unistd.h>

#include <hdf5.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include "zeroshard/build_info.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace {

struct Options {
  std::vector<std::int64_t> sizes_mb = {100, 500, 2000};
  std::string dir = "/tmp/zs_ckpt_bench";
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::puts("zs_checkpoint_bench [--sizes-mb 100,500,2000] [--dir DIR]   (bench/checkpoint_bench.cpp's header)");
      MPI_Finalize();  // --help ends the job cleanly (mpirun reports an exit without it)
      std::exit(0);
    }
    if (i + 1 >= argc) throw zs::InvalidArgument(arg + " needs a value");
    if (arg == "--sizes-mb") {
      o.sizes_mb.clear();
      std::stringstream in(argv[i + 1]);
      for (std::string part; std::getline(in, part, ',');) o.sizes_mb.push_back(std::stoll(part));
    } else if (arg == "--dir") {
      o.dir = argv[i + 1];
    } else {
      throw zs::InvalidArgument("unknown option " + arg + " (--sizes-mb A,B,C --dir DIR)");
    }
  }
  return o;
}

using Clock = std::chrono::steady_clock;

// Seconds `body` takes on the slowest rank (all ranks start together).
template <class F>
double timed(zs::Communicator& comm, F&& body) {
  comm.barrier();
  const auto start = Clock::now();
  body();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &seconds, 1, MPI_DOUBLE, MPI_MAX, comm.handle()));
  return seconds;
}

void raw_write(const std::string& path, const std::vector<char>& bytes) {
  const int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) throw zs::Error("cannot create " + path);
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::write(fd, bytes.data() + done, std::min<std::size_t>(bytes.size() - done, 64 << 20));
    if (n <= 0) throw zs::Error("write failed on " + path);
    done += static_cast<std::size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

void raw_read(const std::string& path, std::vector<char>& bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw zs::Error("cannot open " + path);
  for (std::size_t done = 0; done < bytes.size();) {
    const ssize_t n = ::read(fd, bytes.data() + done, std::min<std::size_t>(bytes.size() - done, 64 << 20));
    if (n <= 0) throw zs::Error("read failed on " + path);
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  zs::Communicator comm;
  const int rank = comm.rank(), world = comm.size();
  const bool shared = zs::checkpoint::parallel_hdf5_available();
  try {
    const Options options = parse(argc, argv);
    if (rank == 0) {
      std::filesystem::remove_all(options.dir);
      std::filesystem::create_directories(options.dir);
      std::printf("checkpoint benchmark: %d ranks, directory %s, stage 3, AdamW (12 bytes saved per parameter); %s\n\n",
                  world, options.dir.c_str(), zs::describe_build().c_str());
      std::printf("| state MB | ranks | raw write GB/s | save GB/s (per rank) | save / raw | first save s | raw read GB/s | load GB/s (per rank) | load / raw | manifest check s | load / without manifest | sync save blocks s | async save blocks s | async save total s |%s\n",
                  shared ? " shared-file save GB/s | shared-file save speed / per-rank | shared-file load GB/s |" : "");
      std::printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|%s\n", shared ? "---|---|---|" : "");
    }
    comm.barrier();
    for (const std::int64_t size_mb : options.sizes_mb) {
      const double bytes_total = static_cast<double>(size_mb) * 1e6;
      const auto width = static_cast<std::int64_t>(std::sqrt(bytes_total / 12.0 / 8.0));
      zs::nn::Sequential model("mlp");
      for (int l = 0; l < 8; ++l) model.add<zs::nn::Linear>("fc" + std::to_string(l), width, width);
      zs::EngineConfig config;
      config.stage = 3;
      zs::Engine engine(model, config, comm);
      const double saved = 12.0 * static_cast<double>(engine.parameter_count());

      std::vector<char> raw(static_cast<std::size_t>(saved / world));
      for (std::size_t i = 0; i < raw.size(); i += 4096) raw[i] = static_cast<char>(i);
      const std::string raw_path = options.dir + "/raw_" + std::to_string(rank) + ".bin";
      const double raw_write_s = timed(comm, [&] { raw_write(raw_path, raw); });
      const double raw_read_s = timed(comm, [&] { raw_read(raw_path, raw); });
      std::filesystem::remove(raw_path);

      // Steady state, as in a run that checkpoints repeatedly: the first save also faults in
      // the memory the files are built in (kept for later saves); it is reported apart.
      const double first_save_s = timed(comm, [&] { engine.save(options.dir, "first"); });
      const double save_s = timed(comm, [&] { engine.save(options.dir, "sync"); });
      // The same checkpoint as one saved before manifests: the files copied, without the
      // manifest and the index's `manifest` attribute (Engine::load warns about it on stderr).
      if (rank == 0) {
        std::filesystem::copy(options.dir + "/sync", options.dir + "/legacy", std::filesystem::copy_options::recursive);
        std::filesystem::remove(options.dir + "/legacy/" + zs::checkpoint::kManifestFileName);
        const std::string index = options.dir + "/legacy/" + zs::checkpoint::kIndexFileName;
        const hid_t file = H5Fopen(index.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
        if (file < 0 || H5Adelete(file, "manifest") < 0) throw zs::Error("cannot strip the manifest of " + index);
        H5Fclose(file);
      }
      std::vector<double> loads, legacy_loads;
      for (int repeat = 0; repeat < 3; ++repeat) {
        loads.push_back(timed(comm, [&] { engine.load(options.dir, "sync"); }));
        legacy_loads.push_back(timed(comm, [&] { engine.load(options.dir, "legacy"); }));
      }
      const double load_s = median(loads), legacy_load_s = median(legacy_loads);
      const double check_s = timed(comm, [&] {
        zs::checkpoint::TagFiles files(options.dir + "/sync");
        files.require_intact(zs::checkpoint::kIndexFileName);
        files.require_intact(zs::checkpoint::shard_file_name(rank));
      });
      zs::checkpoint::CheckpointConfig async;
      async.async = true;
      engine.set_checkpoint_config(async);
      const double blocked_s = timed(comm, [&] { engine.save(options.dir, "async"); });
      const double finish_s = timed(comm, [&] { engine.wait_for_checkpoint(); });
      double shared_save_s = 0, shared_load_s = 0;
      if (shared) {
        zs::checkpoint::CheckpointConfig one_file;
        one_file.mode = zs::checkpoint::CheckpointMode::shared_file;
        engine.set_checkpoint_config(one_file);
        shared_save_s = timed(comm, [&] { engine.save(options.dir, "shared"); });
        shared_load_s = timed(comm, [&] { engine.load(options.dir, "shared"); });
      }
      comm.barrier();
      if (rank == 0) {
        for (const char* tag : {"/sync", "/first", "/async", "/shared", "/legacy"}) std::filesystem::remove_all(options.dir + tag);
        auto gbps = [&](double s) { return saved / s / 1e9; };
        std::printf("| %.0f | %d | %.2f | %.2f (%.2f) | %.2f | %.2f | %.2f | %.2f (%.2f) | %.2f | %.3f | %.2f | %.3f | %.3f | %.3f |",
                    saved / 1e6, world, gbps(raw_write_s), gbps(save_s), gbps(save_s) / world, raw_write_s / save_s,
                    first_save_s, gbps(raw_read_s), gbps(load_s), gbps(load_s) / world, raw_read_s / load_s, check_s,
                    load_s / legacy_load_s, save_s, blocked_s, blocked_s + finish_s);
        if (shared)
          std::printf(" %.2f | %.2f | %.2f |", gbps(shared_save_s), save_s / shared_save_s, gbps(shared_load_s));
        std::printf("\n");
        std::fflush(stdout);
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_checkpoint_bench (%s): %s\n", zs::rank_and_host().c_str(), e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
