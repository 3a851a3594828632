#pragma once
// Collectives on device (GPU) buffers. Two paths behind one interface:
//  - NcclDeviceCommunicator: NCCL on a dedicated stream, bootstrapped through MPI (the unique
//    id is broadcast over the host communicator; no rendezvous by port or sleep).
//  - StagedDeviceCommunicator: device buffers staged through pinned host memory and reduced
//    with the host Communicator. For where NCCL cannot serve: several ranks sharing one GPU
//    (NCCL refuses duplicate GPUs in one communicator), no NCCL, MPI not CUDA-aware.
// make_device_communicator() picks: NCCL when every rank has a GPU of its own, staged otherwise.
//
// Contract: collective (every rank, same order, same sizes), as for Communicator. Work is
// ordered on `stream`: the collective starts after the work already queued on `stream`, and
// work queued on `stream` afterwards sees its result. 16-bit floats: NCCL reduces them in
// NCCL's own arithmetic; the staged path widens to float32 like the host path.

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>

#include "zeroshard/comm/collective_options.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/dtype.hpp"

namespace zs {

struct DeviceBuffer {
  void* data = nullptr;  // device pointer
  std::int64_t count = 0;
  DType dtype = DType::float32;
};

class DeviceCommunicator {
 public:
  virtual ~DeviceCommunicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// "nccl" or "staged".
  virtual std::string path() const = 0;
  virtual void all_reduce(DeviceBuffer data, ReduceOp op, cudaStream_t stream) = 0;
  /// `full` holds size()*S elements, `shard` S; `full` is scratch afterwards.
  virtual void reduce_scatter(DeviceBuffer full, DeviceBuffer shard, ReduceOp op, cudaStream_t stream) = 0;
  virtual void all_gather(DeviceBuffer shard, DeviceBuffer full, cudaStream_t stream) = 0;
};

/// Collective over `host`. Selects the device of this rank (local rank modulo the node's GPU
/// count) and the path (see above); `force_staged` skips NCCL. Throws CudaError when no GPU
/// is visible.
std::unique_ptr<DeviceCommunicator> make_device_communicator(Communicator& host, bool force_staged = false);

}  // namespace zs
