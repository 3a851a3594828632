#pragma once
// HDF5 files built in memory (core driver) in an ImageArena: shard and index files are built
// this way and then written to disk by write_file_durably().

#include <hdf5.h>

#include <cstdint>
#include <span>

#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/image_arena.hpp"

namespace zs::checkpoint::detail {

/// A new HDF5 file in memory (core driver, no backing store) with room for `data_bytes`.
/// Default (oldest compatible) format: images of the newer superblock versions taken from an
/// open file do not open in HDF5 1.10.8 (superblock checksum mismatch, measured).
/// Its bytes live in `arena`.
Hid create_in_memory_file(std::int64_t data_bytes, ImageArena& arena);
/// The bytes of an in-memory file (in its arena) as they would be on disk, after a flush.
/// Valid until the arena builds another file.
std::span<const char> file_image(hid_t file, const ImageArena& arena);

}  // namespace zs::checkpoint::detail
