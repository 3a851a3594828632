#include "buffer_pool.hpp"
#include "parallel_conversion.hpp"

#include <algorithm>

#include "zeroshard/error.hpp"

namespace zs::detail {

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::move(other.data_)),
      floats_(other.floats_),
      external_(other.external_),
      external_bytes_(other.external_bytes_),
      external_ledger_(other.external_ledger_),
      elements_(other.elements_),
      dtype_(other.dtype_),
      category_(other.category_),
      pool_(other.pool_) {
  other.data_ = AlignedFloats();
  other.floats_ = 0;
  other.external_ = nullptr;
  other.elements_ = 0;
}

Buffer Buffer::external(float* data, std::int64_t elements, MemoryCategory category, std::int64_t ledgered_bytes,
                        MemoryLedger& ledger) {
  Buffer buffer;
  buffer.external_ = data;
  buffer.external_bytes_ = ledgered_bytes;
  buffer.external_ledger_ = &ledger;
  buffer.elements_ = elements;
  buffer.category_ = category;
  ledger.allocate(category, ledgered_bytes);
  return buffer;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    reset();
    data_ = std::move(other.data_);
    floats_ = other.floats_;
    external_ = other.external_;
    external_bytes_ = other.external_bytes_;
    external_ledger_ = other.external_ledger_;
    other.external_ = nullptr;
    elements_ = other.elements_;
    dtype_ = other.dtype_;
    other.data_ = AlignedFloats();
    other.floats_ = 0;
    other.elements_ = 0;
    category_ = other.category_;
    pool_ = other.pool_;
  }
  return *this;
}

void Buffer::fill(float value) {
  if (dtype_ != DType::float32 && value != 0.0f)
    throw InvalidArgument("Buffer::fill: a " + to_string(dtype_) + " buffer can only be zeroed");
  // All-zero bits are +0 in every dtype. On the compute threads: the engine clears whole
  // gradient buffers every step (4 bytes per parameter written).
  const std::int64_t floats = external_ ? elements_ : floats_;
  detail::for_each_chunk(floats,
                         [&](std::int64_t first, std::int64_t count) { std::fill_n(base() + first, count, value); });
}

void Buffer::reset() {
  if (external_) {
    external_ledger_->release(category_, external_bytes_);
    external_ = nullptr;
    elements_ = 0;
    return;
  }
  if (data_.capacity() == 0) return;
  if (pool_) pool_->give_back(data_, floats_, category_);
  data_ = AlignedFloats();
  floats_ = 0;
  elements_ = 0;
}

Buffer BufferPool::take(Lifetime lifetime, MemoryCategory category, std::int64_t elements) {
  return take(lifetime, category, elements, DType::float32, false);
}

Buffer BufferPool::take(Lifetime lifetime, MemoryCategory category, std::int64_t elements, DType dtype, bool zeroed) {
  const std::int64_t bytes = elements * static_cast<std::int64_t>(size_of(dtype));
  const std::int64_t floats = (bytes + 3) / 4;
  Buffer buffer;
  buffer.category_ = category;
  buffer.pool_ = this;
  if (floats == 0) {
    // No storage (a unit without parameters): nothing reused, nothing allocated.
  } else if (std::optional<AlignedFloats> storage = idle_.reuse(floats, lifetime, category)) {
    buffer.data_ = std::move(*storage);
  } else {
    buffer.data_.resize(static_cast<std::size_t>(floats));
    ++allocations_;
  }
  buffer.floats_ = floats;
  buffer.elements_ = elements;
  buffer.dtype_ = dtype;
  ledger_.allocate(category, floats * 4);
  if (zeroed) buffer.fill(0.0f);
  return buffer;
}

Buffer BufferPool::take(Lifetime lifetime, MemoryCategory category, std::int64_t elements, float fill) {
  Buffer buffer = take(lifetime, category, elements);
  buffer.fill(fill);
  return buffer;
}

void BufferPool::give_back(AlignedFloats& storage, std::int64_t floats_used, MemoryCategory category) {
  idle_.add(std::move(storage), floats_used, category);
}

}  // namespace zs::detail
