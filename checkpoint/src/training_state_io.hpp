#pragma once
// The training-state attributes shared by shard files and the index file.

#include <hdf5.h>

#include <span>
#include <vector>

#include "zeroshard/checkpoint/image_arena.hpp"

#include "zeroshard/checkpoint/hdf5_check.hpp"

#include "zeroshard/checkpoint/shard_contents.hpp"

namespace zs::checkpoint::detail {

void write_training_state(hid_t file, const TrainingState& state);
TrainingState read_training_state(hid_t file);

/// A new HDF5 file in memory (core driver, no backing store) with room for `data_bytes`.
/// Default (oldest compatible) format: images of the newer superblock versions taken from an
/// open file do not open in HDF5 1.10.8 (superblock checksum mismatch, measured).
/// Its bytes live in `arena`.
Hid create_in_memory_file(std::int64_t data_bytes, ImageArena& arena);
/// The bytes of an in-memory file (in its arena) as they would be on disk, after a flush.
/// Valid until the arena builds another file.
std::span<const char> file_image(hid_t file, const ImageArena& arena);
/// Stops HDF5 printing error stacks (ZS_H5_CHECK reports them); idempotent.
void quiet_hdf5();

}  // namespace zs::checkpoint::detail
