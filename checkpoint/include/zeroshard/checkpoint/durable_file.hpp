#pragma once
// Getting bytes onto disk so that a crash cannot leave a file that looks complete but is not.

#include <span>
#include <string>

namespace zs::checkpoint {

/// Writes `bytes` to a new file at `path` (fails if it exists), fsyncs it, reads it back and
/// compares checksums. Throws CheckpointError naming the file and the system's reason (no
/// space left, file too large, permission denied); a partial file is removed.
void write_file_durably(const std::string& path, std::span<const char> bytes);

/// fsync of a file or directory (a rename is durable once its directory is synced).
void fsync_path(const std::string& path, bool directory);

}  // namespace zs::checkpoint
