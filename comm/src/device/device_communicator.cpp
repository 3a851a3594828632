#include "zeroshard/comm/device/device_communicator.hpp"

#include <mpi.h>

#include <algorithm>

#include "nccl_device_communicator.hpp"
#include "staged_device_communicator.hpp"
#include "zeroshard/comm/device/cuda_check.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs {

std::unique_ptr<DeviceCommunicator> make_device_communicator(Communicator& host, bool force_staged) {
  const int devices = cuda_device_count();
  // Every rank must agree on the path, so the decision uses all-reduced facts only.
  int min_devices = devices;
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &min_devices, 1, MPI_INT, MPI_MIN, host.handle()));
  if (min_devices == 0)
    throw CudaError(rank_and_host() + ": make_device_communicator: a rank sees no CUDA device; run the "
                    "device path on GPU nodes or use the host Communicator");
  Communicator node = host.split_shared_node();
  ZS_CUDA_CHECK(cudaSetDevice(node.rank() % devices));
  // NCCL refuses two ranks on one GPU ("Duplicate GPU detected"): stage instead when any node
  // has more ranks than GPUs.
  int oversubscribed = node.size() > devices ? 1 : 0;
  ZS_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &oversubscribed, 1, MPI_INT, MPI_MAX, host.handle()));
  if (force_staged || oversubscribed) return std::make_unique<detail::StagedDeviceCommunicator>(host);
  return std::make_unique<detail::NcclDeviceCommunicator>(host);
}

}  // namespace zs
