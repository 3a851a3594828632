#pragma once
// Getting bytes onto disk so that a crash cannot leave a file that looks complete but is not.

#include <cstdint>
#include <span>
#include <string>

#include "zeroshard/checkpoint/checksum.hpp"

namespace zs::checkpoint {

/// Writes `bytes` to a new file at `path` (fails if it exists), fsyncs it, reads it back and
/// compares checksums. Returns the file's size and CRC-32 as read back (what a manifest lists,
/// file_manifest.hpp: no extra pass). Throws CheckpointError naming the file and the system's
/// reason (no space left, file too large, permission denied); a partial file is removed.
FileDigest write_file_durably(const std::string& path, std::span<const char> bytes);

/// Allocates disk blocks for the first `bytes` bytes of the existing file `path` (Linux
/// fallocate; the file grows to at least that size), so that later writes within them cannot
/// fail for lack of space. False where the file system cannot reserve (NFS, some parallel
/// file systems): nothing is reserved then. Throws CheckpointError naming the file and the
/// reason (no space left, file size limit).
bool reserve_file_space(const std::string& path, std::int64_t bytes);

/// fsync of a file or directory (a rename is durable once its directory is synced).
void fsync_path(const std::string& path, bool directory);

}  // namespace zs::checkpoint
