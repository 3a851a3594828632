#include "mpi_ops.hpp"

#include <algorithm>
#include <climits>
#include <cstring>

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

#include "mpi_type.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

int checked_mpi_count(std::int64_t count, const char* collective) {
  if (count > INT_MAX)
    throw InvalidArgument(std::string(collective) + " with algorithm=mpi: a chunk of " +
                          std::to_string(count) +
                          " elements exceeds MPI's int count; use algorithm=ring, which "
                          "segments any 64-bit count");
  return static_cast<int>(count);
}

bool SingleRequestOp::request_complete() {
  int flag = 0;
  ZS_MPI_CHECK(MPI_Test(&request_, &flag, MPI_STATUS_IGNORE));
  return flag != 0;
}

namespace {
bool overlaps(const void* a, std::size_t a_bytes, const void* b, std::size_t b_bytes) {
  auto pa = reinterpret_cast<std::uintptr_t>(a), pb = reinterpret_cast<std::uintptr_t>(b);
  return pa < pb + b_bytes && pb < pa + a_bytes;
}
}  // namespace

template <class T>
MpiReduceScatterOp<T>::MpiReduceScatterOp(CommContext& ctx, T* full, std::int64_t count,
                                          T* own_chunk, bool average)
    : ctx_(ctx), full_(full), own_chunk_(own_chunk), average_(average), bounds_{count, ctx.size} {
  in_place_ = overlaps(full, count * sizeof(T), own_chunk, bounds_.size(ctx.rank) * sizeof(T));
  // MPI forbids aliased send and receive buffers; in place, the input is `full` and MPI writes
  // this rank's result at its start, moved to `own_chunk` on completion.
  const void* send = in_place_ ? MPI_IN_PLACE : static_cast<const void*>(full);
  T* receive = in_place_ ? full : own_chunk;
  bool equal_chunks = count % ctx.size == 0;
  if (equal_chunks) {
    int chunk = checked_mpi_count(bounds_.chunk_elems(), "reduce_scatter");
    ZS_MPI_CHECK(MPI_Ireduce_scatter_block(send, receive, chunk, mpi_type<T>(), MPI_SUM, ctx.comm, &request_));
  } else {
    for (int c = 0; c < ctx.size; ++c)
      receive_counts_.push_back(checked_mpi_count(bounds_.size(c), "reduce_scatter"));
    ZS_MPI_CHECK(MPI_Ireduce_scatter(send, receive, receive_counts_.data(), mpi_type<T>(), MPI_SUM,
                                     ctx.comm, &request_));
  }
}

template <class T>
bool MpiReduceScatterOp<T>::progress() {
  if (!request_complete()) return false;
  const std::int64_t length = bounds_.size(ctx_.rank);
  if (in_place_) std::memmove(own_chunk_, full_, length * sizeof(T));
  if (average_) {
    const T divisor = static_cast<T>(ctx_.size);
    for (std::int64_t i = 0; i < length; ++i) own_chunk_[i] /= divisor;
  }
  return true;
}

template <class T>
std::string MpiReduceScatterOp<T>::describe() const {
  return "MPI reduce_scatter of " + std::to_string(bounds_.count) + " elements";
}

template <class T>
MpiAllGatherOp<T>::MpiAllGatherOp(CommContext& ctx, T* full, std::int64_t count, const T* own_chunk) : count_(count) {
  const ChunkBounds bounds{count, ctx.size};
  const int chunk = checked_mpi_count(bounds.chunk_elems(), "all_gather");
  const bool in_place = own_chunk == full + bounds.begin(ctx.rank);
  ZS_MPI_CHECK(MPI_Iallgather(in_place ? MPI_IN_PLACE : own_chunk, chunk, mpi_type<T>(), full, chunk,
                              mpi_type<T>(), ctx.comm, &request_));
}

template <class T>
std::string MpiAllGatherOp<T>::describe() const {
  return "MPI all_gather of " + std::to_string(count_) + " elements";
}

MpiSmallOp::MpiSmallOp(CommContext& ctx, void* data, int count, MPI_Datatype type, MPI_Op op, const char* op_name,
                       const char* type_name)
    : op_name_(op_name), type_name_(type_name), count_(count), data_(data) {
  if (type == MPI_DATATYPE_NULL) {
    ZS_MPI_CHECK(MPI_Ibarrier(ctx.comm, &request_));
    return;
  }
  int type_size = 0;
  ZS_MPI_CHECK(MPI_Type_size(type, &type_size));
  bytes_ = static_cast<std::size_t>(count) * static_cast<std::size_t>(type_size);
  storage_ = new std::byte[bytes_ ? bytes_ : 1];
  // copy_n, not memcpy: zero scalars may come with a null pointer (UBSan: memcpy(_, nullptr, 0)).
  std::copy_n(static_cast<const std::byte*>(data), bytes_, storage_);
  ZS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, storage_, count, type, op, ctx.comm, &request_));
}

MpiSmallOp::~MpiSmallOp() { delete[] storage_; }

std::string MpiSmallOp::describe() const {
  if (!type_name_) return "barrier";
  return std::string("all_reduce_scalars (") + op_name_ + ") of " + std::to_string(count_) + " " + type_name_;
}

bool MpiSmallOp::progress() {
  if (!request_complete()) return false;
  std::copy_n(storage_, bytes_, static_cast<std::byte*>(data_));
  return true;
}

void MpiSmallOp::abandon() noexcept {
  if (request_ != MPI_REQUEST_NULL) {
    // Leaked on purpose: MPI may still write it. Told to LeakSanitizer, which would report it.
#ifdef __SANITIZE_ADDRESS__
    __lsan_ignore_object(storage_);
#endif
    storage_ = nullptr;
  }
  SingleRequestOp::abandon();
}

template class MpiReduceScatterOp<float>;
template class MpiReduceScatterOp<double>;
template class MpiAllGatherOp<float>;
template class MpiAllGatherOp<double>;
template class MpiAllGatherOp<std::uint16_t>;

}  // namespace zs::detail
