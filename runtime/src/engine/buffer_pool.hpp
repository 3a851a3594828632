#pragma once
// Buffers of float32 or 16-bit elements that account for themselves in the memory ledger
// (RAII), drawn from a pool
// that keeps freed buffers for reuse instead of handing them back to the OS: a freed
// multi-MiB buffer is faulted in again on every use otherwise, which dominated CPU step time
// when measured (docs/performance.md). Idle pooled bytes are ledgered as "buffers".

#include <cstdint>
#include <span>
#include <vector>

#include "zeroshard/aligned_vector.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/dtype.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"

namespace zs::detail {

class BufferPool;

/// A buffer of size() elements of dtype() (float32 unless taken otherwise; bfloat16 and
/// float16 for mixed precision) recorded under one ledger category while it holds storage.
/// The float accessors (data, span, slice, operator[]) are for float32 buffers only; raw()
/// and host() serve every dtype. Move-only. Destroying or reset()ing it returns its storage
/// to the pool.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { reset(); }
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// A buffer over `elements` float32 elements at `data` that it does not own (the node-shared
  /// parameters, node_shared_memory.hpp), ledgered as `ledgered_bytes` under `category` while
  /// it lives (a rank's share of memory the node holds once). reset() forgets it.
  static Buffer external(float* data, std::int64_t elements, MemoryCategory category, std::int64_t ledgered_bytes,
                         MemoryLedger& ledger);
  bool is_external() const { return external_ != nullptr; }

  float* data() { return base(); }
  const float* data() const { return base(); }
  /// Elements of dtype() (not floats of storage).
  std::int64_t size() const { return elements_; }
  bool empty() const { return elements_ == 0; }
  DType dtype() const { return dtype_; }
  std::span<float> span() { return {base(), static_cast<std::size_t>(elements_)}; }
  std::span<const float> span() const { return {base(), static_cast<std::size_t>(elements_)}; }
  float& operator[](std::int64_t i) { return base()[i]; }
  /// Elements [offset, offset + count).
  std::span<float> slice(std::int64_t offset, std::int64_t count) { return span().subspan(offset, count); }
  /// The address of element `offset`, any dtype.
  void* raw(std::int64_t offset = 0) { return reinterpret_cast<char*>(base()) + offset * size_of(dtype_); }
  const void* raw(std::int64_t offset = 0) const {
    return reinterpret_cast<const char*>(base()) + offset * size_of(dtype_);
  }
  /// Elements [offset, offset + count) as a collective's buffer, any dtype.
  HostBuffer host(std::int64_t offset, std::int64_t count) { return {raw(offset), count, dtype_}; }
  HostBuffer host() { return host(0, elements_); }
  /// Any value for float32; 16-bit buffers can only be zeroed (fill(0)).
  void fill(float value);
  /// Gives the storage back to the pool now (no-op when empty).
  void reset();

 private:
  friend class BufferPool;
  float* base() { return external_ ? external_ : data_.data(); }
  const float* base() const { return external_ ? external_ : data_.data(); }
  AlignedFloats data_;  // ceil(elements x element size / 4) floats
  float* external_ = nullptr;  // or storage owned elsewhere (external())
  std::int64_t external_bytes_ = 0;
  MemoryLedger* external_ledger_ = nullptr;
  std::int64_t elements_ = 0;
  DType dtype_ = DType::float32;
  MemoryCategory category_ = MemoryCategory::buffers;
  BufferPool* pool_ = nullptr;
};

/// Whether idle storage of `capacity` floats may serve a request for `elements`: large enough,
/// and at most a quarter larger. Every byte of idle storage was touched (it is resident), so a
/// shard taking a released gathered buffer twice its size would keep the other half resident
/// unledgered (a stage-3 rank built with 8 such groups held 64 MiB more than its ledger). The
/// memory planner's replay (runtime/src/allocation_replay.cpp) reuses by the same rule.
constexpr bool reusable_for(std::int64_t capacity, std::int64_t elements) {
  return capacity >= elements && capacity <= elements + elements / 4;
}

class BufferPool {
 public:
  explicit BufferPool(MemoryLedger& ledger) : ledger_(ledger) {}
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// A buffer of `elements` floats under `category`: the best-fitting idle buffer that is
  /// reusable_for it, or a new one. Contents are unspecified unless `fill` is given.
  Buffer take(MemoryCategory category, std::int64_t elements);
  Buffer take(MemoryCategory category, std::int64_t elements, float fill);
  /// The same for `elements` of `dtype` (float32, bfloat16, float16), storage rounded up to
  /// whole floats; zero-filled if `zeroed`.
  Buffer take(MemoryCategory category, std::int64_t elements, DType dtype, bool zeroed);
  MemoryLedger& ledger() { return ledger_; }

 private:
  friend class Buffer;
  void give_back(AlignedFloats& storage, MemoryCategory category);

  MemoryLedger& ledger_;
  std::vector<AlignedFloats> idle_;
};

}  // namespace zs::detail
