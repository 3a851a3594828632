#include "zeroshard/checkpoint/checkpoint_config.hpp"

#include "zeroshard/error.hpp"

namespace zs::checkpoint {

void CheckpointConfig::validate() const {
  if (keep_last < 0)
    throw InvalidArgument("checkpoint.keep_last = " + std::to_string(keep_last) + " must be >= 0 (0 keeps every tag)");
}

}  // namespace zs::checkpoint
