#include "zeroshard/checkpoint/checksum.hpp"

#include <zlib.h>

#include <algorithm>

namespace zs::checkpoint {

std::uint32_t crc32_of(std::span<const float> data) {
  return static_cast<std::uint32_t>(
      crc32_z(crc32_z(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(data.data()), data.size_bytes()));
}

std::vector<std::uint32_t> block_checksums(std::span<const float> data, std::int64_t block_elements) {
  std::vector<std::uint32_t> sums;
  const auto n = static_cast<std::int64_t>(data.size());
  for (std::int64_t begin = 0; begin < n; begin += block_elements)
    sums.push_back(crc32_of(data.subspan(begin, std::min(block_elements, n - begin))));
  return sums;
}

}  // namespace zs::checkpoint
