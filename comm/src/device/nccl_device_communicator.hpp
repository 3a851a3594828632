#pragma once
// Internal: the NCCL path of DeviceCommunicator.

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "zeroshard/comm/device/device_communicator.hpp"

namespace zs::detail {

class NcclDeviceCommunicator final : public DeviceCommunicator {
 public:
  /// Collective over `host`: rank 0 creates the NCCL unique id and broadcasts it over MPI.
  explicit NcclDeviceCommunicator(Communicator& host);
  /// Aborts (not destroys) the NCCL communicator: destroy could wait forever on a peer that
  /// failed; abort never blocks.
  ~NcclDeviceCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string path() const override { return "nccl"; }
  void all_reduce(DeviceBuffer data, ReduceOp op, cudaStream_t stream) override;
  void reduce_scatter(DeviceBuffer full, DeviceBuffer shard, ReduceOp op, cudaStream_t stream) override;
  void all_gather(DeviceBuffer shard, DeviceBuffer full, cudaStream_t stream) override;

 private:
  // Communication runs on comm_stream_, ordered after `stream` and before later work on it
  // by events: the host never waits.
  void begin(cudaStream_t stream);
  void end(cudaStream_t stream);

  int rank_ = 0, size_ = 1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t comm_stream_ = nullptr;
  cudaEvent_t ready_ = nullptr, done_ = nullptr;
};

}  // namespace zs::detail
