#pragma once
// The training-state attributes shared by shard files and the index file.

#include <hdf5.h>

#include <span>
#include <vector>

#include "zeroshard/checkpoint/image_arena.hpp"

#include "zeroshard/checkpoint/hdf5_check.hpp"

#include "zeroshard/checkpoint/shard_contents.hpp"

namespace zs::checkpoint::detail {

/// The state's attributes, and the save's identity where it has one (absent attributes, not
/// empty strings, otherwise: as in files written before identities existed).
void write_training_state(hid_t file, const TrainingState& state, const SaveIdentity& identity = {});
/// Reads and checks the state (docs/checkpoint-format.md, "Validation"): 0 <= step <=
/// micro_step <= 2^53, stage 0-3, an optimizer name. Throws CheckpointError naming the field,
/// its value and what was expected (the caller adds the file).
TrainingState read_training_state(hid_t file);
/// The file's format_version, checked: 1 to kFormatVersion; a newer one is refused saying so.
std::int64_t read_format_version(hid_t file);
/// Empty fields where the file has no such attributes.
SaveIdentity read_save_identity(hid_t file);

}  // namespace zs::checkpoint::detail
