#pragma once
// Fashion-MNIST from the idx files (gzip'd, as Debian's dataset-fashion-mnist installs them).
// The example samples it with the library's zs::DistributedSampler.

#include <cstdint>
#include <string>
#include <vector>

namespace zs::examples {

struct Dataset {
  std::int64_t count = 0;
  std::int64_t features = 0;        // 784
  std::vector<float> images;        // count x features, normalised with the training set's mean/std
  std::vector<std::int32_t> labels; // 0..9
};

/// Reads `<dir>/<prefix>-images-idx3-ubyte.gz` and `<dir>/<prefix>-labels-idx1-ubyte.gz`
/// (prefix "train" or "t10k"). Throws InvalidArgument naming the file and what is wrong.
Dataset load_fashion_mnist(const std::string& dir, const std::string& prefix);

}  // namespace zs::examples
