#pragma once
// When parameters are whole (DeepSpeed stage 3's parameter coordinator; FSDP's unshard /
// reshard): gathers a group's shards before it computes, prefetches the next groups along an
// order within a byte budget, frees what is done, holds gathered bytes under max_live_bytes,
// and after an update re-gathers the whole parameters that every rank keeps (stages 1-2).
//
// Mixed precision: every group's float32 compute copy (params_full) is transient, made when
// the group computes by widening its 16-bit whole parameters (gathered first at stage 3) and
// freed after; what is gathered and kept whole is 16-bit.
//
// Every decision depends on sizes and the order alone, never on timing, so every rank issues
// the same all-gathers in the same order. A group's needs() (itself and the owners of the tied
// parameters it borrows) are gathered and freed together.

#include <cstdint>
#include <memory>
#include <vector>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"
#include "zeroshard/runtime/sharding_policy.hpp"
#include "buffer_pool.hpp"
#include "parameter_group.hpp"

namespace zs::detail {

class GatherScheduler {
 public:
  /// Works over `group_comm` (the ranks the shards are spread over); keeps references to all
  /// arguments.
  GatherScheduler(const ShardingPolicy& policy, const EngineConfig& config, Communicator& group_comm,
                  BufferPool& pool, std::vector<std::unique_ptr<ParameterGroup>>& groups);

  /// Collective: issues the all-gathers of `group`'s needs that are not whole yet, without waiting.
  void issue(ParameterGroup& group);
  /// Collective: `group`'s needs whole and bound (issued if they were not).
  void wait(ParameterGroup& group);
  /// Collective: order[position] whole; with overlap, later groups of `order` prefetched
  /// within prefetch_bytes (and max_live_bytes).
  void gather_with_prefetch(const std::vector<ParameterGroup*>& order, std::size_t position);
  /// Frees the gathered parameters of `group`'s needs (only those kept as shards).
  void release(ParameterGroup& group);
  /// Frees what forward kept for a backward that will not come.
  void release_kept();
  /// Completes and frees gathers issued ahead (prefetched along an order the forward left),
  /// except `except`'s needs.
  void drop_prefetched(ParameterGroup* except);
  /// Collective: every rank's slice of each whole-parameter group all-gathered into its
  /// params_full (after an update of the own slice, after a load).
  void gather_whole_parameters();
  /// Keeps what `group`'s forward made (gathered parameters, mixed precision's float32 compute
  /// copies) for its backward instead of freeing it; backward or the next forward frees it.
  void keep_for_backward(ParameterGroup& group);
  /// Bytes of whole parameters of groups that never shard them (not "live").
  std::int64_t persistent_bytes() const { return persistent_bytes_; }

 private:
  // Gathered bytes of sharded groups (and mixed-precision compute copies) held now.
  std::int64_t live_bytes() const;
  // Bytes a group holds whole once it can compute.
  std::int64_t gathered_bytes(const ParameterGroup& group) const;
  // Whether the group's params_full comes and goes (sharded, or a mixed-precision compute copy).
  bool transient(const ParameterGroup& group) const;
  // Mixed precision: the float32 compute copy from the 16-bit whole parameters (no-op otherwise).
  void materialize(ParameterGroup& group);
  void issue_one(ParameterGroup& group, const std::vector<ParameterGroup*>& in_use);
  void make_room(std::int64_t bytes, const std::vector<ParameterGroup*>& in_use);

  const ShardingPolicy& policy_;
  const EngineConfig& config_;
  Communicator& comm_;
  BufferPool& pool_;
  std::vector<std::unique_ptr<ParameterGroup>>& groups_;
  std::int64_t persistent_bytes_ = 0;
  bool mixed_;
  DType dtype_;  // the parameter dtype
};

}  // namespace zs::detail
