#pragma once
// Checkpoint settings (the "checkpoint" section of a training config; docs/config.md).

namespace zs::checkpoint {

struct CheckpointConfig {
  /// Keep the newest this many tags in a directory, deleting older ones after each save;
  /// 0 keeps every tag. The tag `latest` names is never deleted.
  int keep_last = 0;
  /// Snapshot shards to host memory and write them in the background while training goes on;
  /// the save commits (renames the tag into place, updates `latest`) at a later step.
  bool async = false;
  /// Throws InvalidArgument naming the bad field.
  void validate() const;
};

}  // namespace zs::checkpoint
