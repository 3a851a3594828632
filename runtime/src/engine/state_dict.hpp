#pragma once
// What a checkpoint holds of an engine (its state dict): for each group this rank's slice of
// the master parameters and of every optimizer state, the step counters, every rank's dropout
// stream and the caller's client state. The files are the checkpoint library's business.

#include <span>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/shard_contents.hpp"
#include "engine_core.hpp"

namespace zs::detail {

class StateDict {
 public:
  explicit StateDict(EngineCore& core) : core_(core) {}

  /// A named slice of one of a group's buffers: slice r of "params" and of each optimizer
  /// state, also where this rank holds more (whole parameters at stages 0-2, whole states at
  /// stage 0): saves write it, loads fill it, nothing is written twice.
  struct NamedSlice {
    std::string name;
    std::span<float> slice;
  };
  std::vector<NamedSlice> own_slices(ParameterGroup& group) const;
  /// What this rank writes.
  checkpoint::ShardContents contents(const ClientState& client_state) const;
  /// Collective: reads DIR/TAG into the engine (see Engine::load).
  checkpoint::TrainingState load(const std::string& dir, const std::string& tag);

 private:
  // Collective: all-gathers the whole buffers every rank holds (parameters of groups that do
  // not shard them; optimizer states at stage 0) from each rank's loaded slice.
  void gather_whole_buffers();

  EngineCore& core_;
};

}  // namespace zs::detail
