// zeroshard-estimate: model-state bytes per rank for every ZeRO stage, before any job runs
// (DeepSpeed's estimate_zero3_model_states_mem_needs_all_cold). The formula is the engine
// planner's (zeroshard/runtime/model_state_formula.hpp).
//
//   zeroshard-estimate --params 7.5e9 --ranks 64 --bf16    # the ZeRO paper's 120 / 31.4 / 16.6 / 1.9 GB
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

#include "number_text.hpp"
#include "option_values.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/model_state_formula.hpp"

namespace {

const char* kHelp = R"(zeroshard-estimate: model-state bytes per rank for ZeRO stages 0-3.

  zeroshard-estimate --params N --ranks R [--shard-group-size G] [--bf16 | --fp16]
                     [--optimizer adamw|adam|sgd] [--momentum] [--in-backward]

  --params N        parameters in the model (7.5e9 and 350000 both work)
  --ranks R         data-parallel ranks (world size)
  --shard-group-size G
                    hybrid sharding (zero_optimization.shard_group_size): model states are
                    sharded over groups of G ranks and replicated R/G times, so N = G below
                    (G must divide R; default: R, flat ZeRO)
  --bf16, --fp16    the ZeRO paper's mixed precision (bf16.enabled / fp16.enabled): 16-bit
                    parameters and gradients, fp32 master parameters and optimizer states
                    (Adam: 2 + 2 + 12 bytes per parameter; SGD: 2 + 2 + 4, with momentum + 4)
  --optimizer NAME  adamw (default) or adam: 2 fp32 states; sgd: none, 1 with --momentum
  --momentum        sgd with momentum (one fp32 state per parameter)
  --in-backward     optimizer.in_backward: each unit is updated during backward and its
                    gradients freed, so none are kept between steps (G = 0 below; one unit's
                    gradients come on top while it is updated)

Without --bf16/--fp16 the estimate is ZeroShard's float32 training: 4 bytes of parameters,
4 of gradients and 4 per optimizer state (Adam: 8) for every parameter. GB = 1e9 bytes, as
the ZeRO paper counts. Per rank:
  stage 0: (P+G+K)Ψ   stage 1: (P+G)Ψ + KΨ/N   stage 2: PΨ + (G+K)Ψ/N   stage 3: (P+G+K)Ψ/N
Activations, gathered parameters and buffers come on top: the engine's planner
(memory.limit_bytes, docs/memory.md) predicts those for a real model and batch.
)";

struct Options {
  double params = -1;
  bool params_given = false;
  long long ranks = -1;
  long long shard_group_size = -1;  // -1: the world (flat ZeRO)
  std::string precision = "fp32";
  std::string optimizer = "adamw";
  bool momentum = false;
  bool in_backward = false;  // optimizer.in_backward: no gradients kept between steps
  bool help = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (zs::examples::CommandLine args(argc, argv); args.next();) {
    const std::string name = args.name();
    if (name == "--help" || name == "-h") o.help = true;
    else if (name == "--params") {
      o.params = zs::examples::finite_number(name, args.value());
      o.params_given = true;
    }
    else if (name == "--ranks") o.ranks = zs::examples::whole_number<long long>(name, args.value());
    else if (name == "--shard-group-size")
      o.shard_group_size = zs::examples::whole_number<long long>(name, args.value());
    else if (name == "--bf16" || name == "--fp16") {
      if (o.precision != "fp32" && o.precision != name.substr(2))
        throw zs::InvalidArgument("--bf16 and --fp16 are exclusive: give one (both count 2 + 2 + 12 bytes per parameter)");
      o.precision = name.substr(2);
    }
    else if (name == "--optimizer") o.optimizer = args.value();
    else if (name == "--momentum") o.momentum = true;
    else if (name == "--in-backward") o.in_backward = true;
    else throw zs::InvalidArgument("unknown argument '" + name + "' (see --help)");
  }
  if (o.help) return o;
  if (!o.params_given) throw zs::InvalidArgument("--params N is required (the model's parameter count, e.g. 7.5e9)");
  if (o.params < 1 || o.params > 9e18)
    throw zs::InvalidArgument("--params: " + zs::examples::number_text(o.params) +
                              " is out of range: give 1 to 9e18 parameters");
  if (o.params != std::floor(o.params))
    throw zs::InvalidArgument("--params: " + zs::examples::number_text(o.params) + " is not a whole number of parameters");
  if (o.ranks < 1) throw zs::InvalidArgument("--ranks R is required and must be >= 1 (the world size)");
  if (o.ranks > 1 << 30) throw zs::InvalidArgument("--ranks: " + std::to_string(o.ranks) + " is too large");
  if (o.shard_group_size == -1) o.shard_group_size = o.ranks;
  if (o.shard_group_size == 0)
    throw zs::InvalidArgument("--shard-group-size 0 means \"the ranks of one node\" to the engine, which this tool "
                              "cannot see: give the ranks per node (e.g. --shard-group-size 8)");
  if (o.shard_group_size < 1 || o.ranks % o.shard_group_size != 0)
    throw zs::InvalidArgument("--shard-group-size: " + std::to_string(o.shard_group_size) +
                              " does not divide --ranks " + std::to_string(o.ranks) +
                              " into groups of equal size: give a divisor of the world size");
  if (o.optimizer != "adamw" && o.optimizer != "adam" && o.optimizer != "sgd")
    throw zs::InvalidArgument("--optimizer: '" + o.optimizer + "' is not adamw, adam or sgd");
  if (o.momentum && o.optimizer != "sgd") throw zs::InvalidArgument("--momentum applies to --optimizer sgd only");
  if (o.in_backward && o.precision == "fp16")
    throw zs::InvalidArgument("--in-backward with --fp16: the engine refuses that combination (a loss-scale overflow "
                              "could not skip a step already applied in backward); use --bf16");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    if (o.help) {
      std::fputs(kHelp, stdout);
      return 0;
    }
    const int states = o.optimizer == "sgd" ? (o.momentum ? 1 : 0) : 2;
    // What the engine holds with bf16.enabled / fp16.enabled (one formula for both).
    zs::EngineConfig config;
    config.precision.bf16 = o.precision == "bf16";
    config.precision.fp16 = o.precision == "fp16";
    config.optimizer_in_backward = o.in_backward;
    const zs::StatePrecision precision = zs::StatePrecision::of(config, states);
    const auto psi = static_cast<std::int64_t>(o.params);
    const int ranks = static_cast<int>(o.ranks), group = static_cast<int>(o.shard_group_size);
    if (group < ranks)
      std::printf("hybrid sharding: groups of N = %d ranks, %d replicas of each shard\n", group, ranks / group);
    std::printf("%.4g parameters on %d ranks, %s: P = %d, G = %d, K = %d bytes per parameter\n", o.params, ranks,
                o.precision == "fp32" ? ("float32 " + o.optimizer + (o.momentum ? " with momentum" : "")).c_str()
                                      : (o.precision + " mixed precision (fp32 master parameters" +
                                         (states == 2 ? ", momentum, variance)" : states == 1 ? ", momentum)" : ")"))
                                            .c_str(),
                precision.parameter_bytes, precision.gradient_bytes, precision.optimizer_bytes);
    std::printf("%-6s %14s %14s %14s %14s  %s\n", "stage", "parameters", "gradients", "optimizer", "total/rank",
                "formula");
    const char* formulas[4] = {"(P+G+K)Ψ", "(P+G)Ψ + KΨ/N", "PΨ + (G+K)Ψ/N", "(P+G+K)Ψ/N"};
    auto gb = [](std::int64_t bytes) { return static_cast<double>(bytes) / 1e9; };
    for (int stage = 0; stage <= 3; ++stage) {
      const zs::ModelStateBytes b =
          zs::model_state_bytes_per_rank(psi, stage == 0 ? ranks : group, zs::ShardedCategories::of_stage(stage), precision);
      std::printf("%-6d %11.3f GB %11.3f GB %11.3f GB %11.3f GB  %s\n", stage, gb(b.parameters), gb(b.gradients),
                  gb(b.optimizer_states), gb(b.total()), formulas[stage]);
    }
    std::puts("(model states only; activations, gathered parameters and buffers come on top: docs/memory.md)");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "zeroshard-estimate: %s\n", e.what());
    return 2;
  }
}
