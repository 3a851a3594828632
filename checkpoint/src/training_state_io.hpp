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

}  // namespace zs::checkpoint::detail
