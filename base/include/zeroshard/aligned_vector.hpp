#pragma once
// Float storage aligned to a cache line (64 bytes: one AVX-512 register, two AVX ones).
//
// Why: vectorised reductions (Eigen's sums, dot products) peel scalar elements until the data
// is aligned to the vector width, so the order of additions, and hence the last bits of the
// result, depend on the address modulo 32 or 64 bytes. malloc only promises 16. With every
// buffer and tensor starting on a 64-byte boundary (and the flat layouts' tensors at multiples
// of 16 floats inside them), a computation gives the same bits wherever its buffers happen to
// be allocated: the stages stay bitwise identical in SIMD builds (tests/mpi/test_engine.cpp).

#include <sys/mman.h>

#include <cstddef>
#include <new>
#include <vector>

namespace zs {

inline constexpr std::size_t kBufferAlignment = 64;  // bytes
/// Allocations of at least this many bytes are mapped pages of their own (mmap), given back to
/// the OS whole when freed. Why: the engine's big buffers (a group's gathered parameters or
/// gradients, flat shards, optimizer states) live long and are pooled, so they should never
/// share malloc's heap with small objects: there, glibc's dynamic mmap threshold moves up after
/// the first 16 MiB free and later buffers come from a heap whose freed holes stay resident
/// (a stage-3 rank held ~50 MiB more than its model states plus one gathered group right after
/// construction). Mapping them ourselves changes nothing else in the process's malloc.
inline constexpr std::size_t kMappedBytes = std::size_t{1} << 20;

/// A standard allocator returning kBufferAlignment-aligned storage (page-aligned from
/// kMappedBytes up). Throws std::bad_alloc when memory is exhausted.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() noexcept = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kMappedBytes) {
      void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      return static_cast<T*>(p);
    }
    return static_cast<T*>(::operator new(bytes, std::align_val_t{kBufferAlignment}));
  }
  void deallocate(T* p, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes >= kMappedBytes) ::munmap(p, bytes);
    else ::operator delete(p, std::align_val_t{kBufferAlignment});
  }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
};

/// The storage of tensors and engine buffers.
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

}  // namespace zs
