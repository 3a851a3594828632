#pragma once
// Which samples each rank trains on: PyTorch's torch.utils.data.DistributedSampler (with
// shuffle=True, drop_last=True) feeding a DataLoader(batch_size=micro_batch, drop_last=True),
// as one class, with one difference: which rank gets which sample of a global batch.
//
// Contract:
// - Shuffle by seed and epoch. Each epoch's global order is a permutation of [0, dataset_size)
//   that depends only on (seed, epoch, dataset_size), never on the world size or the rank, as
//   PyTorch's does (it seeds torch.randperm with seed + epoch). Here the stream is a
//   std::mt19937_64 seeded with seed * 1000003 + epoch, shuffled by std::shuffle: the same
//   (seed, epoch) give the same order on every rank and every run built with the same
//   standard library; it is not torch.randperm's order. Call set_epoch at the start of each
//   epoch, as with PyTorch; before the first call the epoch is 0.
// - Global batches. Micro-step s of an epoch trains on the global batch
//   order[s * world * micro_batch, (s + 1) * world * micro_batch): the same set of samples
//   PyTorch's sampler + DataLoader give at step s.
// - Which indices a rank gets: rank r takes the r-th run of micro_batch consecutive entries of
//   the global batch, order[s * world * micro_batch + r * micro_batch + j] for j < micro_batch.
//   (PyTorch gives rank r the strided entries r, r + world, ... of the epoch's order.) So the
//   ranks' batches of a step are disjoint, and one rank with micro_batch = world * m sees, at
//   every step, exactly the concatenation of what `world` ranks with m see: a run resumed at
//   another world size continues the same sequence of global batches.
// - drop_last: an epoch has steps_per_epoch() = dataset_size / (world * micro_batch) steps; the
//   tail that does not fill a global batch (fewer than world * micro_batch samples, different
//   ones each epoch) is not used that epoch. Nothing is padded or repeated: every index of an
//   epoch's steps appears exactly once across ranks and steps.
// - Errors: the constructor throws InvalidArgument when dataset_size < 0, world < 1, rank is not
//   in [0, world) or micro_batch < 1; set_epoch when epoch < 0; batch when step is not in
//   [0, steps_per_epoch()). Each message names the argument and its value. Nothing is
//   collective: each rank builds its own sampler from values every rank shares.

#include <cstdint>
#include <vector>

namespace zs {

class DistributedSampler {
 public:
  DistributedSampler(std::int64_t dataset_size, std::uint64_t seed, int world, int rank, std::int64_t micro_batch);

  /// Reshuffles for `epoch` (>= 0). O(dataset_size).
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const noexcept { return epoch_; }
  /// Micro-steps in an epoch: dataset_size / (world * micro_batch), the tail dropped.
  std::int64_t steps_per_epoch() const noexcept { return steps_per_epoch_; }
  /// Dataset indices of this rank's micro-batch `step` of the current epoch (micro_batch of them).
  std::vector<std::int64_t> batch(std::int64_t step) const;

 private:
  std::int64_t size_;
  std::uint64_t seed_;
  int world_, rank_;
  std::int64_t micro_;
  std::int64_t steps_per_epoch_ = 0;
  std::int64_t epoch_ = 0;
  std::vector<std::int64_t> order_;
};

}  // namespace zs
