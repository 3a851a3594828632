#include "nccl_device_communicator.hpp"

#include "../collective_contract.hpp"
#include "zeroshard/comm/device/cuda_check.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::detail {

namespace {
ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::float32: return ncclFloat32;
    case DType::float64: return ncclFloat64;
    case DType::bfloat16: return ncclBfloat16;
    case DType::float16: return ncclFloat16;
  }
  throw InvalidArgument("NCCL: unsupported dtype " + to_string(dtype));
}
// At world size 1 an average is the sum (x / 1 == x, exactly), and ncclAvg must not be used
// there: NCCL before 2.29.7 leaves the last count % 32 elements of a one-rank ncclAvg unwritten
// (its oneRankReduce kernel splits the range with floor division; NVIDIA/nccl#1950, seen here
// with NCCL 2.28.3 on an H200 by tests/gpu: 3 of 100003 elements wrong). A one-rank ncclSum is a
// plain copy and is not affected.
ncclRedOp_t nccl_op(ReduceOp op, int world_size) {
  return op == ReduceOp::sum || world_size == 1 ? ncclSum : ncclAvg;
}

}  // namespace

NcclDeviceCommunicator::NcclDeviceCommunicator(Communicator& host) : rank_(host.rank()), size_(host.size()) {
  ncclUniqueId id{};
  if (rank_ == 0) ZS_NCCL_CHECK(ncclGetUniqueId(&id));
  ZS_MPI_CHECK(MPI_Bcast(&id, sizeof id, MPI_BYTE, 0, host.handle()));
  ZS_CUDA_CHECK(cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
  ZS_CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
  ZS_CUDA_CHECK(cudaEventCreateWithFlags(&done_, cudaEventDisableTiming));
  ZS_NCCL_CHECK(ncclCommInitRank(&comm_, size_, id, rank_));
}

NcclDeviceCommunicator::~NcclDeviceCommunicator() {
  if (comm_) ncclCommAbort(comm_);
  if (done_) cudaEventDestroy(done_);
  if (ready_) cudaEventDestroy(ready_);
  if (comm_stream_) cudaStreamDestroy(comm_stream_);
}

void NcclDeviceCommunicator::begin(cudaStream_t stream) {
  ZS_CUDA_CHECK(cudaEventRecord(ready_, stream));
  ZS_CUDA_CHECK(cudaStreamWaitEvent(comm_stream_, ready_, 0));
}

void NcclDeviceCommunicator::end(cudaStream_t stream) {
  ZS_CUDA_CHECK(cudaEventRecord(done_, comm_stream_));
  ZS_CUDA_CHECK(cudaStreamWaitEvent(stream, done_, 0));
}

void NcclDeviceCommunicator::all_reduce(DeviceBuffer data, ReduceOp op, cudaStream_t stream) {
  begin(stream);
  ZS_NCCL_CHECK(ncclAllReduce(data.data, data.data, static_cast<std::size_t>(data.count), nccl_type(data.dtype),
                              nccl_op(op, size_), comm_, comm_stream_));
  end(stream);
}

void NcclDeviceCommunicator::reduce_scatter(DeviceBuffer full, DeviceBuffer shard, ReduceOp op, cudaStream_t stream) {
  check_shard_contract("reduce_scatter", full.count, full.dtype, shard.count, shard.dtype, size_);
  begin(stream);
  ZS_NCCL_CHECK(ncclReduceScatter(full.data, shard.data, static_cast<std::size_t>(shard.count),
                                  nccl_type(full.dtype), nccl_op(op, size_), comm_, comm_stream_));
  end(stream);
}

void NcclDeviceCommunicator::all_gather(DeviceBuffer shard, DeviceBuffer full, cudaStream_t stream) {
  check_shard_contract("all_gather", full.count, full.dtype, shard.count, shard.dtype, size_);
  begin(stream);
  ZS_NCCL_CHECK(ncclAllGather(shard.data, full.data, static_cast<std::size_t>(shard.count), nccl_type(full.dtype),
                              comm_, comm_stream_));
  end(stream);
}

}  // namespace zs::detail
