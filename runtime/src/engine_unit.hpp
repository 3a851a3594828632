#pragma once
// One sharding unit of the Engine: its layout and every buffer the ZeRO stages hold for it;
// and a gradient bucket (engine_gradient_buckets.cpp). Shared by the engine's source files.

#include <cstdint>
#include <vector>

#include "zeroshard/comm/work.hpp"
#include "zeroshard/runtime/engine.hpp"
#include "zeroshard/runtime/nn/module.hpp"
#include "zeroshard/runtime/optimizer.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs {

struct Engine::Unit {
  std::size_t first = 0, end = 0;  // the Sequential's children [first, end)
  std::vector<nn::Parameter*> params;
  sharding::FlatLayout layout;
  std::vector<ParameterRun> full_runs, shard_runs;  // optimizer runs over the buffer / the shard
  std::vector<float> params_full;   // stages 0-2 always; stage 3 while gathered
  std::vector<float> params_shard;  // stage 3: this rank's master slice
  std::vector<float> grads_full;    // stages 0-1 always; stages 2-3 during the unit's backward
  std::vector<float> grads_shard;   // stages 2-3: this rank's accumulated slice
  std::vector<float> state;         // optimizer state: full (stage 0) or shard
  Work gather;                      // stage 3: the all-gather filling params_full
  bool persistent = false;          // stage 3: kept whole (param_persistence_threshold)
  bool kept_for_backward = false;   // stage 3: gathered in forward, held until backward
  Work reduction;                   // this micro-step's gradient collective
  bool reduction_pending = false;
  // Bytes recorded in the ledger for each buffer, so the ledger follows every resize.
  std::int64_t held_params_full = 0, held_params_shard = 0, held_grads_full = 0, held_grads_shard = 0,
               held_state = 0;

  std::int64_t shard_elems() const { return layout.shard_numel(); }
};

// Pieces of ranks' gradient shards packed for one reduce-scatter: chunk r holds rank r's.
struct Engine::GradientBucket {
  struct Piece {
    Unit* unit;
    std::int64_t shard_offset;   // in the unit's shard
    std::int64_t length;
    std::int64_t chunk_offset;   // in each rank's chunk of the bucket
  };
  std::vector<float> data;       // world_size x chunk (compacted to x fill when issued)
  std::int64_t chunk = 0, fill = 0;
  std::vector<Piece> pieces;
  Work reduction;
};

}  // namespace zs
