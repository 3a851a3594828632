#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace zs::testing {
/// data[i] = scale * ((first + i) % 13 + 1), computed on the device: a GPU-side input with a
/// closed-form sum across ranks.
void fill_pattern(float* device_data, std::int64_t count, std::int64_t first, float scale, cudaStream_t stream);
}  // namespace zs::testing
