#pragma once
// Internal: the "mpi" algorithm family, MPI's own nonblocking collectives. They are posted at
// construction, so MPI sees them in issue order on every rank, as MPI requires.

#include <mpi.h>

#include <cstdint>
#include <string>

#include "chunk_bounds.hpp"
#include "comm_context.hpp"
#include "pending_op.hpp"

namespace zs::detail {

/// One nonblocking MPI collective and its request. MPI can neither cancel a collective nor
/// free its active request (Open MPI reports MPI_ERR_REQUEST, fatal on MPI_COMM_WORLD's
/// handler), so abandoning leaves the request to MPI: the communicator is not used again.
class SingleRequestOp : public PendingOp {
 public:
  void abandon() noexcept override { request_ = MPI_REQUEST_NULL; }
  void outstanding_requests(std::vector<MPI_Request*>& out) override { out.push_back(&request_); }

 protected:
  /// Tests the request; throws MpiError if it failed.
  bool request_complete();
  MPI_Request request_ = MPI_REQUEST_NULL;
};

/// MPI_Ireduce_scatter_block (equal chunks) or MPI_Ireduce_scatter (uneven chunks) of `full`
/// (count elements, scratch afterwards) into `own_chunk`, which may alias its chunk in `full`.
template <class T>
class MpiReduceScatterOp final : public SingleRequestOp {
 public:
  MpiReduceScatterOp(CommContext& ctx, T* full, std::int64_t count, T* own_chunk, bool average);
  bool progress() override;
  std::string describe() const override;

 private:
  CommContext& ctx_;
  T* full_;
  T* own_chunk_;
  bool average_;
  bool in_place_;
  ChunkBounds bounds_;
  std::vector<int> receive_counts_;
};

/// MPI_Iallgather of equal chunks; `own_chunk` may alias its chunk in `full`.
template <class T>
class MpiAllGatherOp final : public SingleRequestOp {
 public:
  MpiAllGatherOp(CommContext& ctx, T* full, std::int64_t count, const T* own_chunk);
  bool progress() override { return request_complete(); }
  std::string describe() const override;

 private:
  std::int64_t count_;
};

/// MPI_Iallreduce of a few scalars in place (agreements, norms), or MPI_Ibarrier when `type`
/// is MPI_DATATYPE_NULL. `op_name` ("min") and `type_name` ("int64") name it in errors.
/// The values travel in storage of the op's own, copied back into `data` on completion: an
/// abandoned reduction may still be completed by MPI later (a peer that wakes up), and must
/// then write into memory that is still there, so abandon() leaks that storage on purpose.
class MpiSmallOp final : public SingleRequestOp {
 public:
  MpiSmallOp(CommContext& ctx, void* data, int count, MPI_Datatype type, MPI_Op op, const char* op_name,
             const char* type_name);
  ~MpiSmallOp() override;
  bool progress() override;
  void abandon() noexcept override;
  std::string describe() const override;

 private:
  const char* op_name_;
  const char* type_name_;
  int count_;
  void* data_;
  std::size_t bytes_ = 0;
  std::byte* storage_ = nullptr;
};

/// MPI takes int counts; the mpi family refuses larger chunks instead of truncating them.
int checked_mpi_count(std::int64_t count, const char* collective);

extern template class MpiReduceScatterOp<float>;
extern template class MpiReduceScatterOp<double>;
extern template class MpiAllGatherOp<float>;
extern template class MpiAllGatherOp<double>;
extern template class MpiAllGatherOp<std::uint16_t>;

}  // namespace zs::detail
