#include "state_dict.hpp"

#include <cstdio>
#include <sstream>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/collective_outcome.hpp"
#include "zeroshard/checkpoint/saved_values.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

std::string unit_name(std::size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "unit_%04zu", index);
  return name;
}

std::string config_text(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string text;
  for (const auto& [key, value] : entries) text += key + " = " + value + "\n";
  return text;
}

}  // namespace

std::vector<StateDict::NamedSlice> StateDict::own_slices(ParameterGroup& group) const {
  const std::int64_t shard = group.shard_elems();
  std::vector<NamedSlice> slices;
  // "params" are the master weights: the float32 parameters themselves, or under mixed
  // precision the float32 master (whole at stage 0), never the 16-bit copies.
  const int r = core_.shard_comm().rank();
  std::span<float> params;
  if (core_.mixed)
    params = core_.policy.shard_optimizer_states ? group.master.span() : group.master.slice(r * shard, shard);
  else
    params = group.shards_parameters ? group.params_shard.span() : group.params_full.slice(r * shard, shard);
  slices.push_back({"params", params});
  const auto states = core_.optimizer->optimizer().state_names();
  for (std::size_t k = 0; k < states.size(); ++k) slices.push_back({states[k], core_.optimizer->own_state(group, k)});
  return slices;
}

checkpoint::ShardContents StateDict::contents(const ClientState& client_state) const {
  checkpoint::ShardContents contents;
  // Under hybrid sharding the checkpoint is the one replica 0's shard group would write as a
  // flat run of that many ranks: one copy of each shard, the other replicas write nothing.
  contents.rank = core_.shard_comm().rank();
  contents.world_size = core_.shard_comm().size();
  contents.replica = core_.shard_groups->replica_index() != 0;
  contents.state = {core_.optimizer_steps, core_.micro_steps, core_.policy.stage,
                    to_string(core_.config.optimizer.kind), config_text(core_.run_config), client_state, std::nullopt};
  if (core_.loss_scaler) contents.state.loss_scaler = core_.loss_scaler->state();
  contents.state.data_parallel_size = core_.comm.size();
  std::ostringstream random;
  random << core_.dropout_random;
  contents.rng_state = random.str();
  for (auto& group : core_.groups) {
    // A unit that owns no parameter (only activations, or only borrowed tied parameters) has
    // nothing to save; loads go by tensor name, not by unit.
    if (group->params.empty()) continue;
    checkpoint::UnitShard out{unit_name(group->index), group->layout, {}};
    for (const auto& [name, slice] : own_slices(*group)) out.buffers.push_back({name, slice});
    contents.units.push_back(std::move(out));
  }
  return contents;
}

checkpoint::TrainingState StateDict::load(const std::string& dir, const std::string& tag) {
  const int r = core_.shard_comm().rank();
  std::unique_ptr<checkpoint::CheckpointReader> opened;
  checkpoint::run_on_all_ranks(core_.comm,
                               [&] { opened = std::make_unique<checkpoint::CheckpointReader>(dir, tag, core_.comm.rank()); });
  checkpoint::CheckpointReader& reader = *opened;
  checkpoint::run_on_all_ranks(core_.comm, [&] {
    std::vector<sharding::TensorSpec> model;
    for (const auto& group : core_.groups)
      for (const auto& slot : group->layout.tensors()) model.push_back(slot.spec);
    reader.require_same_tensors(model);
    const std::string optimizer = to_string(core_.config.optimizer.kind);
    if (reader.state().optimizer != optimizer)
      throw checkpoint::CheckpointError("checkpoint " + reader.directory() + " was saved with optimizer '" +
                                        reader.state().optimizer + "', this engine uses '" + optimizer +
                                        "': configure the same optimizer");
    // Each rank reads its own slice of every buffer; whole copies are all-gathered below.
    for (auto& group : core_.groups)
      for (const auto& [name, slice] : own_slices(*group))
        reader.read(group->layout, name, r * group->shard_elems(), slice);
    // The same ranks in the same order continue the same random streams; otherwise each rank
    // starts a fresh stream derived from the seed, its rank and the step. (A hybrid save holds
    // replica 0's streams only, a hybrid load finds a world of one shard group: fresh streams.)
    if (reader.world_size() == core_.comm.size() && !core_.shard_groups->hybrid()) {
      // Checked when the file was opened (the same parse verify runs).
      core_.dropout_random = checkpoint::parse_rng_state(reader.rng_state_of(r));
    } else {
      std::seed_seq seed{core_.config.seed, static_cast<std::uint64_t>(r),
                         static_cast<std::uint64_t>(reader.state().step)};
      core_.dropout_random.seed(seed);
    }
  });
  // The fp16 loss scale continues where it was; a checkpoint of a bf16 or float32 run starts
  // a fresh scaler (as DeepSpeed does when the saved state has none).
  if (core_.loss_scaler && reader.state().loss_scaler)
    checkpoint::run_on_all_ranks(core_.comm, [&] { core_.loss_scaler->restore(*reader.state().loss_scaler); });
  gather_whole_buffers();
  core_.clear_gradients();
  core_.optimizer_steps = reader.state().step;
  core_.micro_steps = reader.state().micro_step;
  // Saves happen at boundaries only; whatever accumulation count saved it, this engine starts
  // a clean window of its own count (the counts may differ).
  core_.window_micro_steps = 0;
  core_.backward_ran = false;
  // Later saves continue this checkpoint's lineage (checkpoint retention follows it).
  core_.checkpoint_writer->continue_from(reader.identity().save_id);
  return reader.state();
}

void StateDict::gather_whole_buffers() {
  Communicator& shard_comm = core_.shard_comm();
  const int r = shard_comm.rank();
  std::vector<Work> gathers;
  if (!core_.policy.shard_optimizer_states) {
    // Stage 0: states (and the master) are whole; each rank read its own slice.
    const std::size_t states = core_.optimizer->optimizer().state_names().size();
    for (auto& group : core_.groups) {
      const std::int64_t shard = group->shard_elems(), padded = group->padded_elems();
      for (std::size_t k = 0; k < states; ++k) {
        std::span<float> full = group->state.slice(static_cast<std::int64_t>(k) * padded, padded);
        gathers.push_back(shard_comm.all_gather(full.subspan(r * shard, shard), full));
      }
      if (core_.mixed) gathers.push_back(shard_comm.all_gather(group->master.slice(r * shard, shard), group->master.span()));
    }
  }
  for (Work& w : gathers) w.wait();
  // The 16-bit parameters are the master rounded, as after an update.
  if (core_.mixed)
    for (auto& group : core_.groups) core_.optimizer->round_master(*group);
  core_.gathers->gather_whole_parameters();
}

}  // namespace zs::detail
