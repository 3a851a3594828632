#pragma once
// Internal: small pieces the layers of layers.cpp and transformer.cpp share (no copies of the
// same arithmetic in two places).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/nn/tensor.hpp"

namespace zs::nn::detail {

/// `shape` with its last dimension replaced by `last` (a layer's output shape from its input's).
inline Shape with_last(Shape shape, std::int64_t last) {
  shape.back() = last;
  return shape;
}

/// Calls the forward context's progress hook when one is set.
inline void call(const std::function<void()>* progress) {
  if (progress && *progress) (*progress)();
}

/// Throws InvalidArgument naming `layer` unless the input's last dimension is `features`.
inline void require_features(const std::string& layer, const Tensor& input, std::int64_t features) {
  if (input.shape().empty() || input.shape().back() != features)
    throw InvalidArgument(layer + ": input of shape " + to_string(input.shape()) + " does not end in " +
                          std::to_string(features) + " features");
}

/// PyTorch's inverted dropout: each draw keeps with probability 1 - p, as 1/(1-p), or drops,
/// as 0. One Bernoulli draw per element, from the caller's stream.
class DropoutMask {
 public:
  explicit DropoutMask(float p) : keep_(1.0 - p), scale_(1.0f / (1.0f - p)) {}
  float operator()(std::mt19937_64& random) { return keep_(random) ? scale_ : 0.0f; }

 private:
  std::bernoulli_distribution keep_;
  float scale_;
};

/// One row of softmax cross-entropy: returns -log softmax(z)[label] (in double) and writes
/// d/dz of that loss divided by `n` into g (n: the number of rows the mean is over).
inline double softmax_cross_entropy_row(const float* z, std::int64_t classes, std::int32_t label, std::int64_t n,
                                        float* g) {
  const float max = *std::max_element(z, z + classes);
  double sum = 0;
  for (std::int64_t c = 0; c < classes; ++c) sum += std::exp(static_cast<double>(z[c] - max));
  for (std::int64_t c = 0; c < classes; ++c)
    g[c] = static_cast<float>(std::exp(static_cast<double>(z[c] - max)) / sum / n) - (c == label ? 1.0f / n : 0.0f);
  return std::log(sum) - (z[label] - max);
}

}  // namespace zs::nn::detail
