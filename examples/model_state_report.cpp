#include "model_state_report.hpp"

#include <cstdio>
#include <vector>

#include "zeroshard/comm/mpi_check.hpp"

namespace zs::examples {

std::string model_state_report(const Engine& engine, const Communicator& comm) {
  const int world = comm.size();
  const ModelStateBytes mine = engine.model_state_bytes();
  std::vector<std::int64_t> all(3 * static_cast<std::size_t>(world));
  const std::int64_t local[3] = {mine.parameters, mine.gradients, mine.optimizer_states};
  ZS_MPI_CHECK(MPI_Gather(local, 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, 0, comm.handle()));
  if (comm.rank() != 0) return {};
  const MixedPrecisionConfig& precision = engine.config().precision;
  const StatePrecision bytes =
      StatePrecision::of(engine.config(), static_cast<int>(engine.optimizer_state_names().size()));
  // Sharded over the shard group (the world unless hybrid sharding replicates it); node-shared
  // parameters count as a rank's slice of the group's one copy.
  ShardedCategories sharded = ShardedCategories::of_stage(engine.stage());
  sharded.parameters = sharded.parameters || engine.policy().node_shared_parameters;
  const std::int64_t formula =
      model_state_bytes_per_rank(engine.parameter_count(), engine.shard_group_size(), sharded, bytes).total();
  char line[256];
  std::snprintf(line, sizeof line,
                "model-state bytes per rank (%s %s: %d params + %d grads + %d optimizer%s per parameter):\n",
                precision.enabled() ? to_string(precision.param_dtype()).c_str() : "float32",
                to_string(engine.config().optimizer.kind).c_str(), bytes.parameter_bytes, bytes.gradient_bytes,
                bytes.optimizer_bytes, precision.enabled() ? " incl. the float32 master" : "");
  std::string text = line;
  for (int r = 0; r < world; ++r) {
    const std::int64_t* b = all.data() + 3 * r;
    std::snprintf(line, sizeof line, "  rank %d: params %lld + grads %lld + optimizer %lld = %lld bytes (formula stage %d: %lld)\n",
                  r, static_cast<long long>(b[0]), static_cast<long long>(b[1]), static_cast<long long>(b[2]),
                  static_cast<long long>(b[0] + b[1] + b[2]), engine.stage(), static_cast<long long>(formula));
    text += line;
  }
  return text;
}

std::string precision_summary(const EngineConfig& config) {
  const MixedPrecisionConfig& precision = config.precision;
  if (!precision.enabled()) return "precision: float32";
  std::string text = "precision: " + to_string(precision.param_dtype()) + " parameters and gradients (reduced in " +
                     to_string(precision.gradient_dtype()) + "), float32 master weights and optimizer states";
  if (!precision.fp16) return text;
  const LossScaleConfig& scaling = precision.fp16_scaling;
  char scale[160];
  if (scaling.loss_scale > 0)
    std::snprintf(scale, sizeof scale, "; fixed loss scale %g", scaling.loss_scale);
  else
    std::snprintf(scale, sizeof scale, "; dynamic loss scale from 2^%d (window %d, hysteresis %d, min %g)",
                  scaling.initial_scale_power, scaling.loss_scale_window, scaling.hysteresis, scaling.min_loss_scale);
  return text + scale;
}

std::string sharding_summary(const Engine& engine) {
  std::string text;
  char line[160];
  if (engine.shard_replicas() > 1) {
    std::snprintf(line, sizeof line, "hybrid sharding: model states sharded over groups of %d ranks, %d replicas\n",
                  engine.shard_group_size(), engine.shard_replicas());
    text += line;
  }
  if (engine.policy().node_shared_parameters) {
    std::snprintf(line, sizeof line,
                  "node-shared parameters: one copy per group of %d ranks in /dev/shm, each rank updating its slice; "
                  "nothing all-gathered\n",
                  engine.shard_group_size());
    text += line;
  }
  return text;
}

}  // namespace zs::examples
