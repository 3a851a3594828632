#pragma once
// The index file of a tag, written by rank 0: every tensor at full shape as an HDF5 virtual
// dataset stitched from the data files (the shard files, or the one shared file), so h5py /
// h5dump read whole tensors with no ZeroShard code:
//
//   /                       attributes: format_version, world_size, stage, step, micro_step,
//                           optimizer, config, tag, mode ("per_rank" / "shared_file"),
//                           shard_files (the data file of each rank), save_id, parent_save_id,
//                           manifest ("manifest.txt": the save wrote one, file_manifest.hpp)
//   /client_state           attributes
//   /params/<tensor>        float32 at the tensor's shape (virtual)
//   /optimizer/<state>/<tensor>   e.g. optimizer/exp_avg/fc1.weight (virtual)
//
// Source files are named relative to the index, so a tag directory can be moved or copied
// whole. A missing shard reads as NaN through the index (HDF5's fill value), never as
// plausible numbers; ZeroShard's own loader reads the shard files and checks their checksums.

#include <cstdint>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/image_arena.hpp"
#include "zeroshard/checkpoint/shard_contents.hpp"

namespace zs::checkpoint {

/// Where buffer `buffer` ("params", "exp_avg", ...) of a tensor lives in the index.
std::string index_dataset_path(const std::string& buffer, const std::string& tensor);

struct IndexUnit {
  std::string name;
  sharding::FlatLayout layout;
  std::vector<std::string> buffers;
};

/// The bytes of the index file of a save in `mode` (built in memory, like build_shard_image()).
std::span<const char> build_index_image(const std::string& tag, int world_size, CheckpointMode mode,
                                        const TrainingState& state, const SaveIdentity& identity,
                                        const std::vector<IndexUnit>& units, ImageArena& arena);

struct IndexSummary {
  int format_version = 0;
  int world_size = 0;
  std::string tag;
  CheckpointMode mode = CheckpointMode::per_rank;
  TrainingState state;
  SaveIdentity identity;                 // empty in checkpoints written before save ids
  std::vector<std::string> shard_files;  // the data file holding each rank's slices
  /// The save wrote DIR/TAG/manifest.txt (attribute `manifest`; absent in checkpoints from
  /// before manifests): a tag without one was tampered with (file_manifest.hpp).
  bool wrote_manifest = false;
};

/// Reads the index's attributes. Throws CheckpointError naming the file if it is missing,
/// corrupt, of a newer format version, or names data files outside its directory.
IndexSummary read_index_summary(const std::string& path);

/// Where the index's virtual datasets (every buffer of every tensor of `units`, by name)
/// differ from what the data files' layouts say: shape, source file, source dataset and the
/// elements each piece maps. One line per difference (empty: they agree). The index is the
/// second, independent record of which elements belong to which tensor: a data file whose
/// tensor names were swapped between tensors of equal shapes passes its own fragment table
/// but not this. Run by every reader (CheckpointReader, verify_checkpoint).
std::vector<std::string> index_layout_differences(const std::string& index_path, const IndexSummary& index,
                                                  const std::vector<IndexUnit>& units);

}  // namespace zs::checkpoint
