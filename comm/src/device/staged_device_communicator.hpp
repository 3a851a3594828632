#pragma once
// Internal: device buffers staged through pinned host memory and reduced by the host
// Communicator. The host blocks for the duration of each collective (the device-to-host copy
// must finish before MPI can read it): this is the fallback path, correct everywhere.

#include <cuda_runtime_api.h>

#include <cstddef>

#include "zeroshard/comm/device/device_communicator.hpp"

namespace zs::detail {

/// A pinned host buffer that grows on demand and is reused (pinning is expensive).
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  ~PinnedBuffer();
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;
  void* reserve(std::size_t bytes);

 private:
  void* data_ = nullptr;
  std::size_t bytes_ = 0;
};

class StagedDeviceCommunicator final : public DeviceCommunicator {
 public:
  explicit StagedDeviceCommunicator(Communicator& host) : host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  std::string path() const override { return "staged"; }
  void all_reduce(DeviceBuffer data, ReduceOp op, cudaStream_t stream) override;
  void reduce_scatter(DeviceBuffer full, DeviceBuffer shard, ReduceOp op, cudaStream_t stream) override;
  void all_gather(DeviceBuffer shard, DeviceBuffer full, cudaStream_t stream) override;

 private:
  Communicator& host_;
  PinnedBuffer full_, shard_;
};

}  // namespace zs::detail
