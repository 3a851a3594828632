#pragma once
// Internal: the MPI datatype that moves one element of T.

#include <mpi.h>

#include <cstdint>
#include <type_traits>

namespace zs::detail {

template <class T>
MPI_Datatype mpi_type() {
  if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
  else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
  else if constexpr (std::is_same_v<T, std::uint16_t>) return MPI_UINT16_T;  // 16-bit floats, copied only
  else static_assert(!sizeof(T), "no MPI datatype for this element type");
}

}  // namespace zs::detail
