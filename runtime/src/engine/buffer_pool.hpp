#pragma once
// Float buffers that account for themselves in the memory ledger (RAII), drawn from a pool
// that keeps freed buffers for reuse instead of handing them back to the OS: a freed
// multi-MiB buffer is faulted in again on every use otherwise, which dominated CPU step time
// when measured (docs/performance.md). Idle pooled bytes are ledgered as "buffers".

#include <cstdint>
#include <span>
#include <vector>

#include "zeroshard/aligned_vector.hpp"
#include "zeroshard/runtime/memory_ledger.hpp"

namespace zs::detail {

class BufferPool;

/// A float buffer of size() elements recorded under one ledger category while it holds
/// storage. Move-only. Destroying or reset()ing it returns its storage to the pool.
class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { reset(); }
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  float* data() { return data_.data(); }
  const float* data() const { return data_.data(); }
  std::int64_t size() const { return static_cast<std::int64_t>(data_.size()); }
  bool empty() const { return data_.empty(); }
  std::span<float> span() { return data_; }
  std::span<const float> span() const { return data_; }
  float& operator[](std::int64_t i) { return data_[static_cast<std::size_t>(i)]; }
  /// Elements [offset, offset + count).
  std::span<float> slice(std::int64_t offset, std::int64_t count) { return span().subspan(offset, count); }
  void fill(float value);
  /// Gives the storage back to the pool now (no-op when empty).
  void reset();

 private:
  friend class BufferPool;
  AlignedFloats data_;
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
  MemoryLedger& ledger() { return ledger_; }

 private:
  friend class Buffer;
  void give_back(AlignedFloats& storage, MemoryCategory category);

  MemoryLedger& ledger_;
  std::vector<AlignedFloats> idle_;
};

}  // namespace zs::detail
