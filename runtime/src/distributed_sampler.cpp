#include "zeroshard/runtime/distributed_sampler.hpp"

#include <algorithm>
#include <numeric>
#include <random>
#include <string>

#include "zeroshard/error.hpp"

namespace zs {

namespace {

std::int64_t checked_size(std::int64_t dataset_size) {
  if (dataset_size < 0)
    throw InvalidArgument("DistributedSampler: dataset_size " + std::to_string(dataset_size) + " is negative");
  return dataset_size;
}

}  // namespace

DistributedSampler::DistributedSampler(std::int64_t dataset_size, std::uint64_t seed, int world, int rank,
                                       std::int64_t micro_batch)
    : size_(checked_size(dataset_size)), seed_(seed), world_(world), rank_(rank), micro_(micro_batch) {
  if (world < 1) throw InvalidArgument("DistributedSampler: world " + std::to_string(world) + " must be >= 1");
  if (rank < 0 || rank >= world)
    throw InvalidArgument("DistributedSampler: rank " + std::to_string(rank) + " is not in [0, " +
                          std::to_string(world) + ")");
  if (micro_batch < 1)
    throw InvalidArgument("DistributedSampler: micro_batch " + std::to_string(micro_batch) + " must be >= 1");
  steps_per_epoch_ = size_ / micro_ / world_;  // = size / (micro * world), without the product overflowing
  order_.resize(static_cast<std::size_t>(size_));
  set_epoch(0);
}

void DistributedSampler::set_epoch(std::int64_t epoch) {
  if (epoch < 0) throw InvalidArgument("DistributedSampler::set_epoch: epoch " + std::to_string(epoch) + " is negative");
  epoch_ = epoch;
  std::iota(order_.begin(), order_.end(), 0);
  std::mt19937_64 random(seed_ * 1000003 + static_cast<std::uint64_t>(epoch));
  std::shuffle(order_.begin(), order_.end(), random);
}

std::vector<std::int64_t> DistributedSampler::batch(std::int64_t step) const {
  if (step < 0 || step >= steps_per_epoch_)
    throw InvalidArgument("DistributedSampler::batch: step " + std::to_string(step) + " is not in [0, " +
                          std::to_string(steps_per_epoch_) + ") (steps per epoch of " + std::to_string(size_) +
                          " samples in global batches of " + std::to_string(world_) + " x " + std::to_string(micro_) +
                          ")");
  const std::int64_t first = (step * world_ + rank_) * micro_;
  return {order_.begin() + first, order_.begin() + first + micro_};
}

}  // namespace zs
