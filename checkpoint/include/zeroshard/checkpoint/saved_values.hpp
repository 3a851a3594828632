#pragma once
// What a value read from a checkpoint may be: the ranges every reader (Engine::load, resume,
// consolidate_checkpoint, `zeroshard-ckpt verify/inspect`) checks when it opens a file, before
// any value is used in arithmetic, as a size or as an index. docs/checkpoint-format.md,
// "Validation".

#include <cstdint>
#include <random>
#include <string>

namespace zs::checkpoint {

/// The largest `step` / `micro_step` a checkpoint may record: 2^53, where an int64 step is
/// still exact as the double the LR schedule and Adam's bias correction compute with, and far
/// from the overflow of step + 1. A run does not get there (10^6 steps/s for 285 years).
inline constexpr std::int64_t kMaxSavedStep = std::int64_t{1} << 53;
/// ZeRO stages 0 (plain data parallelism) to 3.
inline constexpr std::int64_t kMaxStage = 3;
/// The largest world size a checkpoint may record (ranks and file counts are ints).
inline constexpr std::int64_t kMaxSavedWorldSize = std::int64_t{1} << 24;
/// The largest unit alignment, in elements.
inline constexpr std::int64_t kMaxAlignment = std::int64_t{1} << 30;

/// A rank's dropout generator as saved in `rng_state` (std::mt19937_64's text form, written
/// by operator<<). Throws CheckpointError "field `rng_state` = ..., expected ..." if the text is
/// not exactly such a state (missing, extra or out-of-range words).
std::mt19937_64 parse_rng_state(const std::string& text);

/// Whether `name` can be a saved optimizer name: lowercase letters, digits and '_', 1-64
/// characters ("adamw", "sgd"). Which optimizer it must be is the engine's check.
bool is_optimizer_name(const std::string& name);

}  // namespace zs::checkpoint
