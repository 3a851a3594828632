#include "parallel_conversion.hpp"

#include <algorithm>
#include <exception>

#include "zeroshard/nn/compute_threads.hpp"

namespace zs::detail {

void for_each_chunk(std::int64_t elements, const std::function<void(std::int64_t first, std::int64_t count)>& convert) {
  const int threads = nn::compute_threads();
  if (threads <= 1 || elements < kParallelConversionElements) {
    if (elements > 0) convert(0, elements);
    return;
  }
  constexpr std::int64_t kAlign = 64;
  const std::int64_t chunk = ((elements + threads - 1) / threads + kAlign - 1) / kAlign * kAlign;
  // An exception must not leave an OpenMP region: the first one is kept and rethrown after it.
  std::exception_ptr failure;
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int t = 0; t < threads; ++t) {
    const std::int64_t first = t * chunk;
    if (first >= elements) continue;
    try {
      convert(first, std::min(chunk, elements - first));
    } catch (...) {
#pragma omp critical(zs_conversion_failure)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace zs::detail
