#pragma once
// Shared-file mode: every rank's slices in one HDF5 file, written with collective MPI-IO
// hyperslab writes (parallel HDF5). The same layout as a shard file (shard_file.hpp) holding
// ranks [0, world_size).

#include <string>

#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/comm/communicator.hpp"

namespace zs::checkpoint::detail {

/// Collective. Creates `path` (which must not exist), writes every rank's `contents` into it,
/// closes it, fsyncs it, and has every rank read its own slices back and compare checksums.
/// Throws the same CheckpointError on every rank on failure (the file may then be partial;
/// the caller's staging directory is never committed). The training state saved is rank 0's.
/// Needs a build against parallel HDF5 (parallel_hdf5_available()).
void write_shared_file(Communicator& comm, const std::string& path, const ShardContents& contents);

}  // namespace zs::checkpoint::detail
