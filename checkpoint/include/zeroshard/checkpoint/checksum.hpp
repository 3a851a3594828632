#pragma once
// Checksums of float arrays in fixed blocks, so a reader that needs only part of a dataset
// verifies only the blocks it reads (loading at another world size reads sub-ranges).

#include <cstdint>
#include <span>
#include <vector>

namespace zs::checkpoint {

/// Elements per checksum block (4 MiB of float32).
inline constexpr std::int64_t kChecksumBlockElements = std::int64_t{1} << 20;

/// CRC-32 (zlib's polynomial) of `bytes`, continuing from `running` (0 to start).
std::uint32_t crc32_of_bytes(std::span<const char> bytes, std::uint32_t running = 0);
/// CRC-32 of the bytes of `data`.
std::uint32_t crc32_of(std::span<const float> data);

/// Size (bytes) and CRC-32 (zlib's polynomial) of a file's bytes.
struct FileDigest {
  std::int64_t bytes = 0;
  std::uint32_t crc32 = 0;
  bool operator==(const FileDigest&) const = default;
};

/// One CRC-32 per block of `block_elements` elements (the last block may be shorter).
std::vector<std::uint32_t> block_checksums(std::span<const float> data,
                                           std::int64_t block_elements = kChecksumBlockElements);

}  // namespace zs::checkpoint
