#include "zeroshard/checkpoint/shard_contents.hpp"

#include <cstdio>

namespace zs::checkpoint {

ShardContents snapshot(const ShardContents& contents) {
  ShardContents copy = contents;
  copy.storage.clear();
  for (UnitShard& unit : copy.units)
    for (ShardBuffer& buffer : unit.buffers) {
      copy.storage.emplace_back(buffer.data.begin(), buffer.data.end());
      buffer.data = copy.storage.back();
    }
  return copy;
}

std::string shard_file_name(int rank) {
  char name[32];
  std::snprintf(name, sizeof name, "shard_%05d.h5", rank);
  return name;
}

}  // namespace zs::checkpoint
