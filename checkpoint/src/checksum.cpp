#include "zeroshard/checkpoint/checksum.hpp"

#include <zlib.h>

#include <algorithm>

namespace zs::checkpoint {

std::uint32_t crc32_of_bytes(std::span<const char> bytes, std::uint32_t running) {
  return static_cast<std::uint32_t>(crc32_z(running, reinterpret_cast<const Bytef*>(bytes.data()), bytes.size()));
}

std::uint32_t crc32_of(std::span<const float> data) {
  return crc32_of_bytes({reinterpret_cast<const char*>(data.data()), data.size_bytes()});
}

std::vector<std::uint32_t> block_checksums(std::span<const float> data, std::int64_t block_elements) {
  std::vector<std::uint32_t> sums;
  const auto n = static_cast<std::int64_t>(data.size());
  for (std::int64_t begin = 0; begin < n; begin += block_elements)
    sums.push_back(crc32_of(data.subspan(begin, std::min(block_elements, n - begin))));
  return sums;
}

}  // namespace zs::checkpoint
