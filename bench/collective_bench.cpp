// Collective benchmark in the manner of nccl-tests: for each size, our ring reduce-scatter,
// all-gather and all-reduce next to MPI_Reduce_scatter_block, MPI_Allgather and MPI_Allreduce,
// in one run. Every size is checked for correctness (integer-valued inputs make the expected
// sums exact); wrong elements are summed over ranks and fail the run.
//
//   zs-mpirun -np 2 build/bench/zs_collective_bench [--min-bytes N] [--max-bytes N]
//        [--segment-bytes N] [--window N] [--gather-segment-bytes N] [--seconds-per-case S]
//
// Sizes are the full (unsharded) buffer S in bytes of float32; each size also has bfloat16 rows
// of the same element count (half the bytes; "speed-up vs MPI" against MPI's float32 time). Bus bandwidth as nccl-tests:
// reduce-scatter and all-gather busbw = S/t * (n-1)/n, all-reduce 2(n-1)/n. Time is the mean
// over iterations of the slowest rank's time (each iteration starts after a barrier): the
// median, because this 2-core machine's noise comes in bursts that a mean would smear in.
//
// Across nodes (the world spans m > 1 shared-memory nodes of k ranks each), also the
// hierarchical compositions of our ring collectives, to see whether they win across a link:
// reduce-scatter = reduce-scatter inside the node, then across nodes among the ranks with the
// same node rank; all-gather the reverse; all-reduce = node reduce-scatter, cross-node
// all-reduce, node all-gather. A flat ring over n = k m ranks placed node by node sends
// (n-1)/n of the buffer out of every node per reduce-scatter or all-gather; the hierarchical
// ones send k (m-1)/n = (m-1)/m of it (2 nodes x 2 ranks: 0.75 vs 0.5; docs/performance.md,
// "Across a link").
// Rank (node b, node rank a) then owns shard a*m + b, not its world rank's: a permutation of
// the flat layout, checked as such.
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "zeroshard/build_info.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"

namespace {

struct Options {
  std::int64_t min_bytes = 64 << 10;
  std::int64_t max_bytes = 256 << 20;
  std::size_t segment_bytes = zs::CommunicatorConfig{}.segment_bytes;
  int window = zs::CommunicatorConfig{}.receive_window;
  std::size_t gather_segment_bytes = zs::CommunicatorConfig{}.all_gather_segment_bytes;
  double seconds_per_case = 0.5;
};

std::int64_t parse_size(const std::string& text) {
  std::size_t used = 0;
  double value = std::stod(text, &used);
  const std::string unit = text.substr(used);
  if (unit == "K" || unit == "KiB") value *= 1024;
  else if (unit == "M" || unit == "MiB") value *= 1024 * 1024;
  else if (unit == "G" || unit == "GiB") value *= 1024.0 * 1024 * 1024;
  else if (!unit.empty()) throw zs::InvalidArgument("bad size '" + text + "': use a number with K, M or G");
  return static_cast<std::int64_t>(value);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw zs::InvalidArgument(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--min-bytes") o.min_bytes = parse_size(value());
    else if (arg == "--max-bytes") o.max_bytes = parse_size(value());
    else if (arg == "--segment-bytes") o.segment_bytes = parse_size(value());
    else if (arg == "--window") o.window = std::stoi(value());
    else if (arg == "--gather-segment-bytes") o.gather_segment_bytes = parse_size(value());
    else if (arg == "--seconds-per-case") o.seconds_per_case = std::stod(value());
    else if (arg == "--help") {
      std::puts("zs_collective_bench [--min-bytes 64K] [--max-bytes 256M] [--segment-bytes 1M] [--window 4] "
                "[--gather-segment-bytes 16M] [--seconds-per-case 0.5]");
      MPI_Finalize();  // --help ends the job cleanly (mpirun reports an exit without it)
      std::exit(0);
    } else throw zs::InvalidArgument("unknown option " + arg + " (see --help)");
  }
  return o;
}

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

struct Timing {
  double seconds = 0;       // median per iteration of the slowest rank
  double faults = 0;        // minor page faults per iteration, mean over ranks
};

// Runs `prepare` (untimed) and `run` (timed) repeatedly. The iteration count comes from rank
// 0's warm-up so every rank runs the same number of iterations.
Timing measure(MPI_Comm comm, double budget, const std::function<void()>& prepare,
               const std::function<void()>& run) {
  prepare();
  MPI_Barrier(comm);
  double start = MPI_Wtime();
  run();
  double warmup = MPI_Wtime() - start;
  int iterations = std::clamp(static_cast<int>(budget / std::max(warmup, 1e-6)), 5, 2000);
  ZS_MPI_CHECK(MPI_Bcast(&iterations, 1, MPI_INT, 0, comm));
  std::vector<double> times(iterations);
  long faults_before = minor_faults();
  for (int k = 0; k < iterations; ++k) {
    prepare();
    ZS_MPI_CHECK(MPI_Barrier(comm));
    start = MPI_Wtime();
    run();
    times[k] = MPI_Wtime() - start;
  }
  double faults = static_cast<double>(minor_faults() - faults_before) / iterations;
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, times.data(), iterations, MPI_DOUBLE, MPI_MAX, comm));
  std::nth_element(times.begin(), times.begin() + iterations / 2, times.end());
  const double median = times[iterations / 2];
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &faults, 1, MPI_DOUBLE, MPI_SUM, comm));
  int size = 1;
  MPI_Comm_size(comm, &size);
  return {median, faults / size};
}

float contribution(int rank, std::int64_t i) { return static_cast<float>((rank + 1) * (i % 7 + 1)); }

struct Row {
  std::string op, impl;
  std::int64_t bytes;
  Timing timing;
  double bus_factor;
  std::int64_t wrong;
  double baseline_seconds;  // 0 for the baseline itself
};

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  try {
    const Options options = parse(argc, argv);
    zs::CommunicatorConfig config;  // the defaults, but for the segment options below
    config.segment_bytes = options.segment_bytes;
    config.receive_window = options.window;
    config.all_gather_segment_bytes = options.gather_segment_bytes;
    zs::Communicator comm(MPI_COMM_WORLD, config);
    const int n = comm.size(), r = comm.rank();
    MPI_Comm raw = comm.handle();
    std::vector<Row> rows;
    std::int64_t total_wrong = 0;
    // Nodes of equal size, more than one: the hierarchical rows.
    zs::Communicator node = comm.split_shared_node();
    int node_sizes[2] = {-node.size(), node.size()};
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, node_sizes, 2, MPI_INT, MPI_MAX, raw));
    const int k = node.size(), m = n / k;
    const bool hierarchical = -node_sizes[0] == node_sizes[1] && m > 1;
    const bool one_node = k == n && n > 1;  // where the shared-memory algorithm runs
    zs::Communicator cross = comm.split(node.rank(), r);  // the ranks with this node rank, by node

    for (std::int64_t bytes = options.min_bytes; bytes <= options.max_bytes; bytes *= 4) {
      const std::int64_t shard = std::max<std::int64_t>(1, bytes / 4 / n);
      const std::int64_t count = shard * n;
      const std::int64_t full_bytes = count * 4;
      std::vector<float> input(count), work(count), out_shard(shard), out_full(count);
      for (std::int64_t i = 0; i < count; ++i) input[i] = contribution(r, i);
      const float sum_factor = n * (n + 1) / 2.0f;
      auto count_wrong = [&](const float* data, std::int64_t length, std::int64_t first, bool summed) {
        std::int64_t wrong = 0;
        for (std::int64_t i = 0; i < length; ++i) {
          const std::int64_t g = first + i;
          const float want = summed ? sum_factor * static_cast<float>(g % 7 + 1) : contribution(static_cast<int>(g / shard), g);
          wrong += data[i] != want;
        }
        ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &wrong, 1, MPI_INT64_T, MPI_SUM, raw));
        return wrong;
      };
      auto restore = [&] { std::memcpy(work.data(), input.data(), full_bytes); };
      auto own_input_shard = [&] {
        for (std::int64_t i = 0; i < shard; ++i) out_shard[i] = contribution(r, r * shard + i);
      };
      const double budget = options.seconds_per_case;
      const double rs_factor = (n - 1.0) / n, ar_factor = 2.0 * (n - 1.0) / n;

      // reduce-scatter
      Timing mpi_rs = measure(raw, budget, [] {}, [&] {
        ZS_MPI_CHECK(MPI_Reduce_scatter_block(input.data(), out_shard.data(), static_cast<int>(shard), MPI_FLOAT, MPI_SUM, raw));
      });
      std::int64_t wrong = count_wrong(out_shard.data(), shard, r * shard, true);
      rows.push_back({"reduce_scatter", "MPI_Reduce_scatter_block", full_bytes, mpi_rs, rs_factor, wrong, 0});
      const std::pair<zs::Algorithm, const char*> reductions[] = {
          {zs::Algorithm::ring, "zeroshard ring"},
          {zs::Algorithm::shared_memory, "zeroshard shared memory"},
          {zs::Algorithm::automatic, "zeroshard automatic (default)"}};
      Timing ring_rs;
      for (const auto& [algorithm, name] : reductions) {
        if (algorithm == zs::Algorithm::shared_memory && !one_node) continue;
        Timing ours = measure(raw, budget, restore, [&] {
          comm.reduce_scatter(std::span<float>(work), std::span<float>(out_shard), {.algorithm = algorithm}).wait();
        });
        if (algorithm == zs::Algorithm::ring) ring_rs = ours;
        wrong = count_wrong(out_shard.data(), shard, r * shard, true);
        rows.push_back({"reduce_scatter", name, full_bytes, ours, rs_factor, wrong, mpi_rs.seconds});
      }

      // The shard this rank owns after a hierarchical reduce-scatter (see the top).
      const std::int64_t hier_shard = hierarchical ? static_cast<std::int64_t>(node.rank()) * m + cross.rank() : r;
      std::vector<float> chunk(hierarchical ? static_cast<std::size_t>(shard) * m : 0);
      if (hierarchical) {
        Timing hier_rs = measure(raw, budget, restore, [&] {
          node.reduce_scatter(std::span<float>(work), std::span<float>(chunk)).wait();
          cross.reduce_scatter(std::span<float>(chunk), std::span<float>(out_shard)).wait();
        });
        wrong = count_wrong(out_shard.data(), shard, hier_shard * shard, true);
        rows.push_back({"reduce_scatter", "zeroshard hierarchical (node ring, then across)", full_bytes, hier_rs, rs_factor,
                        wrong, mpi_rs.seconds});
      }

      // all-gather
      Timing mpi_ag = measure(raw, budget, own_input_shard, [&] {
        ZS_MPI_CHECK(MPI_Allgather(out_shard.data(), static_cast<int>(shard), MPI_FLOAT, out_full.data(),
                                   static_cast<int>(shard), MPI_FLOAT, raw));
      });
      wrong = count_wrong(out_full.data(), count, 0, false);
      rows.push_back({"all_gather", "MPI_Allgather", full_bytes, mpi_ag, rs_factor, wrong, 0});
      const std::pair<zs::Algorithm, const char*> gathers[] = {
          {zs::Algorithm::ring, "zeroshard ring"},
          {zs::Algorithm::recursive_doubling, "zeroshard recursive doubling"},
          {zs::Algorithm::mpi, "zeroshard mpi (MPI_Iallgather)"},
          {zs::Algorithm::shared_memory, "zeroshard shared memory"},
          {zs::Algorithm::automatic, "zeroshard automatic (default)"}};
      for (const auto& [algorithm, name] : gathers) {
        if (algorithm == zs::Algorithm::recursive_doubling && (n & (n - 1)) != 0) continue;  // falls back to ring
        if (algorithm == zs::Algorithm::shared_memory && !one_node) continue;
        Timing ours = measure(raw, budget, own_input_shard, [&] {
          comm.all_gather(std::span<float>(out_shard), std::span<float>(out_full), {.algorithm = algorithm}).wait();
        });
        wrong = count_wrong(out_full.data(), count, 0, false);
        rows.push_back({"all_gather", name, full_bytes, ours, rs_factor, wrong, mpi_ag.seconds});
      }
      if (hierarchical) {
        // Each rank holds shard hier_shard of the input: the gathered buffer is the flat one.
        auto own_hier_shard = [&] {
          for (std::int64_t i = 0; i < shard; ++i)
            out_shard[i] = contribution(static_cast<int>(hier_shard), hier_shard * shard + i);
        };
        Timing hier_ag = measure(raw, budget, own_hier_shard, [&] {
          cross.all_gather(std::span<float>(out_shard), std::span<float>(chunk)).wait();
          node.all_gather(std::span<float>(chunk), std::span<float>(out_full)).wait();
        });
        wrong = count_wrong(out_full.data(), count, 0, false);
        rows.push_back({"all_gather", "zeroshard hierarchical (across, then node ring)", full_bytes, hier_ag, rs_factor,
                        wrong, mpi_ag.seconds});
      }

      // all-reduce
      Timing mpi_ar = measure(raw, budget, restore, [&] {
        ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, work.data(), static_cast<int>(count), MPI_FLOAT, MPI_SUM, raw));
      });
      wrong = count_wrong(work.data(), count, 0, true);
      rows.push_back({"all_reduce", "MPI_Allreduce", full_bytes, mpi_ar, ar_factor, wrong, 0});
      Timing ring_ar = measure(raw, budget, restore, [&] { comm.all_reduce(std::span<float>(work)).wait(); });
      wrong = count_wrong(work.data(), count, 0, true);
      rows.push_back({"all_reduce", "zeroshard default (automatic rs + ag)", full_bytes, ring_ar, ar_factor, wrong,
                      mpi_ar.seconds});
      if (hierarchical) {
        Timing hier_ar = measure(raw, budget, restore, [&] {
          node.reduce_scatter(std::span<float>(work), std::span<float>(chunk)).wait();
          cross.all_reduce(std::span<float>(chunk)).wait();
          node.all_gather(std::span<float>(chunk), std::span<float>(work)).wait();
        });
        wrong = count_wrong(work.data(), count, 0, true);
        rows.push_back({"all_reduce", "zeroshard hierarchical (node rs, across ar, node ag)", full_bytes, hier_ar,
                        ar_factor, wrong, mpi_ar.seconds});
      }

      // The same element counts in bfloat16 (mixed precision's gradients and parameters): half
      // the bytes; the values are small integers, exact in bfloat16 at every partial sum.
      std::vector<zs::bfloat16> input16(count), work16(count), shard16(shard), full16(count);
      for (std::int64_t i = 0; i < count; ++i) input16[i] = zs::to_bfloat16(input[i]);
      std::vector<float> widened(count);
      auto wrong16 = [&](const std::vector<zs::bfloat16>& data, std::int64_t length, std::int64_t first, bool summed) {
        for (std::int64_t i = 0; i < length; ++i) widened[i] = zs::to_float(data[i]);
        return count_wrong(widened.data(), length, first, summed);
      };
      auto restore16 = [&] { std::memcpy(work16.data(), input16.data(), count * sizeof(zs::bfloat16)); };
      auto own_shard16 = [&] {
        for (std::int64_t i = 0; i < shard; ++i) shard16[i] = zs::to_bfloat16(contribution(r, r * shard + i));
      };
      Timing rs16 = measure(raw, budget, restore16, [&] {
        comm.reduce_scatter(std::span<zs::bfloat16>(work16), std::span<zs::bfloat16>(shard16)).wait();
      });
      rows.push_back({"reduce_scatter", "zeroshard ring, bfloat16 (same elements)", full_bytes / 2, rs16, rs_factor,
                      wrong16(shard16, shard, r * shard, true), mpi_rs.seconds});
      Timing ag16 = measure(raw, budget, own_shard16, [&] {
        comm.all_gather(std::span<zs::bfloat16>(shard16), std::span<zs::bfloat16>(full16)).wait();
      });
      rows.push_back({"all_gather", "zeroshard automatic, bfloat16 (same elements)", full_bytes / 2, ag16, rs_factor,
                      wrong16(full16, count, 0, false), mpi_ag.seconds});
      Timing ar16 = measure(raw, budget, restore16, [&] { comm.all_reduce(std::span<zs::bfloat16>(work16)).wait(); });
      rows.push_back({"all_reduce", "zeroshard default, bfloat16 (same elements)", full_bytes / 2, ar16, ar_factor,
                      wrong16(work16, count, 0, true), mpi_ar.seconds});
    }

    for (const Row& row : rows) total_wrong += row.wrong;
    if (r == 0) {
      std::printf("ZeroShard collective benchmark: %d ranks, float32, reduce-scatter segment %zu bytes x window %d, "
                  "all-gather segment %zu bytes; %s\n\n",
                  n, options.segment_bytes, options.window, options.gather_segment_bytes, zs::describe_build().c_str());
      std::printf("| op | size | implementation | time (us) | algbw (GB/s) | busbw (GB/s) | speed-up vs MPI | faults/iter | wrong |\n");
      std::printf("|---|---:|---|---:|---:|---:|---:|---:|---:|\n");
      for (const Row& row : rows) {
        const double algbw = row.bytes / row.timing.seconds / 1e9;
        char size[32], ratio[32];
        if (row.bytes >= (1 << 20)) std::snprintf(size, sizeof size, "%lld MiB", static_cast<long long>(row.bytes >> 20));
        else std::snprintf(size, sizeof size, "%lld KiB", static_cast<long long>(row.bytes >> 10));
        if (row.baseline_seconds > 0) std::snprintf(ratio, sizeof ratio, "%.2fx", row.baseline_seconds / row.timing.seconds);
        else std::snprintf(ratio, sizeof ratio, "(baseline)");
        std::printf("| %s | %s | %s | %.1f | %.2f | %.2f | %s | %.1f | %lld |\n", row.op.c_str(), size, row.impl.c_str(),
                    row.timing.seconds * 1e6, algbw, algbw * row.bus_factor, ratio, row.timing.faults,
                    static_cast<long long>(row.wrong));
      }
      std::printf("\n%s: %lld wrong elements in total\n", total_wrong ? "FAILED" : "OK", static_cast<long long>(total_wrong));
    }
    return total_wrong ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_collective_bench: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
