#pragma once
// A parameter group (the engine's "unit", FSDP2's fully_shard group): the modules that run
// together, the parameters they own packed into one flat layout, and every buffer a ZeRO
// stage holds for them. Rank r owns slice r of each flat buffer.
//
// Tied parameters: a Parameter listed by modules of several groups belongs to the first group
// that lists it (one master, one optimizer state, saved once); the later groups *borrow* it
// and list its owner in `borrowed_from`. Whoever needs a group's parameters (gathers, frees,
// gradient buffers) needs its owners' too: needs().

#include <cstdint>
#include <string>
#include <vector>

#include "zeroshard/comm/work.hpp"
#include "zeroshard/nn/module.hpp"
#include "zeroshard/runtime/optimizer.hpp"
#include "zeroshard/sharding/flat_layout.hpp"
#include "buffer_pool.hpp"

namespace zs::detail {

struct ParameterGroup {
  std::size_t index = 0;                    // position in the engine's group list
  std::string name;                         // "unit 3": labels its collectives, timeline spans, activity
  std::vector<nn::Module*> modules;         // run in this order
  std::vector<nn::Parameter*> params;       // owned here, in layout order
  std::vector<ParameterGroup*> borrowed_from;  // owners of tied parameters these modules use
  sharding::FlatLayout layout;
  std::vector<ParameterRun> full_runs;      // optimizer runs over the whole buffer
  std::vector<ParameterRun> shard_runs;     // ... over this rank's shard (padding excluded)
  bool shards_parameters = false;           // the policy's answer for this group's size
  bool checkpoint_activations = false;      // recompute its activations in backward

  // float32 training (the parameters are their own master copy):
  Buffer params_full;   // whole parameters: always unless shards_parameters, else while gathered
  Buffer params_shard;  // shards_parameters: this rank's master slice
  Buffer grads_full;    // whole gradients: stages 0-1 always; 2-3 from first backward use to reduction
  Buffer grads_shard;   // stages 2-3: this rank's accumulated slice (in the gradient dtype)
  Buffer state;         // optimizer states, state_per_element arrays back to back (whole or shard)
  // Mixed precision (docs/mixed-precision.md) changes three roles: params_full and grads_full
  // become float32 *compute copies* that exist only while the group's modules run (widened
  // from the 16-bit parameters; gradients folded into the 16-bit ones after the last use), and
  // these hold the model states:
  Buffer master;          // float32 master weights: whole at stage 0, this rank's shard otherwise
  Buffer params16_full;   // 16-bit whole parameters: unless shards_parameters, else while gathered
  Buffer params16_shard;  // shards_parameters: this rank's 16-bit slice (what is all-gathered)
  Buffer grads16;         // 16-bit gradients, whole: stages 0-1 the accumulator; 2-3 until reduced

  Work gather;                     // the all-gather filling params_full
  bool kept_for_backward = false;  // gathered in forward, held until backward
  Work reduction;                  // this micro-step's gradient collective
  bool reduction_pending = false;
  bool reduced_this_step = false;  // reduced during the last backward (stages 0-1)
  // Stages 2-3: grads_shard holds nothing of this accumulation window (set at each step instead
  // of clearing it). The window's first reduce-scatter writes it directly (no accumulate pass
  // over the shard); a bucketed reduction zeroes it first.
  bool grads_shard_unwritten = false;
  bool reduction_writes_shard = false;  // the collective in flight outputs into grads_shard

  std::int64_t shard_elems() const { return layout.shard_numel(); }
  std::int64_t padded_elems() const { return layout.padded_numel(); }
  std::int64_t parameter_count() const;
  /// This group and the groups it borrows parameters from: what must be gathered while its
  /// modules run, and whose gradient buffers its backward writes.
  std::vector<ParameterGroup*> needs();
  /// Frees the activations its modules cached (the last module's output stays: it is the
  /// group's output, read downstream).
  void release_activations();
  /// Points each owned parameter's value and grad at the whole buffers (empty tensors while a
  /// buffer is not held), so modules read and accumulate in place.
  void bind();
  /// grads_full holds nothing of this step (a buffer fresh from the pool, or the step just
  /// ended): every owned parameter's gradient is marked stale (Parameter::grad_stale, written
  /// whole by its first backward) and the alignment gaps and padding, which no module writes,
  /// are zeroed. Replaces clearing the whole buffer (a pass of 4 bytes per element). Call
  /// after bind(); no-op while grads_full is not held.
  void mark_gradients_unwritten();
  /// Zeroes the gradients still stale (parameters no backward used since the mark), so that
  /// a reduction or the optimizer never reads undefined values. No-op while grads_full is not held.
  void zero_unwritten_gradients();
  /// Zeroes grads_shard if no reduction wrote it this window (grads_shard_unwritten), before
  /// something adds into it (a bucket's pieces) or the optimizer reads it.
  void zero_unwritten_shard();
};

}  // namespace zs::detail
