#pragma once
// Reading a checkpoint at any world size, stage or unit split: a rank names the elements it
// wants in its own (target) layout and reads just the byte ranges of the shard files that hold
// them, verifying the checksum of every block it reads. Not collective: the engine wraps its
// use in run_on_all_ranks(), the zeroshard-ckpt tool uses it in a single process.

#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/index_file.hpp"
#include "zeroshard/checkpoint/shard_file.hpp"

namespace zs::checkpoint {

class CheckpointReader {
 public:
  /// Opens DIR/TAG (an empty tag: the one DIR/latest names): reads the index, checks that
  /// every shard file is present, reads the layouts from shard `probe_rank` modulo the saved
  /// world size (ranks pass their own, so every header is checked by someone). Throws
  /// CheckpointError naming the file if any of that fails.
  CheckpointReader(const std::string& dir, const std::string& tag = "", int probe_rank = 0);
  ~CheckpointReader();

  const std::string& tag() const { return tag_; }
  const std::string& directory() const { return tag_dir_; }
  int world_size() const { return index_.world_size; }
  CheckpointMode mode() const { return index_.mode; }
  /// The data file holding each saved rank's slices, relative to directory().
  const std::vector<std::string>& data_files() const { return index_.shard_files; }
  /// The saved units and their layouts.
  const std::vector<ShardFile::Unit>& units() const { return units_; }
  const TrainingState& state() const { return index_.state; }
  /// Buffers ("params", "exp_avg", ...) every unit of the checkpoint holds.
  const std::vector<std::string>& buffers() const { return buffers_; }
  /// Every tensor of the checkpoint, in save order.
  std::vector<sharding::TensorSpec> tensors() const;

  /// Throws CheckpointError listing every difference (missing, extra, other shape) between
  /// the checkpoint's tensors and `model`'s.
  void require_same_tensors(const std::vector<sharding::TensorSpec>& model) const;
  /// The RNG state saved by `rank`.
  std::string rng_state_of(int rank);

  /// Fills `out` with elements [begin, begin + out.size()) of buffer `buffer`
  /// laid out by `target` (any world size, alignment, tensor grouping); elements that belong
  /// to no tensor (padding) become 0. Throws CheckpointError naming file, dataset and tensor.
  void read(const sharding::FlatLayout& target, const std::string& buffer, std::int64_t begin, std::span<float> out);

 private:
  ShardFile& shard(int rank);  // the file holding `rank`'s slices
  struct Location {
    std::size_t unit = 0;
    std::int64_t offset = 0;  // of the tensor in the unit's flat buffer
  };

  std::string dir_, tag_, tag_dir_;
  IndexSummary index_;
  std::vector<ShardFile::Unit> units_;  // the saved layouts (from the probed shard)
  std::vector<std::string> buffers_;
  std::map<std::string, Location, std::less<>> locations_;
  std::map<std::string, std::unique_ptr<ShardFile>> open_shards_;  // by file name
};

}  // namespace zs::checkpoint
