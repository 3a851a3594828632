#pragma once
// Internal: reusable scratch buffers for collectives. Freed multi-MiB buffers would go back to
// the OS and be faulted in again on the next step (docs/collectives.md: MPI_Reduce_scatter_block
// page-faults through its temporaries every call and is 13-36x slower than the ring at >= 16 MiB);
// the pool keeps them.

#include <cstddef>
#include <memory>
#include <vector>

namespace zs::detail {

class ScratchPool;

/// A borrowed buffer, returned to its pool on destruction. Move-only.
class ScratchBuffer {
 public:
  ScratchBuffer() = default;
  ScratchBuffer(ScratchPool* pool, std::unique_ptr<std::byte[]> data, std::size_t bytes)
      : pool_(pool), data_(std::move(data)), bytes_(bytes) {}
  ~ScratchBuffer();
  ScratchBuffer(ScratchBuffer&&) noexcept = default;
  ScratchBuffer& operator=(ScratchBuffer&&) noexcept;

  template <class T>
  T* as() const noexcept { return reinterpret_cast<T*>(data_.get()); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  ScratchPool* pool_ = nullptr;
  std::unique_ptr<std::byte[]> data_;
  std::size_t bytes_ = 0;
};

class ScratchPool {
 public:
  /// A buffer of at least `bytes`, aligned for any element type, reused when one is free.
  ScratchBuffer acquire(std::size_t bytes);
  std::size_t bytes_held() const noexcept;

 private:
  friend class ScratchBuffer;
  void give_back(std::unique_ptr<std::byte[]> data, std::size_t bytes);

  struct Free {
    std::unique_ptr<std::byte[]> data;
    std::size_t bytes;
  };
  std::vector<Free> free_;
};

}  // namespace zs::detail
