#pragma once
// Reduces gradients across the ranks of a group communicator, as the sharding policy says:
// all-reduce (stage 0) or reduce-scatter (stages 1-3), one collective per parameter group or,
// with reduce_bucket_size, DeepSpeed's reduce buckets on a rank-sharded layout.
//
// Buckets: a bucket of C elements per rank is a buffer of world_size x C; chunk r holds pieces
// of rank r's shard of one or more groups, in the order groups finish their backward (the same
// on every rank). Every element is still summed in its owner rank's chunk, so the additions
// happen in the same order as without buckets: results are bit-identical.
//
// Mixed precision: gradients are reduced in the gradient (reduce) dtype; 16-bit ones are
// computed in float32 and folded into 16 bits first (fold()), and a 16-bit reduction sums in
// float32 and rounds once (Communicator's contract).
//
// Where the reduced values go: with sharded gradients (stages 2-3) this rank's reduced chunk is
// added to the group's shard accumulator (taken from the pool at the reduction when the group
// holds none: optimizer.in_backward) and the whole gradients are freed; otherwise (stages
// 0-1) the whole gradients are the accumulator and the reduced values are written back into
// them (every rank's slice for an all-reduce, the own slice for a reduce-scatter).
//
// Hybrid sharding (replica_comm, shard_groups.hpp): once the shard group's collective is
// complete, the part of it this rank keeps (its reduced chunk, or the whole buffer when the
// group all-reduces) is all-reduced over the replica group, in place, before it goes anywhere.
// All-reduce gives every replica the same bits, so replicas stay identical.
//
// In flight: at most reductions_in_flight collectives (with overlap; none without); the oldest
// is completed before another starts, at points fixed by the order alone, so memory is the same
// every step and on every rank.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/sharding_policy.hpp"
#include "buffer_pool.hpp"
#include "parameter_group.hpp"

namespace zs::detail {

class GradientReducer {
 public:
  /// `replica_comm`: the ranks holding copies of this rank's shard (nullptr: none, flat ZeRO).
  GradientReducer(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm, BufferPool& pool,
                  Communicator* replica_comm = nullptr);
  ~GradientReducer();

  /// Not collective. With 16-bit gradients (mixed precision), after a group's last use in a
  /// backward: its float32 compute gradients are rounded into the 16-bit gradients (stages
  /// 0-1: added to the accumulator; 2-3: a new buffer awaiting reduction) and freed. No-op
  /// for float32 gradients or a group this backward did not use.
  void fold(ParameterGroup& group);
  /// Collective: starts reducing `group`'s whole gradients (this micro-step's, or the
  /// accumulated ones at the boundary) and marks it reduced for this step.
  void reduce(ParameterGroup& group);
  /// Collective: issues the last, partly filled bucket and completes everything in flight.
  void finish();
  /// optimizer.in_backward: called with each group whose reduction completed (no buckets),
  /// its reduced values in place (grads_shard, or the whole gradients' kept part), before the
  /// reducer touches anything else.
  void on_reduced(std::function<void(ParameterGroup&)> callback) { on_reduced_ = std::move(callback); }

 private:
  struct Bucket;
  void issue(ParameterGroup& group);
  void complete(ParameterGroup& group);
  void complete_beyond(std::size_t keep);
  void pack(ParameterGroup& group);
  void issue_bucket();
  void complete_buckets_beyond(std::size_t keep);
  void unpack(const Bucket& bucket);
  std::size_t in_flight_limit() const;
  // The whole gradients this reducer communicates: grads16 with 16-bit gradients, else grads_full.
  Buffer& reduced(ParameterGroup& group) const;
  // Where this rank's reduced values land and stay: grads_shard when the reduce-scatter writes
  // it directly, else the whole buffer (all-reduce) or this rank's slice of it.
  HostBuffer kept_part(ParameterGroup& group) const;
  // Hybrid sharding: all-reduces what the shard group's collective left this rank (`kept`)
  // over the replica group; nothing when flat.
  void reduce_across_replicas(HostBuffer kept, const std::string& label);

  std::int64_t buckets_issued_ = 0;  // numbers the buckets' labels ("bucket 7")
  const ShardingPolicy& policy_;
  const EngineConfig& config_;
  Communicator& comm_;
  BufferPool& pool_;
  DType dtype_;                 // the gradient (reduce) dtype
  std::int64_t element_bytes_;  // its size
  bool half_;                   // 16-bit: gradients live in grads16
  Communicator* replica_comm_;
  std::deque<ParameterGroup*> groups_in_flight_;  // issue order
  std::unique_ptr<Bucket> open_bucket_;           // being filled
  std::deque<std::unique_ptr<Bucket>> buckets_in_flight_;  // issue order
  std::function<void(ParameterGroup&)> on_reduced_;
};

}  // namespace zs::detail
