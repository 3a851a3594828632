// Gradient buckets (reduce_bucket_size > 0): DeepSpeed's reduce buckets on a rank-sharded
// layout.
//
// A bucket of C elements per rank is a buffer of world_size x C: chunk r holds pieces of rank
// r's shard of one or more units, in the order units finish their backward (the same on every
// rank). One reduce-scatter of the bucket (stage 0: all-reduce, which is that reduce-scatter
// followed by an all-gather) leaves each rank its own chunk reduced. Every element is still
// summed in its owner rank's chunk, so the additions happen in the same order as without
// buckets: results are bit-identical.
//
// Where the reduced values go: stages 2-3 add this rank's chunk to the units' shard
// accumulators and free the full gradients at packing; stages 0-1 keep their full gradients
// (they are the accumulators) and get the reduced values copied back into them, every rank's
// slice at stage 0, the own slice at stage 1.
#include <algorithm>
#include <cstring>

#include "engine_unit.hpp"

namespace zs {

void Engine::pack_gradients(Unit& unit) {
  const int ranks = comm_.size();
  const std::int64_t shard = unit.shard_elems();
  const std::int64_t chunk = std::max<std::int64_t>(1, config_.reduce_bucket_size / ranks);
  for (std::int64_t done = 0; done < shard;) {
    if (!open_bucket_) {
      open_bucket_ = std::make_unique<GradientBucket>();
      open_bucket_->chunk = chunk;
      open_bucket_->data = take_buffer(ranks * chunk);
      track(MemoryCategory::communication, bucket_bytes_held_, bucket_bytes_held_ + ranks * chunk * 4);
    }
    GradientBucket& bucket = *open_bucket_;
    const std::int64_t length = std::min(shard - done, bucket.chunk - bucket.fill);
    for (int r = 0; r < ranks; ++r)
      std::copy_n(unit.grads_full.begin() + r * shard + done, length, bucket.data.begin() + r * bucket.chunk + bucket.fill);
    bucket.pieces.push_back({&unit, done, length, bucket.fill});
    bucket.fill += length;
    done += length;
    if (bucket.fill == bucket.chunk) issue_bucket();
  }
  unit.reduced_this_step = true;
  if (config_.stage < 2) return;
  // The bucket holds copies: the unit's full gradients can go now, not when the collective ends.
  give_back(unit.grads_full);
  track(MemoryCategory::gradients_full, unit.held_grads_full, 0);
  bind(unit);
}

void Engine::issue_bucket() {
  if (!open_bucket_ || open_bucket_->fill == 0) return;
  std::unique_ptr<GradientBucket> bucket = std::move(open_bucket_);
  const int ranks = comm_.size();
  // A partly filled bucket (the last of a backward) is compacted to world_size x fill, so the
  // reduce-scatter's chunks are the ranks' chunks again. Moving chunk r down to r * fill in
  // rank order never overwrites a chunk not yet moved.
  if (bucket->fill < bucket->chunk)
    for (int r = 1; r < ranks; ++r)
      std::memmove(bucket->data.data() + r * bucket->fill, bucket->data.data() + r * bucket->chunk,
                   static_cast<std::size_t>(bucket->fill) * sizeof(float));
  std::span<float> all = std::span<float>(bucket->data).first(ranks * bucket->fill);
  bucket->reduction = config_.stage == 0
                           ? comm_.all_reduce(all)
                           : comm_.reduce_scatter(all, all.subspan(comm_.rank() * bucket->fill, bucket->fill));
  buckets_in_flight_.push_back(std::move(bucket));
  finish_buckets_beyond(config_.overlap_comm ? static_cast<std::size_t>(config_.reductions_in_flight) : 0);
}

void Engine::unpack_reduced(const GradientBucket& bucket) {
  const int rank = comm_.rank();
  for (const GradientBucket::Piece& piece : bucket.pieces) {
    Unit& unit = *piece.unit;
    auto reduced = [&](int r) { return bucket.data.data() + r * bucket.fill + piece.chunk_offset; };
    if (config_.stage >= 2) {
      float* accumulator = unit.grads_shard.data() + piece.shard_offset;
      const float* own = reduced(rank);
      for (std::int64_t i = 0; i < piece.length; ++i) accumulator[i] += own[i];
      continue;
    }
    const std::int64_t shard = unit.shard_elems();
    for (int r = 0; r < comm_.size(); ++r)
      if (config_.stage == 0 || r == rank)
        std::copy_n(reduced(r), piece.length, unit.grads_full.begin() + r * shard + piece.shard_offset);
  }
}

void Engine::finish_buckets_beyond(std::size_t keep) {
  while (buckets_in_flight_.size() > keep) {
    std::unique_ptr<GradientBucket> bucket = std::move(buckets_in_flight_.front());
    buckets_in_flight_.pop_front();
    bucket->reduction.wait();
    unpack_reduced(*bucket);
    track(MemoryCategory::communication, bucket_bytes_held_,
          bucket_bytes_held_ - static_cast<std::int64_t>(bucket->data.size()) * 4);
    give_back(bucket->data);
  }
}

}  // namespace zs
