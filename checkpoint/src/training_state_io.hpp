#pragma once
// The training-state attributes shared by shard files and the index file.

#include <hdf5.h>

#include <vector>

#include "zeroshard/checkpoint/hdf5_check.hpp"

#include "zeroshard/checkpoint/shard_contents.hpp"

namespace zs::checkpoint::detail {

void write_training_state(hid_t file, const TrainingState& state);
TrainingState read_training_state(hid_t file);

/// A new HDF5 file in memory (core driver, no backing store) with room for `data_bytes`.
/// Default (oldest compatible) format: HDF5 1.10.8's H5Fget_file_image writes a wrong
/// superblock checksum for the newer superblock versions (measured: such images do not open).
Hid create_in_memory_file(std::int64_t data_bytes);
/// The bytes of an in-memory file, as they would be on disk.
std::vector<char> file_image(hid_t file);
/// Stops HDF5 printing error stacks (ZS_H5_CHECK reports them); idempotent.
void quiet_hdf5();

}  // namespace zs::checkpoint::detail
