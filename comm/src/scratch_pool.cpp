#include "scratch_pool.hpp"

#include <algorithm>

namespace zs::detail {

ScratchBuffer::~ScratchBuffer() {
  if (pool_ && data_) pool_->give_back(std::move(data_), bytes_);
}

ScratchBuffer& ScratchBuffer::operator=(ScratchBuffer&& other) noexcept {
  if (this != &other) {
    if (pool_ && data_) pool_->give_back(std::move(data_), bytes_);
    pool_ = other.pool_;
    data_ = std::move(other.data_);
    bytes_ = other.bytes_;
  }
  return *this;
}

ScratchBuffer ScratchPool::acquire(std::size_t bytes) {
  // Best fit among the free buffers; a new one only when none is large enough.
  auto best = free_.end();
  for (auto it = free_.begin(); it != free_.end(); ++it)
    if (it->bytes >= bytes && (best == free_.end() || it->bytes < best->bytes)) best = it;
  if (best != free_.end()) {
    ScratchBuffer buffer(this, std::move(best->data), best->bytes);
    free_.erase(best);
    return buffer;
  }
  return ScratchBuffer(this, std::make_unique_for_overwrite<std::byte[]>(bytes), bytes);
}

std::size_t ScratchPool::bytes_held() const noexcept {
  std::size_t total = 0;
  for (const auto& f : free_) total += f.bytes;
  return total;
}

void ScratchPool::give_back(std::unique_ptr<std::byte[]> data, std::size_t bytes) {
  free_.push_back({std::move(data), bytes});
}

}  // namespace zs::detail
