#pragma once
// What one rank puts in a checkpoint: its shard of every unit's flat buffers (master
// parameters, optimizer states) with the layouts that say which tensor elements they hold,
// and the training state needed to continue bit for bit.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/checkpoint_config.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs::checkpoint {

/// Format of the files written; a reader refuses a newer one.
inline constexpr int kFormatVersion = 1;

/// The fp16 dynamic loss scaler's state (DeepSpeed's DynamicLossScaler fields): saved so
/// that a resume continues bit for bit.
struct LossScalerState {
  double scale = 1;                             // cur_scale
  std::int64_t iteration = 0;                   // cur_iter: boundaries seen
  std::int64_t last_overflow_iteration = -1;    // last_overflow_iter
  std::int64_t hysteresis_left = 1;             // cur_hysteresis
  bool operator==(const LossScalerState&) const = default;
};

/// Scalars every rank holds identically.
struct TrainingState {
  std::int64_t step = 0;        // optimizer steps taken (the LR schedule's position)
  std::int64_t micro_step = 0;  // micro-steps taken
  int stage = 0;                // ZeRO stage of the run that saved
  std::string optimizer;        // "adamw", ...
  std::string config;           // the training configuration, "key = value" lines
  /// The caller's own integers: data sampler position (epoch, batch), counters.
  std::map<std::string, std::int64_t> client_state;
  /// fp16 runs only (written as the loss_scale* attributes; absent otherwise).
  std::optional<LossScalerState> loss_scaler;
  /// Ranks that trained (each on its own data): the saving run's world size. Under hybrid
  /// sharding more than the checkpoint's world size (its shards: one shard group's ranks).
  /// 0 in checkpoints written before it was recorded: take the checkpoint's world size.
  int data_parallel_size = 0;
};

/// Which save a file belongs to, and which save that one continues: written by
/// CheckpointWriter::save into the index and every data file of a save (both empty in
/// checkpoints written before ZeroShard recorded them).
struct SaveIdentity {
  /// Random, one per save, the same in every file of it: readers refuse a data file whose id
  /// differs from its index's (files of two saves mixed in one tag directory).
  std::string save_id;
  /// The save this one continues: the writer's previous save, or the checkpoint it was told
  /// it continues (Engine::load). Retention follows these links (docs/checkpoint-format.md).
  std::string parent_save_id;
  bool operator==(const SaveIdentity&) const = default;
};

/// One named flat array of a unit, this rank's shard of it (layout.shard_numel() elements).
struct ShardBuffer {
  std::string name;  // "params", "exp_avg", "exp_avg_sq", "momentum_buffer"
  std::span<const float> data;
};

struct UnitShard {
  std::string name;  // "unit_0000", ...
  sharding::FlatLayout layout;
  std::vector<ShardBuffer> buffers;
};

struct ShardContents {
  int rank = 0;        // the shard this rank holds (its rank in the shard group that saves)
  int world_size = 1;  // shards of the save (the shard group's size under hybrid sharding)
  /// Hybrid sharding: this rank holds a copy of shard `rank` that a rank of replica 0 writes;
  /// it writes no file (CheckpointWriter::save is still collective over every rank).
  bool replica = false;
  TrainingState state;
  std::string rng_state;  // this rank's random generator (dropout), as text
  std::vector<UnitShard> units;
  SaveIdentity identity;  // set by CheckpointWriter::save (what the caller puts here is replaced)
};

/// "shard_00003.h5": the file rank `rank` writes in per-rank mode.
std::string shard_file_name(int rank);
/// The one data file of a shared-file save.
inline constexpr const char* kSharedFileName = "shared.h5";
inline constexpr const char* kIndexFileName = "index.h5";
/// The data file that holds rank `rank`'s slices in a save of `mode`.
std::string data_file_name(CheckpointMode mode, int rank);

}  // namespace zs::checkpoint
