// ZeroShard's side of the peer benchmark (bench/peer/peer_bench.py runs it next to PyTorch's
// bench/peer/torch_step.py; one configuration per launch). Model, data and optimizer mirror
// torch_step.py: `layers` x (Linear(width, width) + ReLU), MSE against a fixed target, batch
// `batch` per rank, AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0.01).
//
//   zs-mpirun -np 2 build/bench/zs_peer_step --stage 3 [--layers 8] [--width 2048] [--batch 32]
//        [--steps 10] [--warmup 2] [--threads 0] [--profile TRACE.json] [--node-shared 0|1]
//        [--reduce-scatter ALGORITHM] [--all-gather ALGORITHM] [--segment-bytes N]   (communication.*)
//        [--in-backward 0|1]   (optimizer.in_backward: each unit updated during backward)
//
// Prints one JSON line (rank 0): per-step times of the slowest rank, forward+backward and
// optimizer medians, RSS high-water above the process floor (after MPI_Init, before the model),
// the same right after the engine is built (the construction peak), and page faults per timed
// step; maxima over ranks; and the build's SIMD level.
#include <mpi.h>
#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "zeroshard/build_info.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/nn/compute_threads.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace {

struct Options {
  int stage = 0;
  int layers = 8;
  std::int64_t width = 2048;
  std::int64_t batch = 32;
  int steps = 10;
  int warmup = 2;
  int threads = 0;
  std::string profile;  // write the timeline of timed steps 1-3 here (the profiler's trace)
  bool node_shared = false;  // zero_optimization.node_shared_parameters
  bool in_backward = false;  // optimizer.in_backward
  zs::CommunicatorConfig collectives;  // communication.reduce_scatter / all_gather
};

long long whole(const std::string& option, const char* text, long long low) {
  std::size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || text[used] != '\0' || value < low)
    throw zs::InvalidArgument(option + ": '" + text + "' is not a whole number >= " + std::to_string(low));
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (i + 1 >= argc) throw zs::InvalidArgument(arg + " needs a value");
    const char* v = argv[i + 1];
    if (arg == "--stage") o.stage = static_cast<int>(whole(arg, v, 0));
    else if (arg == "--layers") o.layers = static_cast<int>(whole(arg, v, 1));
    else if (arg == "--width") o.width = whole(arg, v, 1);
    else if (arg == "--batch") o.batch = whole(arg, v, 1);
    else if (arg == "--steps") o.steps = static_cast<int>(whole(arg, v, 1));
    else if (arg == "--warmup") o.warmup = static_cast<int>(whole(arg, v, 0));
    else if (arg == "--threads") o.threads = static_cast<int>(whole(arg, v, 0));
    else if (arg == "--profile") o.profile = v;
    else if (arg == "--node-shared") o.node_shared = whole(arg, v, 0) != 0;
    else if (arg == "--in-backward") o.in_backward = whole(arg, v, 0) != 0;
    else if (arg == "--reduce-scatter") o.collectives.reduce_scatter = zs::parse_algorithm(v);
    else if (arg == "--all-gather") o.collectives.all_gather = zs::parse_algorithm(v);
    else if (arg == "--segment-bytes") o.collectives.segment_bytes = static_cast<std::size_t>(whole(arg, v, 64));
    else throw zs::InvalidArgument("unknown option " + arg + " (see the comment at the top of bench/peer_step.cpp)");
  }
  return o;
}

struct Usage {
  double rss_mib = 0, faults = 0;
};
Usage usage() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return {r.ru_maxrss / 1024.0, static_cast<double>(r.ru_minflt + r.ru_majflt)};  // Linux: KiB
}

// The deterministic pattern torch_step.py uses, per rank.
void fill_pattern(zs::Tensor& t, std::int64_t multiplier, int rank_offset) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    t.data()[i] = static_cast<float>((i * multiplier + rank_offset) % 1000) / 1000.0f - 0.5f;
}

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  try {
    const Options o = parse(argc, argv);
    zs::Communicator comm(MPI_COMM_WORLD, o.collectives);
    const int r = comm.rank();
    const Usage floor = usage();

    auto model = std::make_unique<zs::nn::Sequential>("mlp");
    for (int l = 0; l < o.layers; ++l) {
      model->add<zs::nn::Linear>("fc" + std::to_string(l), o.width, o.width);
      model->add<zs::nn::ReLU>("act" + std::to_string(l));
    }
    zs::EngineConfig config;
    config.stage = o.stage;
    config.optimizer.kind = zs::OptimizerKind::adamw;
    config.optimizer.weight_decay = 0.01;
    config.compute_threads = o.threads;
    config.node_shared_parameters = o.node_shared;
    config.optimizer_in_backward = o.in_backward;
    if (!o.profile.empty()) {
      config.profiler.enabled = true;
      config.profiler.first_step = o.warmup + 1;
      config.profiler.end_step = o.warmup + 4;
      config.profiler.output = o.profile;
    }
    zs::Engine engine(*model, config, comm);
    const Usage constructed = usage();

    zs::Tensor x({o.batch, o.width}), y({o.batch, o.width}), grad({o.batch, o.width});
    fill_pattern(x, 7919, r * 13);
    fill_pattern(y, 104729, r * 17);
    std::vector<double> steps, forward_backward, update;
    double loss = 0, faults_start = 0;
    for (int s = 0; s < o.warmup + o.steps; ++s) {
      if (s == o.warmup) faults_start = usage().faults;
      ZS_MPI_CHECK(MPI_Barrier(comm.handle()));
      const double t0 = MPI_Wtime();
      const zs::Tensor& out = engine.forward(x);
      // MSE: mean((out - y)^2); d/d out = 2 (out - y) / numel.
      loss = 0;
      const float scale = 2.0f / static_cast<float>(out.numel());
      for (std::int64_t i = 0; i < out.numel(); ++i) {
        const float d = out.data()[i] - y.data()[i];
        loss += static_cast<double>(d) * d;
        grad.data()[i] = scale * d;
      }
      loss /= static_cast<double>(out.numel());
      engine.backward(grad);
      const double t1 = MPI_Wtime();
      engine.step();
      const double t2 = MPI_Wtime();
      double t[3] = {t1 - t0, t2 - t1, t2 - t0};
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t, 3, MPI_DOUBLE, MPI_MAX, comm.handle()));
      if (s >= o.warmup) {
        forward_backward.push_back(t[0]);
        update.push_back(t[1]);
        steps.push_back(t[2]);
      }
    }
    const Usage end = usage();
    double mine[4] = {end.rss_mib - floor.rss_mib, constructed.rss_mib - floor.rss_mib,
                      (end.faults - faults_start) / o.steps, floor.rss_mib};
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, mine, 4, MPI_DOUBLE, MPI_MAX, comm.handle()));
    if (r == 0) {
      const std::string build = zs::describe_build() + ", GEMM " + zs::nn::gemm_backend();
      std::string step_list;
      for (double s : steps) step_list += (step_list.empty() ? "" : ", ") + std::to_string(1e3 * s);
      std::printf("{\"runtime\": \"zeroshard\", \"strategy\": \"stage%d\", \"ranks\": %d, \"threads\": %d, \"layers\": %d, "
                  "\"width\": %lld, \"batch\": %lld, \"loss\": %.6g, \"step_ms\": [%s], \"fwd_bwd_ms\": %.3f, "
                  "\"optimizer_ms\": %.3f, \"peak_above_floor_mib\": %.1f, \"construction_above_floor_mib\": %.1f, "
                  "\"faults_per_step\": %.1f, \"floor_mib\": %.1f, \"model_state_mib\": %.1f, \"build\": \"%s\"}\n",
                  o.stage, comm.size(), engine.compute_threads(), o.layers, static_cast<long long>(o.width),
                  static_cast<long long>(o.batch), loss, step_list.c_str(), 1e3 * median(forward_backward),
                  1e3 * median(update), mine[0], mine[1], mine[2], mine[3],
                  engine.model_state_bytes().total() / (1024.0 * 1024.0), build.c_str());
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_peer_step (%s): %s\n", zs::rank_and_host().c_str(), e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
