#pragma once
// A checkpoint data file: plain HDF5 that any HDF5 tool reads. It holds the slices of ranks
// [first_rank, first_rank + rank_count): one rank in per-rank mode (shard_RRRRR.h5), every rank
// in shared-file mode (shared.h5, written collectively by write_shared_file()).
//
//   /                      attributes: format_version, world_size, stage, step, micro_step,
//                          optimizer, config; per-rank files: rank, rng_state; the shared
//                          file: first_rank, rank_count, rng_states (one per rank)
//   /client_state          attributes: the caller's integers (data sampler position, ...)
//   /units/unit_0000/      attributes: world_size, alignment, shard_numel, tensor_names,
//                          tensor_shapes ("784,512"): enough to rebuild the FlatLayout
//     fragments            int64 [F][4]: tensor index, offset in the tensor, offset in the
//                          dataset, length (the fragment maps of the file's ranks, in rank
//                          order; cross-checked against the layout)
//     params, exp_avg, ... float32 [rank_count * shard_numel], rank after rank; attribute
//                          crc32: one CRC-32 per 2^20 elements of each rank's slice, rank-major
//
// docs/checkpoint-format.md is the full description.

#include <hdf5.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/image_arena.hpp"
#include "zeroshard/checkpoint/index_file.hpp"
#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace zs::checkpoint {

/// The bytes of the shard file for `contents`, built in memory (HDF5's core driver): the disk
/// is then written by write_file_durably() in one sequential pass, and an I/O error (a full
/// disk) is a plain errno there, never a half-closed HDF5 file. Throws CheckpointError.
/// The bytes live in `arena` until it builds another file.
std::span<const char> build_shard_image(const ShardContents& contents, ImageArena& arena);

/// Reads a checkpoint data file (either mode), verifying checksums of everything it reads.
class ShardFile {
 public:
  /// A unit: its name, layout and buffers (dataset names, in file order).
  using Unit = IndexUnit;

  /// Opens and checks everything the file's header says (docs/checkpoint-format.md,
  /// "Validation"): format version, training state ranges, world size and ranks, RNG states,
  /// every unit's layout (overflow-checked), its fragment table against that layout, the
  /// datasets' sizes and checksum counts. Throws CheckpointError naming the file, the field,
  /// its value and what was expected (or that it is missing, truncated or not a shard file).
  explicit ShardFile(std::string path);
  ~ShardFile();
  ShardFile(ShardFile&&) noexcept;
  ShardFile& operator=(ShardFile&&) noexcept;

  const std::string& path() const { return path_; }
  int format_version() const { return format_version_; }
  /// The ranks whose slices the file holds: [first_rank, first_rank + rank_count).
  int first_rank() const { return first_rank_; }
  int rank_count() const { return static_cast<int>(rng_states_.size()); }
  bool holds_rank(int rank) const { return rank >= first_rank_ && rank < first_rank_ + rank_count(); }
  int world_size() const { return world_size_; }
  const TrainingState& state() const { return state_; }
  const SaveIdentity& identity() const { return identity_; }
  const std::string& rng_state(int rank) const;
  const std::vector<Unit>& units() const { return units_; }

  /// The file's bytes were checked whole against the tag's manifest just before it was opened
  /// (TagFiles::require_intact): read() then skips the block CRCs, which would check the same
  /// bytes a second time (a committed tag is never written again: a save of the same tag
  /// swaps in a new directory). verify() still checks every block. CheckpointReader calls it
  /// for the files of a tag with a manifest.
  void set_whole_file_checked() { whole_file_checked_ = true; }
  /// Elements [begin, begin + out.size()) of rank `rank`'s slice of dataset `buffer` of unit
  /// `unit`. Every checksum block touched is verified (unless set_whole_file_checked()); a
  /// mismatch throws CheckpointError naming file, dataset and the tensors the bad block holds.
  void read(int rank, std::size_t unit, const std::string& buffer, std::int64_t begin, std::span<float> out);
  /// Reads every dataset whole and checks every checksum and fragment map. Returns one line
  /// per problem found (empty: the file is intact).
  std::vector<std::string> verify();

 private:
  void read_verified_blocks(int rank, std::size_t unit, const std::string& buffer, std::int64_t first_block,
                            std::int64_t last_block, std::vector<float>& out);
  std::string describe_block(int rank, std::size_t unit, std::int64_t begin, std::int64_t end) const;
  void check_holds(int rank) const;

  std::string path_;
  Hid file_;
  int format_version_ = 0, first_rank_ = 0, world_size_ = 0;
  TrainingState state_;
  SaveIdentity identity_;
  std::vector<std::string> rng_states_;  // one per rank the file holds
  std::vector<Unit> units_;
  std::vector<float> read_buffer_;
  bool whole_file_checked_ = false;
  // The last verified block, so consecutive small reads do not read and check it again.
  struct CachedBlock {
    int rank = -1;
    std::size_t unit = 0;
    std::string buffer;
    std::int64_t block = -1;
    std::vector<float> data;
  } cache_;
};

/// The fragment maps of ranks [first_rank, first_rank + rank_count) of `layout`, in rank order,
/// with shard offsets counted from the start of a data file holding those ranks' slices.
std::vector<sharding::Fragment> fragments_in_file(const sharding::FlatLayout& layout, int first_rank, int rank_count);

/// "784,512" <-> {784, 512}; "" is a scalar.
std::string shape_to_text(const std::vector<std::int64_t>& shape);
std::vector<std::int64_t> shape_from_text(const std::string& text);

}  // namespace zs::checkpoint
