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

#include "zeroshard/checkpoint/file_manifest.hpp"
#include "zeroshard/checkpoint/index_file.hpp"
#include "zeroshard/checkpoint/shard_file.hpp"

namespace zs::checkpoint {

/// Whether data file `file`, named `name` in the index, belongs to the save the index
/// describes: the same save id (where both have one: files written before save ids existed
/// have none), training state (step, micro-step, stage, optimizer, configuration, client
/// state), world size and format version, exactly the ranks the
/// index maps to `name`, and, if `expected_units` is not empty, the same units (layouts and
/// buffers) as `expected_from` holds. Returns one line per difference, each naming what
/// differs (empty: it belongs). The one check shared by every reader: CheckpointReader runs
/// it on every data file it opens (so Engine::load, consolidate_checkpoint and
/// `zeroshard-ckpt inspect` refuse what verify_checkpoint reports).
std::vector<std::string> data_file_differences(const ShardFile& file, const std::string& name, const IndexSummary& index,
                                               const std::vector<ShardFile::Unit>& expected_units = {},
                                               const std::string& expected_from = "");
/// The message of a data file that does not belong to its index: names both files and every
/// difference, says "files of two saves mixed" and what to do.
std::string mixed_saves_message(const std::string& data_file_path, const std::string& index_path,
                                const std::vector<std::string>& differences);

/// The message of an index whose virtual datasets disagree with a data file's layout
/// (index_layout_differences()): names both files and every difference.
std::string index_disagrees_message(const std::string& data_file_path, const std::string& index_path,
                                    const std::vector<std::string>& differences);

/// The index of DIR/TAG (an empty tag: the one DIR/latest names) alone, checked against the
/// tag's manifest before HDF5 opens it (TagFiles): the training state, world size and data
/// file names, without opening a data file. For a caller that needs only those (the examples'
/// resume plan, run on every rank before Engine::load); a CheckpointReader checks the rest.
/// Throws CheckpointError naming the file and the problem.
IndexSummary read_checked_index(const std::string& dir, const std::string& tag = "");

class CheckpointReader {
 public:
  /// Opens DIR/TAG (an empty tag: the one DIR/latest names). Every file is checked against
  /// the tag's manifest (size and CRC-32, TagFiles) before HDF5 opens it: the index here, a
  /// data file when it is first opened (by this constructor or a later read): a mismatch is a
  /// CheckpointError naming the file, the expected and found values and the fix, never a
  /// crash inside HDF5. A tag without a manifest (saved before manifests) is opened with a
  /// warning on stderr when probe_rank is 0 (TagFiles::unchecked_warning). Then: reads the index, checks that
  /// every shard file is present, reads the layouts from shard `probe_rank` modulo the saved
  /// world size (ranks pass their own, so every header is checked by someone). Throws
  /// CheckpointError naming the file if any of that fails. Every data file opened, then or
  /// by a later read, must pass data_file_differences() against the index and the probed
  /// shard's layouts, or CheckpointError names it and what differs; the index's virtual
  /// datasets must map the probed layouts (index_layout_differences()).
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
  /// The save's id and the save it continues (empty for checkpoints written before save ids).
  const SaveIdentity& identity() const { return index_.identity; }
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
  std::string units_from_;  // the data file the layouts were read from
  IndexSummary index_;
  std::vector<ShardFile::Unit> units_;  // the saved layouts (from the probed shard)
  std::vector<std::string> buffers_;
  std::map<std::string, Location, std::less<>> locations_;
  std::map<std::string, std::unique_ptr<ShardFile>> open_shards_;  // by file name
  std::unique_ptr<TagFiles> files_;  // every file checked against the manifest before HDF5 opens it
};

}  // namespace zs::checkpoint
