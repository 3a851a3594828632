// Collective traffic of a training step, flat ZeRO against hybrid sharding: bytes each rank
// sends per optimizer step within its shard group and across replicas
// (Engine::collective_bytes_sent: what a bandwidth-optimal ring sends), for stages 1-3 and
// every group size that divides the world size. Counts, not timings: they are exact and the
// same on every run, so the table has no spread. With one group per node (k ranks per node),
// "across groups" is what must cross the links between nodes; flat ZeRO's rings span every
// rank, so its traffic is the bound on what it sends over them.
//
//   zs-mpirun -np 4 build/bench/zs_traffic_bench [--layers 8] [--width 1024] [--batch 16] [--steps 2]
#include <mpi.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "option_values.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace {

// Sizes of the step benchmark's MLP and the steps averaged, from the command line (the
// examples' parser: whole numbers checked, unknown options named).
struct Options {
  int layers = 8;
  std::int64_t width = 1024, batch = 16;
  int steps = 2;
};

Options parse(int argc, char** argv) {
  Options o;
  for (zs::examples::CommandLine args(argc, argv); args.next();) {
    const std::string name = args.name();
    if (name == "--layers") o.layers = zs::examples::whole_number<int>(name, args.value());
    else if (name == "--width") o.width = zs::examples::whole_number<std::int64_t>(name, args.value());
    else if (name == "--batch") o.batch = zs::examples::whole_number<std::int64_t>(name, args.value());
    else if (name == "--steps") o.steps = zs::examples::whole_number<int>(name, args.value());
    else throw zs::InvalidArgument("unknown option " + name + " (--layers, --width, --batch, --steps)");
  }
  if (o.layers < 1 || o.width < 1 || o.batch < 1 || o.steps < 1)
    throw zs::InvalidArgument("--layers, --width, --batch and --steps must be >= 1");
  return o;
}

// The step benchmark's MLP: square Linear + ReLU layers, one unit per layer. Bytes per step.
zs::Engine::CollectiveBytes bytes_per_step(zs::Communicator& comm, const Options& o, int stage, int group_size,
                                           std::int64_t& parameters) {
  zs::nn::Sequential model("mlp");
  std::vector<std::size_t> starts;
  for (int l = 0; l < o.layers; ++l) {
    starts.push_back(model.children().size());
    model.add<zs::nn::Linear>("fc" + std::to_string(l), o.width, o.width);
    model.add<zs::nn::ReLU>("act" + std::to_string(l));
  }
  zs::EngineConfig config;
  config.stage = stage;
  config.shard_group_size = group_size;
  config.unit_starts = starts;
  config.memory.print_plan = false;
  zs::Engine engine(model, config, comm);
  parameters = engine.parameter_count();
  zs::Tensor x({o.batch, o.width}), g({o.batch, o.width});
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    x.data()[i] = static_cast<float>((i * 7 + comm.rank()) % 13) / 13.0f - 0.5f;
    g.data()[i] = 1e-3f * static_cast<float>((i % 5) - 2);
  }
  for (int s = 0; s < o.steps; ++s) {
    engine.forward(x);
    engine.backward(g);
    engine.step();
  }
  const zs::Engine::CollectiveBytes total = engine.collective_bytes_sent();
  return {total.within_shard_group / o.steps, total.across_replicas / o.steps};
}

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  try {
    const Options o = parse(argc, argv);
    zs::Communicator comm;
    const int n = comm.size();
    std::int64_t parameters = 0;
    std::vector<std::string> rows;
    for (int stage = 1; stage <= 3; ++stage) {
      const zs::Engine::CollectiveBytes flat = bytes_per_step(comm, o, stage, -1, parameters);
      for (int k = 1; k <= n; ++k) {
        if (n % k != 0) continue;
        const zs::Engine::CollectiveBytes b = k == n ? flat : bytes_per_step(comm, o, stage, k, parameters);
        char line[256];
        std::snprintf(line, sizeof line, "| %d | %s | %.3f | %.3f | %.3f | %s |\n", stage,
                      k == n ? "flat" : (std::to_string(k) + " x " + std::to_string(n / k)).c_str(),
                      static_cast<double>(b.within_shard_group) / 1e6, static_cast<double>(b.across_replicas) / 1e6,
                      static_cast<double>(b.within_shard_group + b.across_replicas) / 1e6,
                      k == n ? "-"
                             : (std::to_string(static_cast<double>(b.across_replicas) /
                                               static_cast<double>(flat.within_shard_group))
                                    .substr(0, 5) +
                                " (1/k = " + std::to_string(1.0 / k).substr(0, 5) + ")")
                                   .c_str());
        rows.push_back(line);
      }
    }
    if (comm.rank() == 0) {
      std::printf("collective bytes sent per rank per optimizer step: %d ranks, MLP %d x %lld^2 (%lld parameters, "
                  "float32), batch %lld, %d steps averaged\n\n",
                  n, o.layers, static_cast<long long>(o.width), static_cast<long long>(parameters),
                  static_cast<long long>(o.batch), o.steps);
      std::printf("| stage | groups (k ranks x replicas) | within group (MB) | across groups (MB) | total (MB) | "
                  "across / flat total |\n|---:|---|---:|---:|---:|---|\n");
      for (const std::string& row : rows) std::fputs(row.c_str(), stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_traffic_bench: %s\n", e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
