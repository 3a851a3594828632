#pragma once
// Float storage aligned to a cache line (64 bytes: one AVX-512 register, two AVX ones).
//
// Why: vectorised reductions (Eigen's sums, dot products) peel scalar elements until the data
// is aligned to the vector width, so the order of additions, and hence the last bits of the
// result, depend on the address modulo 32 or 64 bytes. malloc only promises 16. With every
// buffer and tensor starting on a 64-byte boundary (and the flat layouts' tensors at multiples
// of 16 floats inside them), a computation gives the same bits wherever its buffers happen to
// be allocated: the stages stay bitwise identical in SIMD builds (tests/mpi/test_engine.cpp).

#include <cstddef>
#include <new>
#include <vector>

namespace zs {

inline constexpr std::size_t kBufferAlignment = 64;  // bytes

/// A standard allocator returning kBufferAlignment-aligned storage.
template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() noexcept = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBufferAlignment}));
  }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{kBufferAlignment}); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const noexcept {
    return true;
  }
};

/// The storage of tensors and engine buffers.
using AlignedFloats = std::vector<float, AlignedAllocator<float>>;

}  // namespace zs
