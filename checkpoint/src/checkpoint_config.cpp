#include "zeroshard/checkpoint/checkpoint_config.hpp"

#include "zeroshard/error.hpp"

namespace zs::checkpoint {

std::string to_string(CheckpointMode mode) {
  return mode == CheckpointMode::per_rank ? "per_rank" : "shared_file";
}

CheckpointMode parse_checkpoint_mode(const std::string& text) {
  if (text == "per_rank") return CheckpointMode::per_rank;
  if (text == "shared_file") return CheckpointMode::shared_file;
  throw InvalidArgument("checkpoint.mode '" + text + "' is unknown: use per_rank or shared_file");
}

void CheckpointConfig::validate() const {
  if (keep_last < 0)
    throw InvalidArgument("checkpoint.keep_last = " + std::to_string(keep_last) + " must be >= 0 (0 keeps every tag)");
}

}  // namespace zs::checkpoint
