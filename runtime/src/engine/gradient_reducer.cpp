#include "gradient_reducer.hpp"
#include "parallel_conversion.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "zeroshard/dtype_convert.hpp"

namespace zs::detail {

struct GradientReducer::Bucket {
  struct Piece {
    ParameterGroup* group;
    std::int64_t shard_offset;  // in the group's shard
    std::int64_t length;
    std::int64_t chunk_offset;  // in each rank's chunk of the bucket
  };
  Buffer data;  // world_size x chunk (compacted to world_size x fill when issued)
  std::int64_t chunk = 0, fill = 0;
  std::vector<Piece> pieces;
  Work reduction;
};

GradientReducer::GradientReducer(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm,
                                 BufferPool& pool, Communicator* replica_comm)
    : policy_(policy), config_(config), comm_(group_comm), pool_(pool), dtype_(config.precision.gradient_dtype()),
      element_bytes_(static_cast<std::int64_t>(size_of(dtype_))), half_(is_half(dtype_)), replica_comm_(replica_comm) {}

Buffer& GradientReducer::reduced(ParameterGroup& group) const { return half_ ? group.grads16 : group.grads_full; }

void GradientReducer::fold(ParameterGroup& group) {
  group.zero_unwritten_gradients();  // parameters no backward used this micro-step: zeros, not leftovers
  if (!half_ || group.grads_full.empty()) return;
  const std::int64_t padded = group.padded_elems();
  // optimizer.in_backward at stages 0-1 keeps no 16-bit accumulator between steps: a zeroed
  // one, so that the addition below rounds exactly as it does into a kept one.
  if (!policy_.shard_gradients && group.grads16.empty())
    group.grads16 = pool_.take(Lifetime::step, MemoryCategory::gradients_full, padded, dtype_, /*zeroed=*/true);
  if (policy_.shard_gradients) {
    // This micro-step's gradients, rounded once, wait for their reduce-scatter in 16 bits.
    group.grads16 = pool_.take(Lifetime::step, MemoryCategory::gradients_full, padded, dtype_, /*zeroed=*/false);
    detail::for_each_chunk(padded, [&](std::int64_t first, std::int64_t count) {
      narrow(group.grads_full.data() + first, group.grads16.raw(first), dtype_, count);
    });
  } else {
    detail::for_each_chunk(padded, [&](std::int64_t first, std::int64_t count) {
      add_into(group.grads16.raw(first), dtype_, group.grads_full.data() + first, count);
    });
  }
  group.grads_full.reset();
  group.bind();
}

GradientReducer::~GradientReducer() = default;

std::size_t GradientReducer::in_flight_limit() const {
  // A shard group of one rank has nothing in flight to overlap (its collective is a copy; a
  // replica all-reduce runs inside complete()): completing at once frees the whole gradients
  // one group after another (optimizer.in_backward holds one group's instead of three).
  if (!config_.overlap_comm || comm_.size() == 1) return 0;
  return static_cast<std::size_t>(config_.reductions_in_flight);
}

void GradientReducer::reduce_across_replicas(HostBuffer kept, const std::string& label) {
  if (replica_comm_ == nullptr) return;
  replica_comm_->all_reduce(kept, labelled(label + " replicas")).wait();
}

void GradientReducer::reduce(ParameterGroup& group) {
  group.zero_unwritten_gradients();  // groups no backward used this step: zeros, not last step's values
  group.reduced_this_step = true;
  // A unit without parameters (an activation in a unit of its own) has nothing to reduce, on
  // any rank. Its empty buffers were never typed: a 16-bit reduce-scatter of them was refused
  // as a float32 full buffer against a 16-bit shard.
  if (group.padded_elems() == 0) return;
  if (config_.reduce_bucket_size > 0) {
    pack(group);
    return;
  }
  issue(group);
  complete_beyond(in_flight_limit());
}

void GradientReducer::finish() {
  issue_bucket();
  complete_buckets_beyond(0);
  complete_beyond(0);
}

HostBuffer GradientReducer::kept_part(ParameterGroup& group) const {
  if (group.reduction_writes_shard) return group.grads_shard.host();
  if (policy_.reduction == GradientReduction::all_reduce) return reduced(group).host();
  const std::int64_t shard = group.shard_elems();
  return reduced(group).host(comm_.rank() * shard, shard);
}

void GradientReducer::issue(ParameterGroup& group) {
  Buffer& full = reduced(group);
  if (policy_.shard_gradients && group.grads_shard.empty()) {  // optimizer.in_backward: held only until the update
    group.grads_shard = pool_.take(Lifetime::step, MemoryCategory::gradients_shard, group.shard_elems(), dtype_, /*zeroed=*/false);
    group.grads_shard_unwritten = true;
  }
  // The window's first reduction of a sharded gradient writes the shard itself; otherwise this
  // rank's reduced chunk lands in place, in its own slice of the whole buffer.
  group.reduction_writes_shard = policy_.shard_gradients && group.grads_shard_unwritten;
  group.grads_shard_unwritten = false;
  group.reduction = policy_.reduction == GradientReduction::all_reduce
                        ? comm_.all_reduce(full.host(), labelled(group.name))
                        : comm_.reduce_scatter(full.host(), kept_part(group), labelled(group.name));
  group.reduction_pending = true;
  groups_in_flight_.push_back(&group);
}

void GradientReducer::complete(ParameterGroup& group) {
  if (!group.reduction_pending) return;
  group.reduction.wait();
  group.reduction_pending = false;
  reduce_across_replicas(kept_part(group), group.name);
  if (policy_.shard_gradients) {
    Buffer& full = reduced(group);
    if (!group.reduction_writes_shard)
      accumulate(group.grads_shard.raw(), full.raw(comm_.rank() * group.shard_elems()), dtype_, group.shard_elems());
    group.reduction_writes_shard = false;
    full.reset();
    group.bind();
  }
  if (on_reduced_) on_reduced_(group);
}

void GradientReducer::complete_beyond(std::size_t keep) {
  while (groups_in_flight_.size() > keep) {
    complete(*groups_in_flight_.front());
    groups_in_flight_.pop_front();
  }
}

void GradientReducer::pack(ParameterGroup& group) {
  const int ranks = comm_.size();
  const std::int64_t shard = group.shard_elems();
  group.zero_unwritten_shard();  // its pieces complete in different buckets, each adding into the shard
  const std::int64_t chunk = std::max<std::int64_t>(1, config_.reduce_bucket_size / ranks);
  for (std::int64_t done = 0; done < shard;) {
    if (!open_bucket_) {
      open_bucket_ = std::make_unique<Bucket>();
      open_bucket_->chunk = chunk;
      open_bucket_->data = pool_.take(Lifetime::step, MemoryCategory::communication, ranks * chunk, dtype_, /*zeroed=*/false);
    }
    Bucket& bucket = *open_bucket_;
    const std::int64_t length = std::min(shard - done, bucket.chunk - bucket.fill);
    Buffer& full = reduced(group);
    for (int r = 0; r < ranks; ++r)
      std::memcpy(bucket.data.raw(r * bucket.chunk + bucket.fill), full.raw(r * shard + done),
                  static_cast<std::size_t>(length * element_bytes_));
    bucket.pieces.push_back({&group, done, length, bucket.fill});
    bucket.fill += length;
    done += length;
    if (bucket.fill == bucket.chunk) issue_bucket();
  }
  if (!policy_.shard_gradients) return;
  // The bucket holds copies: the group's whole gradients can go now, not when the collective ends.
  reduced(group).reset();
  group.bind();
}

void GradientReducer::issue_bucket() {
  if (!open_bucket_ || open_bucket_->fill == 0) return;
  std::unique_ptr<Bucket> bucket = std::move(open_bucket_);
  const int ranks = comm_.size();
  // A partly filled bucket (the last of a backward) is compacted to world_size x fill, so the
  // reduce-scatter's chunks are the ranks' chunks again. Moving chunk r down to r * fill in
  // rank order never overwrites a chunk not yet moved.
  if (bucket->fill < bucket->chunk)
    for (int r = 1; r < ranks; ++r)
      std::memmove(bucket->data.raw(r * bucket->fill), bucket->data.raw(r * bucket->chunk),
                   static_cast<std::size_t>(bucket->fill * element_bytes_));
  const HostBuffer all = bucket->data.host(0, ranks * bucket->fill);
  char label[32];
  std::snprintf(label, sizeof label, "bucket %lld", static_cast<long long>(buckets_issued_++));
  const CollectiveOptions options = labelled(label);
  bucket->reduction = policy_.reduction == GradientReduction::all_reduce
                          ? comm_.all_reduce(all, options)
                          : comm_.reduce_scatter(all, bucket->data.host(comm_.rank() * bucket->fill, bucket->fill), options);
  buckets_in_flight_.push_back(std::move(bucket));
  complete_buckets_beyond(in_flight_limit());
}

void GradientReducer::unpack(const Bucket& bucket) {
  const int rank = comm_.rank();
  for (const Bucket::Piece& piece : bucket.pieces) {
    ParameterGroup& group = *piece.group;
    auto chunk_of = [&](int r) { return bucket.data.raw(r * bucket.fill + piece.chunk_offset); };
    if (policy_.shard_gradients) {
      accumulate(group.grads_shard.raw(piece.shard_offset), chunk_of(rank), dtype_, piece.length);
      continue;
    }
    const std::int64_t shard = group.shard_elems();
    Buffer& full = reduced(group);
    for (int r = 0; r < comm_.size(); ++r)
      if (policy_.reduction == GradientReduction::all_reduce || r == rank)
        std::memcpy(full.raw(r * shard + piece.shard_offset), chunk_of(r), static_cast<std::size_t>(piece.length * element_bytes_));
  }
}

void GradientReducer::complete_buckets_beyond(std::size_t keep) {
  while (buckets_in_flight_.size() > keep) {
    std::unique_ptr<Bucket> bucket = std::move(buckets_in_flight_.front());
    buckets_in_flight_.pop_front();
    bucket->reduction.wait();
    reduce_across_replicas(policy_.reduction == GradientReduction::all_reduce
                               ? bucket->data.host(0, comm_.size() * bucket->fill)
                               : bucket->data.host(comm_.rank() * bucket->fill, bucket->fill),
                           "bucket");
    unpack(*bucket);
  }
}

}  // namespace zs::detail
