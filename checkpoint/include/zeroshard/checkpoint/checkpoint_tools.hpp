#pragma once
// Offline operations on a saved checkpoint (single process, no MPI): what the zeroshard-ckpt
// tool runs, available to programs too.

#include <cstdint>
#include <string>

#include "zeroshard/dtype.hpp"
#include <vector>

namespace zs::checkpoint {

struct VerifyReport {
  std::string tag;
  int shards = 0;  // ranks whose slices were checked
  int files = 0;   // data files: one per rank, or the one shared file
  std::int64_t tensors = 0;
  /// Bytes whose checksums were recomputed: every file whole against the manifest, or (a tag
  /// without one) every dataset block against its `crc32`.
  std::int64_t bytes_checked = 0;
  std::vector<std::string> problems;  // empty: intact
  /// Not a problem: the tag has no manifest (saved before manifests), so its files were
  /// opened without the whole-file check (TagFiles::unchecked_warning). Empty otherwise.
  std::string warning;
};

/// Every file against the tag's manifest first (size and CRC-32; a file that differs is
/// reported and never opened with HDF5), then every shard present and readable, every
/// dataset's block checksums (only in a tag without a manifest, whose CRC covers the same
/// bytes: what a load checks, so verify refuses exactly what a load refuses), every fragment map equal to
/// the one its layout implies, and every data file of the same save as the index
/// (data_file_differences(), the check every reader runs: save id, step, ranks, layouts).
/// Problems are collected, not thrown, except when the tag cannot be opened at all
/// (CheckpointError).
VerifyReport verify_checkpoint(const std::string& dir, const std::string& tag = "");

/// Writes one plain HDF5 file `out` with every parameter at full shape in float32 under
/// /params/<name> and, with `include_optimizer`, /optimizer/<state>/<name>; the training state
/// as root attributes. Written to `out`.tmp and renamed, so `out` is never half-written.
/// Every block read is checksum-verified. Returns the tag consolidated.
/// `parameter_dtype` bfloat16 or float16 exports /params rounded to nearest even from the
/// float32 masters (a 16-bit HDF5 float type: HDF5, and h5py through it, converts on read;
/// the root attribute params_dtype names it); optimizer states stay float32. Throws
/// InvalidArgument for another dtype, and before reading anything for an `out` that is a
/// directory or whose directory does not exist.
std::string consolidate_checkpoint(const std::string& dir, const std::string& tag, const std::string& out,
                                   bool include_optimizer, DType parameter_dtype = DType::float32);

/// Adds a manifest to a tag saved before ZeroShard wrote manifests, so that from then on its
/// files are checked before HDF5 opens them: verify_checkpoint() first, and only if it found
/// no problem, the digest of the index and every data file into DIR/TAG/manifest.txt
/// (write_manifest). Throws CheckpointError listing verify's problems (nothing written), or if
/// the tag already has a manifest (it is checked instead: a sealed tag is never re-sealed over
/// a corruption). Returns the tag sealed.
std::string seal_checkpoint(const std::string& dir, const std::string& tag = "");

}  // namespace zs::checkpoint
