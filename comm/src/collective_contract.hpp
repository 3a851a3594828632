#pragma once
// Internal: the size contract of reduce_scatter and all_gather, shared by the host and device
// paths so both reject a mismatch with the same message.

#include <cstdint>
#include <string>

#include "zeroshard/dtype.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

inline void check_shard_contract(const char* collective, std::int64_t full_count, DType full_dtype,
                                 std::int64_t shard_count, DType shard_dtype, int size) {
  if (full_dtype != shard_dtype)
    throw InvalidArgument(std::string(collective) + ": the full buffer is " + to_string(full_dtype) +
                          " but the shard is " + to_string(shard_dtype) + "; pass buffers of one dtype");
  if (shard_count < 0 || full_count != shard_count * size)
    throw InvalidArgument(std::string(collective) + ": the full buffer has " + std::to_string(full_count) +
                          " elements but world size " + std::to_string(size) + " x shard " +
                          std::to_string(shard_count) + " = " + std::to_string(shard_count * size) +
                          "; pad the full buffer to a multiple of the world size (sharding::FlatLayout does)");
}

}  // namespace zs::detail
