#include "device_pattern.hpp"

namespace zs::testing {

namespace {
__global__ void fill_kernel(float* data, std::int64_t count, std::int64_t first, float scale) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < count;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
    data[i] = scale * static_cast<float>((first + i) % 13 + 1);
}
}  // namespace

void fill_pattern(float* device_data, std::int64_t count, std::int64_t first, float scale, cudaStream_t stream) {
  if (count == 0) return;
  const int blocks = static_cast<int>(std::min<std::int64_t>((count + 255) / 256, 1024));
  fill_kernel<<<blocks, 256, 0, stream>>>(device_data, count, first, scale);
}

}  // namespace zs::testing
