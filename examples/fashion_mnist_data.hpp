#pragma once
// Fashion-MNIST from the idx files (gzip'd, as Debian's dataset-fashion-mnist installs them),
// and the distributed sampler the example trains with.

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

/// Each epoch's global order depends only on (seed, epoch), never on the world size; a step
/// takes `world * micro` consecutive samples of it and rank r the r-th run of `micro`.
/// The tail that does not fill a global batch is dropped (PyTorch's drop_last).
class DistributedSampler {
 public:
  DistributedSampler(std::int64_t dataset_size, std::uint64_t seed, int world, int rank, std::int64_t micro);
  void set_epoch(std::int64_t epoch);
  std::int64_t steps_per_epoch() const;
  /// Dataset indices of this rank's micro-batch `step` of the current epoch.
  std::vector<std::int64_t> batch(std::int64_t step) const;

 private:
  std::int64_t size_;
  std::uint64_t seed_;
  int world_, rank_;
  std::int64_t micro_;
  std::vector<std::int64_t> order_;
};

}  // namespace zs::examples
