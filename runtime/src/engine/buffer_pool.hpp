#pragma once
// Buffers of float32 or 16-bit elements that account for themselves in the memory ledger
// (RAII), drawn from a pool
// that keeps freed buffers for reuse instead of handing them back to the OS: a freed
// multi-MiB buffer is faulted in again on every use otherwise, which dominated CPU step time
// when measured (docs/performance.md). Idle pooled bytes are ledgered as "buffers".

#include <cstdint>
#include <optional>
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
  AlignedFloats data_;  // its whole capacity; the first floats_ are this buffer's
  std::int64_t floats_ = 0;  // ceil(elements x element size / 4)
  float* external_ = nullptr;  // or storage owned elsewhere (external())
  std::int64_t external_bytes_ = 0;
  MemoryLedger* external_ledger_ = nullptr;
  std::int64_t elements_ = 0;
  DType dtype_ = DType::float32;
  MemoryCategory category_ = MemoryCategory::buffers;
  BufferPool* pool_ = nullptr;
};

/// How long a taken buffer is held, which decides the idle storage that may serve it.
enum class Lifetime {
  /// Held across steps (shards, optimizer states, kept gradients, whole float32 parameters):
  /// only idle storage at most a quarter larger. Every byte of idle storage was touched (it is
  /// resident), so a shard taking a released gathered buffer twice its size would keep the
  /// other half resident for good (a stage-3 rank built with 8 such groups held 64 MiB more
  /// than its ledger when this rule was missing).
  kept,
  /// Given back within the step that took it (gathered parameters, gradients that are reduced
  /// or applied and freed, buckets, widened gradients): idle storage at most a quarter larger,
  /// or any larger storage last used for the same category; the smallest such. A step take
  /// that finds none frees the largest idle storage of its category (smaller than it) before it
  /// allocates, so a category's idle storage grows in size, not in number. Why: units differ
  /// in size, and a pool keeping one buffer of every size it met kept a whole model's
  /// gradients idle under optimizer.in_backward, which undid its saving. Same category only:
  /// a small gradient taking a large gathered buffer made the large gather allocate again
  /// (zs_fashion_mnist's stage 3 peaked 22% higher). It settles: storage is only replaced by
  /// larger storage, so after a few steps of the same pattern nothing is allocated (no page
  /// faults after warm-up; tests/unit/test_buffer_pool_reuse.cpp runs 2,000 random patterns).
  step,
};

inline std::int64_t capacity_floats(const AlignedFloats& storage) {
  return static_cast<std::int64_t>(storage.capacity());
}
inline std::int64_t capacity_floats(std::int64_t capacity) { return capacity; }

/// The pool's idle storage (AlignedFloats; the memory planner's replay,
/// runtime/src/allocation_replay.cpp, holds capacities only and must choose alike), each
/// ledgered whole as "buffers", with the category it last served.
template <class Storage>
class IdleStorage {
 public:
  explicit IdleStorage(MemoryLedger& ledger) : ledger_(ledger) {}
  ~IdleStorage() {
    for (const Entry& e : idle_) ledger_.release(MemoryCategory::buffers, capacity_floats(e.storage) * 4);
  }
  IdleStorage(const IdleStorage&) = delete;
  IdleStorage& operator=(const IdleStorage&) = delete;

  /// Takes out the storage that serves `floats` floats of `category` for `lifetime` (the
  /// smallest that may), its bytes beyond `floats` staying "buffers"; nullopt if none may. A
  /// step take that got none has made way: the largest idle storage of its category is freed.
  std::optional<Storage> reuse(std::int64_t floats, Lifetime lifetime, MemoryCategory category) {
    auto best = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
      if (may_serve(*it, floats, lifetime, category) &&
          (best == idle_.end() || capacity_floats(it->storage) < capacity_floats(best->storage)))
        best = it;
    if (best != idle_.end()) {
      Storage storage = std::move(best->storage);
      idle_.erase(best);
      ledger_.release(MemoryCategory::buffers, floats * 4);
      return storage;
    }
    if (lifetime == Lifetime::step) make_way(category);
    return std::nullopt;
  }
  /// Storage given back by a buffer of `category` that used `floats_used` floats of it.
  void add(Storage storage, std::int64_t floats_used, MemoryCategory category) {
    ledger_.release(category, floats_used * 4);
    ledger_.allocate(MemoryCategory::buffers, floats_used * 4);  // the rest was "buffers" already
    idle_.push_back({std::move(storage), category});
  }

 private:
  struct Entry {
    Storage storage;
    MemoryCategory category;
  };
  static bool may_serve(const Entry& e, std::int64_t floats, Lifetime lifetime, MemoryCategory category) {
    const std::int64_t capacity = capacity_floats(e.storage);
    if (capacity < floats) return false;
    return capacity <= floats + floats / 4 || (lifetime == Lifetime::step && e.category == category);
  }
  void make_way(MemoryCategory category) {
    auto largest = idle_.end();
    for (auto it = idle_.begin(); it != idle_.end(); ++it)
      if (it->category == category &&
          (largest == idle_.end() || capacity_floats(it->storage) > capacity_floats(largest->storage)))
        largest = it;
    if (largest == idle_.end()) return;
    ledger_.release(MemoryCategory::buffers, capacity_floats(largest->storage) * 4);
    idle_.erase(largest);
  }

  MemoryLedger& ledger_;
  std::vector<Entry> idle_;
};

class BufferPool {
 public:
  explicit BufferPool(MemoryLedger& ledger) : ledger_(ledger), idle_(ledger) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// A buffer of `elements` floats under `category`: idle storage chosen by IdleStorage::reuse,
  /// or new storage. Contents are unspecified unless `fill` is given. The storage's bytes
  /// beyond the request are ledgered as "buffers" while the buffer is held.
  Buffer take(Lifetime lifetime, MemoryCategory category, std::int64_t elements);
  Buffer take(Lifetime lifetime, MemoryCategory category, std::int64_t elements, float fill);
  /// The same for `elements` of `dtype` (float32, bfloat16, float16), storage rounded up to
  /// whole floats; zero-filled if `zeroed`.
  Buffer take(Lifetime lifetime, MemoryCategory category, std::int64_t elements, DType dtype, bool zeroed);
  MemoryLedger& ledger() { return ledger_; }
  /// How many takes found no idle storage and allocated (each new page is faulted in once).
  std::int64_t allocations() const { return allocations_; }

 private:
  friend class Buffer;
  void give_back(AlignedFloats& storage, std::int64_t floats_used, MemoryCategory category);

  MemoryLedger& ledger_;
  IdleStorage<AlignedFloats> idle_;  // each at size() == capacity()
  std::int64_t allocations_ = 0;
};

}  // namespace zs::detail
