// Training-step benchmark: an MLP of `layers` square Linear layers (one unit per layer),
// stages 0-3 with overlap on and off, next to the compute-only time and the comm-only time
// (the same collectives a step issues, alone). One table.
//
// Compute only, per stage: forward + backward of a world of one with the same per-rank batch
// (run on every rank at once so the cores are as busy as in training), plus the optimizer
// update of the elements the stage updates on a rank: all Ψ at stage 0, Ψ/N at stages 1-3
// (the update is elementwise, so its time scales with the elements; the world of one's
// step() is timed apart and scaled). Without that split, stages 1-3 would be compared with a
// baseline that updates N times more than they do, and any step would look fully overlapped.
//
//   zs-mpirun -np 2 build/bench/zs_step_bench [--layers 8] [--width 2560] [--batch 16] [--steps 3]
//        [--prefetch-bytes 67108864] [--reductions-in-flight 2] [--all-gather automatic]
//        [--reduce-bucket-size 0] [--unit-order | --observability | --precision]
//        [--stages 0,1,2,3] [--overlap both|on|off] [--link-interface IFACE] [--KEY=VALUE ...]
//
// --KEY=VALUE applies a configuration override (docs/config.md, e.g.
// --communication.all_reduce=ring) to every engine of the table; the table's own stage and
// overlap columns still set zero_optimization.stage and overlap_comm per row.
// --link-interface IFACE adds "link bytes per step": the bytes each node's IFACE sent during the
// timed steps (its /sys/class/net/IFACE/statistics/tx_bytes, read by one rank per node between
// barriers), summed over nodes, divided by the steps: on the emulated cluster (scripts/zs-cluster,
// IFACE eth0) that is the traffic that crosses the links, headers included.
//
// --observability prints, instead, the cost of issue 18's timeline and hang detection at stage
// 3: steps with the profiler off (the default: communication.timeout_s = 600), on (recording
// every step), and with communication.timeout_s = 0 (no peer board, MPI_Waitsome waits), each
// its own engine over the same model, interleaved step by step (off, on, no-timeout, off, ...)
// so that machine noise hits all three alike; medians and quartiles of the slowest rank.
//
// --unit-order prints, instead, stage 3 steps driven by a ForwardProgram next to the plain
// forward: the same order every step (the cost of the cross-rank check and input copies), and
// one layer skipped per step, a different one each step (every forward leaves the recorded
// order: prefetching stops there and later units are gathered on demand).
//
// --precision prints, instead, float32 next to bf16 (bf16.enabled: 16-bit parameters and
// gradients in compute and on the wire, float32 masters) for stages 0-3: step time (the two
// engines interleaved step by step, medians and quartiles of the slowest rank), the bytes of
// the collective buffers one step issues (from the communicator's flight recorder; a ring
// moves (N-1)/N of an all-gather's or reduce-scatter's buffer per rank), and model-state
// memory per rank next to the ZeRO formula (16Ψ at stage 0 for both; K = 12 in bf16).
//
// overlap efficiency = hidden communication / comm-only, hidden = compute(stage) + comm-only -
// step, clipped to [0, 1]. Memory: this rank's peak of full (gathered) parameters, of full
// gradients and of gradient buckets, and its persistent model state, next to the ZeRO formula
// for fp32 Adam (16 bytes/parameter at stage 0, sharded per stage: docs/performance.md).
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "zeroshard/build_info.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/comm/mpi_environment.hpp"
#include "zeroshard/nn/compute_threads.hpp"
#include "zeroshard/runtime/config.hpp"
#include "zeroshard/runtime/engine.hpp"
#include "zeroshard/timeline.hpp"

namespace {

struct Options {
  int layers = 8;
  std::int64_t width = 2560;
  std::int64_t batch = 16;
  int steps = 3;
  bool unit_order = false;
  bool observability = false;
  bool precision = false;
  std::vector<int> stages = {0, 1, 2, 3};
  std::vector<bool> overlaps = {true, false};
  std::string link_interface;          // empty: no link bytes column
  // Every engine's and the communicator's settings: the defaults, then --prefetch-bytes,
  // --reductions-in-flight, --reduce-bucket-size, --all-gather and --KEY=VALUE in order.
  zs::TrainingConfig config;
};

std::vector<int> parse_stages(const std::string& text) {
  std::vector<int> stages;
  for (std::size_t start = 0; start <= text.size();) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, comma - start);
    if (item.size() != 1 || item[0] < '0' || item[0] > '3')
      throw zs::InvalidArgument("--stages '" + text + "': give a comma-separated list of 0-3, e.g. 0,3");
    stages.push_back(item[0] - '0');
    start = comma + 1;
  }
  return stages;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      o.config.apply_override(arg.substr(2));
      --i;  // KEY=VALUE in one argument
      continue;
    }
    if (arg == "--unit-order" || arg == "--observability" || arg == "--precision") {
      (arg == "--unit-order" ? o.unit_order : arg == "--observability" ? o.observability : o.precision) = true;
      --i;  // a flag: no value
      continue;
    }
    if (arg == "--help" || arg == "-h") {
      std::puts("zs_step_bench [--layers 8] [--width 2560] [--batch 16] [--steps 3] [--prefetch-bytes N]\n"
                "  [--reductions-in-flight 2] [--all-gather automatic] [--reduce-bucket-size 0]\n"
                "  [--unit-order | --observability | --precision] [--stages 0,1,2,3] [--overlap both|on|off]\n"
                "  [--link-interface IFACE] [--KEY=VALUE ...]   (bench/step_bench.cpp's header says what each does)");
      MPI_Finalize();  // --help ends the job cleanly (mpirun reports an exit without it)
      std::exit(0);
    }
    if (i + 1 >= argc) throw zs::InvalidArgument(arg + " needs a value");
    if (arg == "--layers") o.layers = std::stoi(argv[i + 1]);
    else if (arg == "--width") o.width = std::stoll(argv[i + 1]);
    else if (arg == "--batch") o.batch = std::stoll(argv[i + 1]);
    else if (arg == "--steps") o.steps = std::stoi(argv[i + 1]);
    else if (arg == "--prefetch-bytes") o.config.engine.prefetch_bytes = std::stoll(argv[i + 1]);
    else if (arg == "--reductions-in-flight") o.config.engine.reductions_in_flight = std::stoi(argv[i + 1]);
    else if (arg == "--reduce-bucket-size") o.config.engine.reduce_bucket_size = std::stoll(argv[i + 1]);
    else if (arg == "--all-gather") o.config.communication.all_gather = zs::parse_algorithm(argv[i + 1]);
    else if (arg == "--stages") o.stages = parse_stages(argv[i + 1]);
    else if (arg == "--link-interface") o.link_interface = argv[i + 1];
    else if (arg == "--overlap") {
      const std::string v = argv[i + 1];
      if (v == "both") o.overlaps = {true, false};
      else if (v == "on" || v == "off") o.overlaps = {v == "on"};
      else throw zs::InvalidArgument("--overlap '" + v + "': use both, on or off");
    }
    else throw zs::InvalidArgument("unknown option " + arg + " (see the comment at the top of bench/step_bench.cpp)");
  }
  o.config.validate();
  return o;
}

std::unique_ptr<zs::nn::Sequential> make_model(const Options& o) {
  auto model = std::make_unique<zs::nn::Sequential>("mlp");
  for (int l = 0; l < o.layers; ++l) {
    model->add<zs::nn::Linear>("fc" + std::to_string(l), o.width, o.width);
    model->add<zs::nn::ReLU>("act" + std::to_string(l));
  }
  return model;
}

struct StepTimes {
  double forward_backward = 0, update = 0;  // medians over steps, slowest rank
  double link_bytes_per_step = 0;           // mean over the timed steps (LinkCounter), 0 without one
  double total() const { return forward_backward + update; }
};

// The bytes the job's nodes sent on one network interface (--link-interface): node rank 0 of
// each shared-memory node reads /sys/class/net/IFACE/statistics/tx_bytes.
class LinkCounter {
 public:
  // Collective over `world`. Throws InvalidArgument on every rank if some node cannot read it.
  LinkCounter(zs::Communicator& world, const std::string& iface)
      : world_(world), path_("/sys/class/net/" + iface + "/statistics/tx_bytes") {
    zs::Communicator node = world.split_shared_node();
    reader_ = node.rank() == 0;
    std::int64_t readable = !reader_ || std::ifstream(path_).good();
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &readable, 1, MPI_INT64_T, MPI_MIN, world.handle()));
    if (!readable)
      throw zs::InvalidArgument("--link-interface " + iface + ": some node cannot read " + path_ +
                                " (name the interface that joins the nodes, e.g. eth0 on scripts/zs-cluster)");
  }
  // Collective: the sum over nodes of the counter now.
  std::int64_t sent() const {
    std::int64_t bytes = 0;
    if (reader_) std::ifstream(path_) >> bytes;
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &bytes, 1, MPI_INT64_T, MPI_SUM, world_.handle()));
    return bytes;
  }

 private:
  zs::Communicator& world_;
  std::string path_;
  bool reader_ = false;
};

double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2, values.end());
  return values[values.size() / 2];
}

// Step s's forward: the plain one (null) or a program.
using ProgramOfStep = std::function<const zs::ForwardProgram*(int step)>;

// Medians over steps of the slowest rank's forward + backward and step() times.
// With `link`, also the bytes the nodes sent per timed step.
StepTimes timed_steps(zs::Communicator& comm, zs::Engine& engine, const Options& o, const ProgramOfStep& program_of = {},
                      const LinkCounter* link = nullptr) {
  zs::Tensor x({o.batch, o.width}), grad({o.batch, o.width});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
  grad.fill(1.0f / static_cast<float>(grad.numel()));
  std::vector<double> forward_backward, update;
  std::int64_t link_start = 0;
  for (int s = 0; s < o.steps + 1; ++s) {  // the first step warms up
    ZS_MPI_CHECK(MPI_Barrier(comm.handle()));
    if (link && s == 1) link_start = link->sent();
    const double start = MPI_Wtime();
    const zs::ForwardProgram* program = program_of ? program_of(s) : nullptr;
    if (program) engine.forward(x, *program);
    else engine.forward(x);
    engine.backward(grad);
    const double middle = MPI_Wtime();
    engine.step();
    double t[2] = {middle - start, MPI_Wtime() - middle};
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, t, 2, MPI_DOUBLE, MPI_MAX, comm.handle()));
    if (s > 0) {
      forward_backward.push_back(t[0]);
      update.push_back(t[1]);
    }
  }
  const double link_bytes = link ? static_cast<double>(link->sent() - link_start) / o.steps : 0.0;
  return {median(forward_backward), median(update), link_bytes};
}

// The collectives one step of `stage` issues, alone: per unit of `unit_elems` elements.
double comm_only(zs::Communicator& comm, int stage, int units, std::int64_t unit_elems, int repeats) {
  const int n = comm.size();
  const std::int64_t padded = (unit_elems + n - 1) / n * n, shard = padded / n;
  std::vector<float> full(padded, 1.0f), scratch(padded);
  std::vector<double> times;
  for (int rep = 0; rep < repeats + 1; ++rep) {
    ZS_MPI_CHECK(MPI_Barrier(comm.handle()));
    const double start = MPI_Wtime();
    for (int u = 0; u < units; ++u) {
      std::span<float> f(full), own = f.subspan(comm.rank() * shard, shard);
      if (stage == 0) comm.all_reduce(f).wait();
      if (stage == 1 || stage == 2) {
        comm.reduce_scatter(f, own).wait();
        comm.all_gather(own, f).wait();
      }
      if (stage == 3) {
        comm.all_gather(own, f).wait();  // forward
        comm.all_gather(own, f).wait();  // backward
        comm.reduce_scatter(f, own).wait();
      }
    }
    double t = MPI_Wtime() - start;
    ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm.handle()));
    if (rep > 0) times.push_back(t);
  }
  return median(times);
}

double mib(double bytes) { return bytes / (1024.0 * 1024.0); }

// Runs every layer in `route` order.
zs::ForwardProgram program_for(std::vector<std::size_t> route) {
  return [route = std::move(route)](zs::UnitRunner& units, const zs::Tensor& input) -> const zs::Tensor& {
    const zs::Tensor* x = &input;
    for (std::size_t unit : route) x = &units.run(unit, *x);
    return *x;
  };
}

// Stage 3 with the plain forward, with a program running the same order, and with a program
// skipping layer (s mod layers) at step s.
void unit_order_table(zs::Communicator& comm, const Options& o) {
  std::vector<std::size_t> all_layers;
  for (int l = 0; l < o.layers; ++l) all_layers.push_back(l);
  const zs::ForwardProgram same_order = program_for(all_layers);
  std::vector<zs::ForwardProgram> skipping;
  for (int l = 0; l < o.layers; ++l) {
    std::vector<std::size_t> route = all_layers;
    route.erase(route.begin() + l);
    skipping.push_back(program_for(route));
  }
  struct Row {
    const char* forward;
    ProgramOfStep program_of;
    double layers_run;
  };
  const std::vector<Row> rows = {
      {"plain forward (Sequential)", {}, static_cast<double>(o.layers)},
      {"ForwardProgram, same order every step", [&](int) { return &same_order; }, static_cast<double>(o.layers)},
      {"ForwardProgram, a different layer skipped every step",
       [&](int s) { return &skipping[s % o.layers]; }, o.layers - 1.0}};
  if (comm.rank() == 0) {
    std::printf("| stage 3, overlap on: forward | layers run | step (ms) | per layer run (ms) | vs plain, per layer | "
                "order changes |\n|---|---:|---:|---:|---:|---:|\n");
  }
  double plain_per_layer = 0;
  for (const Row& row : rows) {
    auto model = make_model(o);
    zs::EngineConfig config = o.config.engine;
    config.stage = 3;
    zs::Engine engine(*model, config, comm);
    const double step = timed_steps(comm, engine, o, row.program_of).total();
    const double per_layer = step / row.layers_run;
    if (plain_per_layer == 0) plain_per_layer = per_layer;
    if (comm.rank() == 0)
      std::printf("| %s | %.0f | %.1f | %.2f | %.2fx | %lld |\n", row.forward, row.layers_run, step * 1e3, per_layer * 1e3,
                  per_layer / plain_per_layer, static_cast<long long>(engine.unit_order_changes()));
  }
}

double quantile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  return values[static_cast<std::size_t>(q * static_cast<double>(values.size() - 1) + 0.5)];
}

// One training step (forward, backward, step) after a barrier: the slowest rank's seconds.
// Collective.
double one_step_seconds(zs::Communicator& comm, zs::Engine& engine, const zs::Tensor& x, const zs::Tensor& grad) {
  ZS_MPI_CHECK(MPI_Barrier(comm.handle()));
  const double start = MPI_Wtime();
  engine.forward(x);
  engine.backward(grad);
  engine.step();
  double t = MPI_Wtime() - start;
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &t, 1, MPI_DOUBLE, MPI_MAX, comm.handle()));
  return t;
}

// Profiler off / on / communication.timeout_s = 0, interleaved step by step (see the top).
void observability_table(zs::Communicator& comm, const Options& o) {
  zs::CommunicatorConfig no_timeout_config = comm.config();
  no_timeout_config.timeout_s = 0;
  zs::Communicator no_timeout(MPI_COMM_WORLD, no_timeout_config);
  struct Variant {
    const char* name;
    zs::Communicator* comm;
    bool profile;
    std::unique_ptr<zs::nn::Sequential> model;
    std::unique_ptr<zs::Engine> engine;
    std::vector<double> times;
  };
  std::vector<Variant> variants;
  variants.push_back({"profiler off (default; timeout_s 600)", &comm, false, nullptr, nullptr, {}});
  variants.push_back({"profiler on, every step recorded", &comm, true, nullptr, nullptr, {}});
  variants.push_back({"profiler off, timeout_s 0 (no hang detection)", &no_timeout, false, nullptr, nullptr, {}});
  const std::string trace = "/tmp/zs_step_bench_trace_" + std::to_string(comm.size()) + ".json";
  for (Variant& v : variants) {
    v.model = make_model(o);
    zs::EngineConfig config = o.config.engine;
    config.stage = 3;
    config.profiler = {.enabled = v.profile, .first_step = 1, .end_step = 1'000'000'000, .output = trace};
    v.engine = std::make_unique<zs::Engine>(*v.model, config, *v.comm);
  }
  zs::Tensor x({o.batch, o.width}), grad({o.batch, o.width});
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
  grad.fill(1.0f / static_cast<float>(grad.numel()));
  for (int s = 0; s < o.steps + 2; ++s) {  // two warm-up steps: first touch, the profiler's start
    for (Variant& v : variants) {
      // The timeline is the process's: the profiled engine's recording must not see the others.
      const bool paused = !v.profile && zs::timeline::enabled();
      if (paused) zs::timeline::pause();
      const double t = one_step_seconds(comm, *v.engine, x, grad);
      if (paused) zs::timeline::resume();
      if (s >= 2) v.times.push_back(t);
    }
  }
  const std::string written = variants[1].engine->finish_profiler();
  if (comm.rank() == 0) {
    std::printf("| stage 3, overlap on | step median (ms) | quartiles (ms) | vs profiler off |\n|---|---:|---:|---:|\n");
    const double reference = median(variants[0].times);
    for (const Variant& v : variants)
      std::printf("| %s | %.2f | %.2f .. %.2f | %.3fx |\n", v.name, median(v.times) * 1e3, quantile(v.times, 0.25) * 1e3,
                  quantile(v.times, 0.75) * 1e3, median(v.times) / reference);
    std::printf("\ntrace of the profiled engine: %s\n", written.c_str());
  }
}

// Bytes of the collective buffers issued on `comm` since sequence number `from` (scalar
// agreements and barriers left out: they are a few bytes).
std::int64_t bytes_since(const zs::Communicator& comm, std::uint64_t from) {
  std::int64_t bytes = 0;
  for (const zs::CollectiveRecord& record : comm.flight_recorder().records())
    if (record.sequence >= from && std::string(record.op) != "all_reduce_scalars" && std::string(record.op) != "barrier")
      bytes += record.bytes;
  return bytes;
}

// float32 and bf16 engines per stage, interleaved step by step (see the top).
void precision_table(zs::Communicator& comm, const Options& o) {
  if (comm.rank() == 0)
    std::printf("| stage | precision | step median (ms) | quartiles (ms) | vs float32 | collective bytes / step (MiB) | "
                "vs float32 | model state / rank (MiB) | ZeRO formula (MiB) |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (int stage = 0; stage <= 3; ++stage) {
    struct Variant {
      const char* name;
      bool bf16;
      std::unique_ptr<zs::Communicator> comm;
      std::unique_ptr<zs::nn::Sequential> model;
      std::unique_ptr<zs::Engine> engine;
      std::vector<double> times;
      std::int64_t bytes = 0;
    };
    std::vector<Variant> variants;
    variants.push_back({"float32", false, nullptr, nullptr, nullptr, {}, 0});
    variants.push_back({"bf16", true, nullptr, nullptr, nullptr, {}, 0});
    for (Variant& v : variants) {
      v.comm = std::make_unique<zs::Communicator>(MPI_COMM_WORLD, comm.config());
      v.model = make_model(o);
      zs::EngineConfig config = o.config.engine;
      config.stage = stage;
      config.memory.print_plan = false;
      config.precision.bf16 = v.bf16;
      v.engine = std::make_unique<zs::Engine>(*v.model, config, *v.comm);
    }
    zs::Tensor x({o.batch, o.width}), grad({o.batch, o.width});
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = static_cast<float>((i * 7919) % 1000) / 1000.0f - 0.5f;
    grad.fill(1.0f / static_cast<float>(grad.numel()));
    for (int s = 0; s < o.steps + 1; ++s)  // the first step warms up (and is the one whose bytes are counted)
      for (Variant& v : variants) {
        const std::uint64_t first = v.comm->flight_recorder().next_sequence();
        const double t = one_step_seconds(comm, *v.engine, x, grad);
        if (s == 0) v.bytes = bytes_since(*v.comm, first);
        else v.times.push_back(t);
      }
    const std::int64_t psi = variants[0].engine->parameter_count();
    for (const Variant& v : variants) {
      std::int64_t state = v.engine->model_state_bytes().total();
      ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &state, 1, MPI_INT64_T, MPI_MAX, comm.handle()));
      const double formula = static_cast<double>(
          zs::model_state_bytes_per_rank(psi, comm.size(), zs::ShardedCategories::of_stage(stage),
                                         zs::StatePrecision::of(v.engine->config().precision, 2))
              .total());
      if (comm.rank() == 0)
        std::printf("| %d | %s | %.1f | %.1f .. %.1f | %.2fx | %.1f | %.2fx | %.1f | %.1f |\n", stage, v.name,
                    median(v.times) * 1e3, quantile(v.times, 0.25) * 1e3, quantile(v.times, 0.75) * 1e3,
                    median(v.times) / median(variants[0].times), mib(static_cast<double>(v.bytes)),
                    static_cast<double>(v.bytes) / static_cast<double>(std::max<std::int64_t>(1, variants[0].bytes)),
                    mib(static_cast<double>(state)), mib(formula));
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  try {
    const Options o = parse(argc, argv);
    zs::Communicator comm(MPI_COMM_WORLD, o.config.communication);
    const int n = comm.size(), r = comm.rank();
    if (o.observability || o.unit_order || o.precision) {
      if (r == 0)
        std::printf("ZeroShard step benchmark, %s: %d ranks, %d x Linear(%lld, %lld), batch %lld per rank, "
                    "%s AdamW, %s %d steps\n\n",
                    o.observability ? "observability" : o.unit_order ? "unit order" : "precision", n, o.layers,
                    static_cast<long long>(o.width), static_cast<long long>(o.width), static_cast<long long>(o.batch),
                    o.precision ? "fp32 and bf16" : "fp32", o.unit_order ? "median of" : "interleaved, per variant:",
                    o.steps);
      if (r == 0) std::printf("build: %s, GEMM %s\n\n", zs::describe_build().c_str(), zs::nn::gemm_backend().c_str());
      if (o.observability) observability_table(comm, o);
      else if (o.precision) precision_table(comm, o);
      else unit_order_table(comm, o);
      return 0;
    }

    // Compute only: every rank trains its own copy as a world of one (stage 0, no traffic).
    StepTimes alone;
    std::int64_t psi = 0;
    {
      zs::Communicator self = comm.split(r, 0);
      auto model = make_model(o);
      zs::EngineConfig config;
      zs::Engine engine(*model, config, self);
      psi = engine.parameter_count();
      alone = timed_steps(comm, engine, o);
    }
    const std::int64_t unit_elems = o.width * o.width + o.width;
    std::unique_ptr<LinkCounter> link;
    if (!o.link_interface.empty()) link = std::make_unique<LinkCounter>(comm, o.link_interface);
    std::string overrides;  // the --KEY=VALUE settings that differ from the defaults
    const auto defaults = zs::TrainingConfig{}.entries();
    for (const auto& [key, value] : o.config.entries())
      if (std::find(defaults.begin(), defaults.end(), std::pair{key, value}) == defaults.end())
        overrides += (overrides.empty() ? "" : ", ") + key + " = " + value;

    if (r == 0) {
      std::printf("ZeroShard step benchmark: %d ranks, %d x Linear(%lld, %lld) = %.1f M parameters, batch %lld per "
                  "rank, fp32 AdamW, median of %d steps\n\n",
                  n, o.layers, static_cast<long long>(o.width), static_cast<long long>(o.width), psi / 1e6,
                  static_cast<long long>(o.batch), o.steps);
      std::printf("build: %s, GEMM %s; compute threads per rank: %d\n\n", zs::describe_build().c_str(),
                  zs::nn::gemm_backend().c_str(), zs::nn::compute_threads());
      std::printf("world of one, same batch: forward + backward %.1f ms, optimizer step %.1f ms\n\n",
                  alone.forward_backward * 1e3, alone.update * 1e3);
      if (!overrides.empty()) std::printf("settings besides the defaults: %s\n\n", overrides.c_str());
      std::printf("| stage | overlap | step (ms) | vs stage 0 | compute only (ms) | comm only (ms) | overlap efficiency "
                  "| peak full params (MiB) | peak full grads (MiB) | peak buckets (MiB) | model state (MiB) | formula 16Ψ... (MiB) |%s\n",
                  link ? " link bytes per step (MiB) |" : "");
      std::printf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|%s\n", link ? "---:|" : "");
    }
    double stage0_step = 0;
    std::string plan_rows;  // the memory planner's prediction against the ledger, per row
    for (int stage : o.stages) {
      const double comm_time = comm_only(comm, stage, o.layers, unit_elems, o.steps);
      const double compute = alone.forward_backward + alone.update / (stage == 0 ? 1 : n);
      for (bool overlap : o.overlaps) {
        auto model = make_model(o);
        zs::EngineConfig config = o.config.engine;
        config.stage = stage;
        config.overlap_comm = overlap;
        config.memory.print_plan = false;
        zs::Engine engine(*model, config, comm);
        const StepTimes times = timed_steps(comm, engine, o, {}, link.get());
        const double step = times.total();
        const double formula = static_cast<double>(
            zs::model_state_bytes_per_rank(psi, n, zs::ShardedCategories::of_stage(stage),
                                           zs::StatePrecision::float32(2)).total());
        if (stage0_step == 0) stage0_step = step;  // the first row: stage 0 with overlap unless --stages/--overlap say otherwise
        const double hidden = std::clamp((compute + comm_time - step) / comm_time, 0.0, 1.0);
        std::int64_t peaks[6] = {engine.memory().high_water(zs::MemoryCategory::parameters_full),
                                 engine.memory().high_water(zs::MemoryCategory::gradients_full),
                                 engine.memory().high_water(zs::MemoryCategory::communication),
                                 engine.model_state_bytes().total(),
                                 engine.memory_plan() ? engine.memory_plan()->peak : 0,
                                 engine.memory().high_water_total()};
        ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, peaks, 6, MPI_INT64_T, MPI_MAX, comm.handle()));
        char row[160];
        std::snprintf(row, sizeof row, "| %d | %s | %.2f | %.2f | %+.2f%% |\n", stage, overlap ? "on" : "off",
                      mib(peaks[4]), mib(peaks[5]),
                      100.0 * static_cast<double>(peaks[4] - peaks[5]) / static_cast<double>(peaks[5]));
        plan_rows += row;
        char link_cell[32] = "";
        if (link) std::snprintf(link_cell, sizeof link_cell, " %.1f |", mib(times.link_bytes_per_step));
        if (r == 0)
          std::printf("| %d | %s | %.1f | %.2fx | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.1f | %.1f | %.1f |%s\n", stage,
                      overlap ? "on" : "off", step * 1e3, step / stage0_step, compute * 1e3, comm_time * 1e3, 100 * hidden,
                      mib(peaks[0]), mib(peaks[1]), mib(peaks[2]), mib(peaks[3]), mib(formula),
                      link_cell);
      }
    }
    if (r == 0)
      std::printf("\nmemory planner (predicted before the first step) against the ledger's peak, max over ranks:\n"
                  "| stage | overlap | planned peak (MiB) | ledger peak (MiB) | difference |\n|---:|---|---:|---:|---:|\n%s",
                  plan_rows.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zs_step_bench (%s): %s\n", zs::rank_and_host().c_str(), e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
