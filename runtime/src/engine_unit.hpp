#pragma once
// One sharding unit of the Engine: its layout and every buffer the ZeRO stages hold for it;
// a gradient bucket (engine_gradient_buckets.cpp); the recorded unit order
// (engine_unit_order.cpp). Shared by the engine's source files.

#include <cstdint>
#include <random>
#include <vector>

#include "zeroshard/comm/work.hpp"
#include "zeroshard/runtime/engine.hpp"
#include "zeroshard/runtime/nn/module.hpp"
#include "zeroshard/runtime/optimizer.hpp"
#include "zeroshard/sharding/flat_layout.hpp"

namespace zs {

struct Engine::Unit {
  std::size_t index = 0;           // in units_
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
  bool reduced_this_step = false;   // stages 0-1: reduced in the last micro-step's backward
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

// The order units ran in, recorded by each forward: backward replays the last one in
// reverse, and the next forward of the same mode prefetches along it.
struct Engine::UnitOrder {
  std::vector<Unit*> expected[2];  // by mode (evaluate 0, training 1): the last forward's order
  std::vector<Unit*> ran;          // the forward running now, or the last one
  std::int64_t changes = 0;        // forwards that left the expected order
  // The forward running now.
  bool in_forward = false;
  bool training = false;
  bool program = false;    // a caller's ForwardProgram: checked across ranks, inputs saved
  bool following = true;   // no run has left the expected order yet: keep prefetching along it
  const float* last_output = nullptr;  // the chain check: the next run's input must be this
  nn::ForwardContext context;
  // Programs in training, per run: a copy of its input (its first module keeps a reference,
  // and a unit run again would overwrite the tensor it came from) and the dropout stream
  // before it ran, to recompute a run whose unit ran again after it.
  std::vector<Tensor> saved_inputs;
  std::vector<std::mt19937_64> saved_random;
  std::int64_t saved_bytes = 0;
};

}  // namespace zs
