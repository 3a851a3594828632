#include "progress_estimates.hpp"

#include <mpi.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <thread>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::examples {

namespace {

// Float32 FLOPs per core per cycle of the vector ISA this file is compiled for.
constexpr double kFlopsPerCycle =
#if defined(__AVX512F__)
    64.0;
constexpr const char* kIsa = "AVX-512: 2 FMA pipes x 16 lanes x 2";
#elif defined(__AVX2__) && defined(__FMA__)
    32.0;
constexpr const char* kIsa = "AVX2+FMA: 2 FMA pipes x 8 lanes x 2";
#elif defined(__AVX__)
    16.0;
constexpr const char* kIsa = "AVX: 8 lanes x (multiply + add)";
#else
    8.0;
constexpr const char* kIsa = "SSE2: 4 lanes x (multiply + add)";
#endif

// The first "cpu MHz" of /proc/cpuinfo, in Hz; 0 if there is none.
double clock_hz() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);)
    if (line.rfind("cpu MHz", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return std::stod(line.substr(colon + 1)) * 1e6;
    }
  return 0;
}

}  // namespace

PeakFlops job_peak_flops(const Communicator& comm, double peak_tflops_option) {
  if (peak_tflops_option > 0) {
    char how[96];
    std::snprintf(how, sizeof how, "%.4g TFLOP/s (--peak-tflops)", peak_tflops_option);
    return {peak_tflops_option * 1e12, how};
  }
  MPI_Comm node = MPI_COMM_NULL;
  ZS_MPI_CHECK(MPI_Comm_split_type(comm.handle(), MPI_COMM_TYPE_SHARED, comm.rank(), MPI_INFO_NULL, &node));
  int node_rank = 0;
  ZS_MPI_CHECK(MPI_Comm_rank(node, &node_rank));
  ZS_MPI_CHECK(MPI_Comm_free(&node));
  const double cores = std::thread::hardware_concurrency();
  const double hz = clock_hz();
  // One leader per node counts its node; [flops, cores, nodes] summed over the job.
  double mine[3] = {node_rank == 0 ? cores * hz * kFlopsPerCycle : 0.0, node_rank == 0 ? cores : 0.0,
                    node_rank == 0 ? 1.0 : 0.0};
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mine, 3, MPI_DOUBLE, MPI_SUM, comm.handle()));
  char how[200];
  std::snprintf(how, sizeof how, "%.1f GFLOP/s detected: %.0f cores on %.0f node(s) x %.2f GHz x %.0f FLOPs/cycle (%s)",
                mine[0] / 1e9, mine[1], mine[2], hz / 1e9, kFlopsPerCycle, kIsa);
  return {mine[0], how};
}

void EtaEstimate::add_window(double seconds, std::int64_t steps) {
  if (steps <= 0 || !(seconds > 0)) return;
  const double per_step = seconds / static_cast<double>(steps);
  seconds_per_step_ = seconds_per_step_ == 0 ? per_step : 0.7 * seconds_per_step_ + 0.3 * per_step;
}

std::string planned_against_measured(const Engine& engine, std::int64_t training_peak) {
  const MemoryPlan* plan = engine.memory_plan();
  if (!plan || training_peak <= 0) return "";
  auto mib = [](std::int64_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0); };
  char text[256];
  std::snprintf(text, sizeof text,
                "planned peak %.3f MiB (training micro-batch) vs measured %.3f MiB in training (%+.2f%%); %.3f MiB "
                "with evaluation batches\n",
                mib(plan->peak), mib(training_peak),
                100.0 * static_cast<double>(plan->peak - training_peak) / static_cast<double>(training_peak),
                mib(engine.memory().high_water_total()));
  return text;
}

std::string format_duration(double seconds) {
  const auto total = static_cast<long long>(seconds + 0.5);
  char text[32];
  if (total >= 3600) std::snprintf(text, sizeof text, "%lldh%02lldm", total / 3600, total / 60 % 60);
  else std::snprintf(text, sizeof text, "%lld:%02lld", total / 60, total % 60);
  return text;
}

std::string skipped_step_reason(const Engine& engine) {
  char text[160];
  std::snprintf(text, sizeof text, "the gradient norm is %g (an inf or NaN gradient); parameters left unchanged",
                engine.gradient_norm());
  std::string reason = text;
  if (engine.config().precision.fp16) {
    std::snprintf(text, sizeof text, "; fp16 loss scale now %g", engine.loss_scale());
    reason += text;
  }
  return reason;
}

std::string loss_scale_text(const Engine& engine) {
  if (!engine.config().precision.fp16) return "";
  char text[64];
  std::snprintf(text, sizeof text, " loss-scale %g skipped %lld", engine.loss_scale(),
                static_cast<long long>(engine.skipped_steps()));
  return text;
}

}  // namespace zs::examples
