#pragma once
// Checkpoint settings (the "checkpoint" section of a training config; docs/config.md).

#include <string>

namespace zs::checkpoint {

/// How a tag's data files are laid out on disk (docs/checkpoint-format.md).
enum class CheckpointMode {
  /// One plain serial-HDF5 file per rank, shard_RRRRR.h5, built in memory and written in one
  /// sequential pass. Works with any HDF5 build; the only mode that can save asynchronously.
  per_rank,
  /// One file, shared.h5, that every rank writes its slices into with collective MPI-IO
  /// hyperslab writes. Needs HDF5 built parallel (libhdf5-openmpi-dev); one file per save
  /// suits parallel file systems where thousands of files strain the metadata server.
  shared_file,
};

std::string to_string(CheckpointMode mode);
/// "per_rank" or "shared_file"; throws InvalidArgument listing the choices.
CheckpointMode parse_checkpoint_mode(const std::string& text);

/// True when this ZeroShard was built against parallel HDF5, so shared_file saves can be written.
/// Either build reads checkpoints of both modes.
bool parallel_hdf5_available();

struct CheckpointConfig {
  /// After each save, keep the newest this many saves of the run that writes (its lineage:
  /// its own saves and those it continues, in save order) and delete its older ones; 0 keeps
  /// every tag. The tag `latest` names is never deleted, nor any tag off the lineage (an
  /// abandoned branch after a rollback, another run's). docs/checkpoint-format.md, "Retention".
  int keep_last = 0;
  /// Snapshot shards to host memory and write them in the background while training goes on;
  /// the save commits (renames the tag into place, updates `latest`) at a later step.
  bool async = false;
  CheckpointMode mode = CheckpointMode::per_rank;
  /// Throws InvalidArgument naming the bad field and the fix.
  void validate() const;
};

}  // namespace zs::checkpoint
