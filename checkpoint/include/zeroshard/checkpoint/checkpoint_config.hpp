#pragma once
// Checkpoint settings (the "checkpoint" section of a training config; docs/config.md).

#include <string>

namespace zs::checkpoint {

enum class CheckpointMode {
  /// One HDF5 file per rank, plain serial HDF5; works everywhere.
  per_rank,
  /// One shared file written with collective MPI-IO (needs HDF5 built parallel).
  shared_file,
};
std::string to_string(CheckpointMode mode);
/// Throws InvalidArgument naming the accepted values.
CheckpointMode parse_checkpoint_mode(const std::string& text);

struct CheckpointConfig {
  /// Keep the newest this many tags in a directory, deleting older ones after each save;
  /// 0 keeps every tag. The tag `latest` names is never deleted.
  int keep_last = 0;
  /// Snapshot shards to host memory and write them in the background while training goes on;
  /// the save commits (renames the tag into place, updates `latest`) at a later step.
  bool async = false;
  CheckpointMode mode = CheckpointMode::per_rank;
  /// Throws InvalidArgument naming the bad field.
  void validate() const;
};

}  // namespace zs::checkpoint
