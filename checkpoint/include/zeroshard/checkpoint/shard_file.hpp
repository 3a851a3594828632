#pragma once
// One rank's shard file: plain serial HDF5 that any HDF5 tool reads.
//
//   /                      attributes: format_version, rank, world_size, stage, step, micro_step,
//                          optimizer, config, rng_state
//   /client_state          attributes: the caller's integers (data sampler position, ...)
//   /units/unit_0000/      attributes: world_size, alignment, shard_numel, tensor_names,
//                          tensor_shapes ("784,512"): enough to rebuild the FlatLayout
//     fragments            int64 [F][4]: tensor index, offset in the tensor, offset in the shard,
//                          length (the fragment map; cross-checked against the layout)
//     params, exp_avg, ... float32 [shard_numel], attribute crc32: one CRC-32 per 2^20 elements
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
#include "zeroshard/checkpoint/shard_contents.hpp"

namespace zs::checkpoint {

/// The bytes of the shard file for `contents`, built in memory (HDF5's core driver): the disk
/// is then written by write_file_durably() in one sequential pass, and an I/O error (a full
/// disk) is a plain errno there, never a half-closed HDF5 file. Throws CheckpointError.
/// The bytes live in `arena` until it builds another file.
std::span<const char> build_shard_image(const ShardContents& contents, ImageArena& arena);

/// Reads a shard file, verifying checksums of everything it reads.
class ShardFile {
 public:
  struct Unit {
    std::string name;
    sharding::FlatLayout layout;
    std::vector<std::string> buffers;  // dataset names, in file order
  };

  /// Throws CheckpointError naming the file if it is missing, truncated, not a shard file, or
  /// of a newer format version.
  explicit ShardFile(std::string path);
  ~ShardFile();
  ShardFile(ShardFile&&) noexcept;
  ShardFile& operator=(ShardFile&&) noexcept;

  const std::string& path() const { return path_; }
  int format_version() const { return format_version_; }
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  const TrainingState& state() const { return state_; }
  const std::string& rng_state() const { return rng_state_; }
  const std::vector<Unit>& units() const { return units_; }

  /// Elements [begin, begin + out.size()) of dataset `buffer` of unit `unit`. Every checksum
  /// block touched is verified; a mismatch throws CheckpointError naming file, dataset and
  /// the tensors the bad block holds.
  void read(std::size_t unit, const std::string& buffer, std::int64_t begin, std::span<float> out);
  /// Reads every dataset whole and checks every checksum and fragment map. Returns one line
  /// per problem found (empty: the file is intact).
  std::vector<std::string> verify();

 private:
  void read_verified_blocks(std::size_t unit, const std::string& buffer, std::int64_t first_block,
                            std::int64_t last_block, std::vector<float>& out);
  std::string describe_block(std::size_t unit, std::int64_t begin, std::int64_t end) const;

  std::string path_;
  Hid file_;
  int format_version_ = 0, rank_ = 0, world_size_ = 0;
  TrainingState state_;
  std::string rng_state_;
  std::vector<Unit> units_;
  std::vector<float> read_buffer_;
  // The last verified block, so consecutive small reads do not read and check it again.
  struct CachedBlock {
    std::size_t unit = 0;
    std::string buffer;
    std::int64_t block = -1;
    std::vector<float> data;
  } cache_;
};

/// "784,512" <-> {784, 512}; "" is a scalar.
std::string shape_to_text(const std::vector<std::int64_t>& shape);
std::vector<std::int64_t> shape_from_text(const std::string& text);

}  // namespace zs::checkpoint
