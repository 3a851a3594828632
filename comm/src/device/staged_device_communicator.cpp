#include "staged_device_communicator.hpp"

#include "../collective_contract.hpp"
#include "zeroshard/comm/device/cuda_check.hpp"

namespace zs::detail {

namespace {
std::size_t bytes_of(const DeviceBuffer& b) { return static_cast<std::size_t>(b.count) * size_of(b.dtype); }

// Device -> pinned host, finished before returning: MPI reads the host copy next.
void download(void* host, const DeviceBuffer& device, cudaStream_t stream) {
  ZS_CUDA_CHECK(cudaMemcpyAsync(host, device.data, bytes_of(device), cudaMemcpyDeviceToHost, stream));
  ZS_CUDA_CHECK(cudaStreamSynchronize(stream));
}
// Pinned host -> device, queued on `stream` so later work on it sees the result. The
// synchronize keeps the pinned buffer from being overwritten by the next collective early.
void upload(const DeviceBuffer& device, const void* host, cudaStream_t stream) {
  ZS_CUDA_CHECK(cudaMemcpyAsync(device.data, host, bytes_of(device), cudaMemcpyHostToDevice, stream));
  ZS_CUDA_CHECK(cudaStreamSynchronize(stream));
}
}  // namespace

PinnedBuffer::~PinnedBuffer() {
  if (data_) cudaFreeHost(data_);
}

void* PinnedBuffer::reserve(std::size_t bytes) {
  if (bytes <= bytes_ && data_) return data_;
  if (data_) ZS_CUDA_CHECK(cudaFreeHost(data_));
  data_ = nullptr;
  bytes_ = 0;
  ZS_CUDA_CHECK(cudaMallocHost(&data_, bytes == 0 ? 1 : bytes));
  bytes_ = bytes;
  return data_;
}

void StagedDeviceCommunicator::all_reduce(DeviceBuffer data, ReduceOp op, cudaStream_t stream) {
  void* host = full_.reserve(bytes_of(data));
  download(host, data, stream);
  host_.all_reduce(HostBuffer{host, data.count, data.dtype}, {.op = op, .algorithm = std::nullopt, .label = "staged device"}).wait();
  upload(data, host, stream);
}

void StagedDeviceCommunicator::reduce_scatter(DeviceBuffer full, DeviceBuffer shard, ReduceOp op,
                                              cudaStream_t stream) {
  check_shard_contract("reduce_scatter", full.count, full.dtype, shard.count, shard.dtype, size());
  void* host_full = full_.reserve(bytes_of(full));
  void* host_shard = shard_.reserve(bytes_of(shard));
  download(host_full, full, stream);
  host_.reduce_scatter(HostBuffer{host_full, full.count, full.dtype}, HostBuffer{host_shard, shard.count, shard.dtype},
                       {.op = op, .algorithm = std::nullopt, .label = "staged device"})
      .wait();
  upload(shard, host_shard, stream);
}

void StagedDeviceCommunicator::all_gather(DeviceBuffer shard, DeviceBuffer full, cudaStream_t stream) {
  check_shard_contract("all_gather", full.count, full.dtype, shard.count, shard.dtype, size());
  void* host_full = full_.reserve(bytes_of(full));
  void* host_shard = shard_.reserve(bytes_of(shard));
  download(host_shard, shard, stream);
  host_.all_gather(HostBuffer{host_shard, shard.count, shard.dtype}, HostBuffer{host_full, full.count, full.dtype})
      .wait();
  upload(full, host_full, stream);
}

}  // namespace zs::detail
