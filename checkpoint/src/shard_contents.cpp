#include "zeroshard/checkpoint/shard_contents.hpp"

#include <cstdio>

namespace zs::checkpoint {

std::string shard_file_name(int rank) {
  char name[32];
  std::snprintf(name, sizeof name, "shard_%05d.h5", rank);
  return name;
}

std::string data_file_name(CheckpointMode mode, int rank) {
  return mode == CheckpointMode::shared_file ? kSharedFileName : shard_file_name(rank);
}

}  // namespace zs::checkpoint
