#pragma once
// The manifest of a tag: the size and CRC-32 of every file of the save, kept in a plain text
// file beside them (DIR/TAG/manifest.txt) that HDF5 never parses. Every reader checks a file
// against it, in one sequential read, BEFORE HDF5 opens the file: HDF5 1.10 trusts its own
// metadata and crashes on some corrupted bytes (H5HG_read, H5S_select_deserialize) before it
// returns an error, so a damaged file must never reach it. docs/checkpoint-format.md, "Manifest".
//
// The text, one line per file, sorted by name:
//
//   # ZeroShard checkpoint manifest 1: CRC-32 (zlib's, as Python's zlib.crc32), size in bytes, file
//   1f0c2a9e 20480 index.h5
//   7a11c0de 5245440 shard_00000.h5
//
// The CRC is computed while the save writes each file (it reads every file back anyway), so
// the manifest costs the save no extra pass over the data.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/checksum.hpp"
#include "zeroshard/checkpoint/index_file.hpp"

namespace zs::checkpoint {

inline constexpr const char* kManifestFileName = "manifest.txt";

/// The digest of bytes [offset, offset + bytes) of the file `path`, read once, sequentially;
/// bytes < 0: to the end of the file. Throws CheckpointError naming the file and the system's
/// reason, or if the file ends before offset + bytes.
FileDigest digest_of_file(const std::string& path, std::int64_t offset = 0, std::int64_t bytes = -1);
/// The digest of `first`'s bytes followed by `second`'s (zlib crc32_combine): ranks that
/// digest consecutive ranges of one file make the whole file's digest without re-reading it.
FileDigest concatenated(const FileDigest& first, const FileDigest& second);
/// "0x1f0c2a9e"
std::string crc32_text(std::uint32_t crc);

/// File name (in the tag directory) -> digest.
using Manifest = std::map<std::string, FileDigest>;

/// The manifest's text (format above).
std::string manifest_text(const Manifest& manifest);
/// Parses manifest text read from `path` (named in errors). Strict: the header line, then per
/// line exactly 8 lowercase hex digits, a size of 1-19 decimal digits, a file name without '/'
/// (not "." or ".."), each name once. Throws CheckpointError naming the line and what was expected.
Manifest parse_manifest(const std::string& text, const std::string& path);
/// DIR/TAG's manifest; nullopt if the tag has none (written before ZeroShard wrote manifests).
/// Throws CheckpointError if it exists but cannot be read, is larger than any world size
/// needs (1 GiB), or does not parse.
std::optional<Manifest> read_manifest(const std::string& tag_dir);
/// The digests of files `names` of `tag_dir` (each read once).
Manifest manifest_of_files(const std::string& tag_dir, const std::vector<std::string>& names);
/// Writes (or replaces) TAG_DIR/manifest.txt durably: a temporary file, fsync, rename, fsync
/// of the directory. Used by `zeroshard-ckpt seal` (a checkpoint written before manifests) and
/// by tests; a save writes its manifest into the staging directory before the commit.
void write_manifest(const std::string& tag_dir, const Manifest& manifest);

/// The check every reader of a tag runs before HDF5 opens one of its files (CheckpointReader,
/// so Engine::load, the examples' --resume, consolidate and inspect; verify_checkpoint;
/// list_tags for each index). Not thread-safe; not collective (a collective reader runs it
/// inside run_on_all_ranks, so a mismatch on one rank is raised on every rank).
class TagFiles {
 public:
  /// Reads TAG_DIR's manifest if it has one (read_manifest's errors).
  explicit TagFiles(std::string tag_dir);
  bool has_manifest() const { return manifest_.has_value(); }
  /// Checks file `name` of the tag against the manifest, once per name (later calls return at
  /// once). Throws CheckpointError naming the file, the manifest, the expected and found size
  /// or CRC-32 and the fix (another tag, or the file restored from the same save) if the file
  /// is missing, not listed, or differs. Without a manifest: nothing is checked.
  void require_intact(const std::string& name);
  /// After the (verified) index is read: a manifest must list exactly the index and the data
  /// files it names; a tag without one must have an index that does not say it wrote one (a
  /// deleted manifest is refused, not read as a checkpoint from before manifests). Throws
  /// CheckpointError naming the file and the difference.
  void require_matches_index(const IndexSummary& index) const;
  /// The warning for a tag without a manifest (its files are opened unchecked), naming it and
  /// the fix (`zeroshard-ckpt seal`); empty if it has one.
  std::string unchecked_warning() const;

 private:
  std::string tag_dir_;
  std::optional<Manifest> manifest_;
  std::vector<std::string> verified_;
};

}  // namespace zs::checkpoint
