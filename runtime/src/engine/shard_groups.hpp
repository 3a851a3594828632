#pragma once
// The process groups of hybrid sharding (zero_optimization.shard_group_size; DeepSpeed MiCS,
// FSDP HYBRID_SHARD): the world's ranks in groups of `size` consecutive ranks. Model states
// are sharded within a group (the *shard group*, over which parameters are gathered and
// gradients reduce-scattered) and replicated across groups: the ranks holding the same
// position in each group form a *replica group*, over which each reduced gradient shard is
// all-reduced. A rank's position in its shard group is its shard index; the group's position
// is its replica index (replica 0 writes checkpoints).
//
// Flat ZeRO is the case of one group of every rank: `shard` is the world communicator itself
// and there is no replica group. Stage 0 is always flat (it shards nothing).

#include <memory>
#include <optional>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs::detail {

class ShardGroups {
 public:
  /// Collective over `world`. Resolves config.shard_group_size (-1: every rank; 0: the ranks
  /// of one node, MPI_COMM_TYPE_SHARED; k: k ranks) and splits `world` into shard and replica
  /// groups. Throws InvalidArgument on every rank, naming zero_optimization.shard_group_size
  /// and the fix, when the size does not divide the world size, when nodes hold different
  /// numbers of ranks or non-consecutive ranks (0), or when ranks were given different values
  /// (checked here too, before any split, so that a caller need not have compared configs).
  /// Keeps a reference to `world`.
  ShardGroups(const EngineConfig& config, Communicator& world);
  ShardGroups(const ShardGroups&) = delete;
  ShardGroups& operator=(const ShardGroups&) = delete;

  /// Ranks a shard group holds: the world size when flat.
  int size() const { return shard().size(); }
  /// Ranks holding a copy of each shard (world size / size()); 1 when flat.
  int replicas() const { return replica_ ? replica_->size() : 1; }
  bool hybrid() const { return replicas() > 1; }
  /// The communicator model states are sharded over (the world itself when flat).
  Communicator& shard() const { return shard_ ? *shard_ : world_; }
  /// The communicator of the ranks holding the same shard; nullptr when flat.
  Communicator* replica() const { return replica_ ? replica_.get() : nullptr; }
  /// Which copy this rank's shard group is: 0 .. replicas() - 1.
  int replica_index() const { return replica_ ? replica_->rank() : 0; }
  /// Not collective: advances the collectives in flight on the shard and replica groups.
  void progress() const;
  /// Bytes this rank sent on each group since construction (Communicator::bytes_sent).
  std::int64_t shard_bytes_sent() const { return shard().bytes_sent() - shard_bytes_before_; }
  std::int64_t replica_bytes_sent() const { return replica_ ? replica_->bytes_sent() : 0; }

 private:
  Communicator& world_;
  std::unique_ptr<Communicator> shard_;    // null when flat (world_ is the shard group)
  std::unique_ptr<Communicator> replica_;  // null when flat
  std::int64_t shard_bytes_before_ = 0;    // the world's count at construction, when flat
};

/// Collective over `world`: the group size config.shard_group_size asks for at config.stage,
/// checked (see ShardGroups). The world size for stage 0 and for -1.
int resolve_shard_group_size(const EngineConfig& config, const Communicator& world);

}  // namespace zs::detail
