// Engine::save / load: the engine's side of checkpoints (which buffers, which slices, which
// counters); the files themselves are the checkpoint library's business.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "engine_unit.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/checkpoint_writer.hpp"
#include "zeroshard/checkpoint/collective_outcome.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/runtime/config.hpp"

namespace zs {

namespace {

std::string unit_name(std::size_t index) {
  char name[32];
  std::snprintf(name, sizeof name, "unit_%04zu", index);
  return name;
}

std::string config_text(const EngineConfig& config) {
  TrainingConfig training;
  training.engine = config;
  std::string text;
  for (const auto& [key, value] : training.entries()) text += key + " = " + value + "\n";
  return text;
}

}  // namespace

std::vector<std::string> Engine::optimizer_state_names() const { return optimizer_.state_names(); }

std::vector<Engine::NamedSlice> Engine::own_slices(Unit& unit) const {
  // Slice r of every buffer, also where this rank holds more (stages 0-2 hold full parameters;
  // stage 0 full optimizer states): saves write it, loads read it, nothing is written twice.
  const std::int64_t shard = unit.shard_elems(), padded = unit.layout.padded_numel(), begin = comm_.rank() * shard;
  std::vector<NamedSlice> slices;
  slices.push_back({"params", shards_parameters(unit) ? std::span<float>(unit.params_shard)
                                                      : std::span<float>(unit.params_full).subspan(begin, shard)});
  const auto states = optimizer_.state_names();
  for (std::size_t k = 0; k < states.size(); ++k) {
    std::span<float> state(unit.state);
    slices.push_back({states[k], config_.stage == 0 ? state.subspan(k * padded + begin, shard)
                                                    : state.subspan(k * shard, shard)});
  }
  return slices;
}

checkpoint::ShardContents Engine::checkpoint_contents(const ClientState& client_state) const {
  const int r = comm_.rank();
  checkpoint::ShardContents contents;
  contents.rank = r;
  contents.world_size = comm_.size();
  contents.state = {optimizer_steps_, micro_steps_, config_.stage, to_string(config_.optimizer.kind),
                    config_text(config_), client_state};
  std::ostringstream random;
  random << dropout_random_;
  contents.rng_state = random.str();
  for (std::size_t u = 0; u < units_.size(); ++u) {
    checkpoint::UnitShard out{unit_name(u), units_[u]->layout, {}};
    for (const auto& [name, slice] : own_slices(*units_[u])) out.buffers.push_back({name, slice});
    contents.units.push_back(std::move(out));
  }
  return contents;
}

std::string Engine::save(const std::string& dir, const std::string& tag, const ClientState& client_state) {
  if (micro_steps_ % config_.gradient_accumulation_steps != 0)
    throw InvalidArgument("Engine::save in the middle of gradient accumulation (micro-step " +
                          std::to_string(micro_steps_ % config_.gradient_accumulation_steps) + " of " +
                          std::to_string(config_.gradient_accumulation_steps) +
                          "): save right after a step() that returned true");
  const std::string chosen = tag.empty() ? "step_" + std::to_string(optimizer_steps_) : tag;
  checkpoint_writer_->save(dir, chosen, checkpoint_contents(client_state), config_.checkpoint);
  return chosen;
}

void Engine::wait_for_checkpoint() { checkpoint_writer_->wait(); }

void Engine::set_checkpoint_config(const checkpoint::CheckpointConfig& config) {
  config.validate();
  config_.checkpoint = config;
}

checkpoint::TrainingState Engine::load(const std::string& dir, const std::string& tag) {
  // A pending save commits first (collectively): loading `latest` then sees it.
  checkpoint_writer_->wait();
  if (micro_steps_ % config_.gradient_accumulation_steps != 0)
    throw InvalidArgument("Engine::load in the middle of gradient accumulation: load before training or right "
                          "after a step() that returned true");
  const int r = comm_.rank();
  std::unique_ptr<checkpoint::CheckpointReader> opened;
  checkpoint::run_on_all_ranks(comm_, [&] { opened = std::make_unique<checkpoint::CheckpointReader>(dir, tag, r); });
  checkpoint::CheckpointReader& reader = *opened;
  checkpoint::run_on_all_ranks(comm_, [&] {
    std::vector<sharding::TensorSpec> model;
    for (const auto& unit : units_)
      for (const auto& slot : unit->layout.tensors()) model.push_back(slot.spec);
    reader.require_same_tensors(model);
    if (reader.state().optimizer != to_string(config_.optimizer.kind))
      throw checkpoint::CheckpointError("checkpoint " + reader.directory() + " was saved with optimizer '" +
                                        reader.state().optimizer + "', this engine uses '" +
                                        to_string(config_.optimizer.kind) + "': configure the same optimizer");
    // Each rank reads its own slice of every buffer; full copies are all-gathered below.
    for (auto& unit : units_)
      for (const auto& [name, slice] : own_slices(*unit))
        reader.read(unit->layout, name, r * unit->shard_elems(), slice);
    // The same ranks in the same order continue the same random streams; otherwise each rank
    // starts a fresh stream derived from the seed, its rank and the step.
    if (reader.world_size() == comm_.size()) {
      std::istringstream random(reader.rng_state_of(r));
      random >> dropout_random_;
      if (!random) throw checkpoint::CheckpointError("checkpoint " + reader.directory() + ": rank " +
                                                     std::to_string(r) + "'s RNG state is unreadable");
    } else {
      std::seed_seq seed{config_.seed, static_cast<std::uint64_t>(r), static_cast<std::uint64_t>(reader.state().step)};
      dropout_random_.seed(seed);
    }
  });
  gather_loaded_full_buffers();
  for (auto& unit : units_) {
    std::fill(unit->grads_full.begin(), unit->grads_full.end(), 0.0f);
    std::fill(unit->grads_shard.begin(), unit->grads_shard.end(), 0.0f);
  }
  optimizer_steps_ = reader.state().step;
  micro_steps_ = reader.state().micro_step;
  return reader.state();
}

void Engine::gather_loaded_full_buffers() {
  const int r = comm_.rank();
  const std::size_t state_arrays = optimizer_.state_names().size();
  std::vector<Work> gathers;
  for (auto& unit : units_) {
    const std::int64_t shard = unit->shard_elems(), padded = unit->layout.padded_numel();
    if (!shards_parameters(*unit)) {
      std::span<float> full(unit->params_full);
      gathers.push_back(comm_.all_gather(full.subspan(r * shard, shard), full));
    }
    if (config_.stage == 0)
      for (std::size_t k = 0; k < state_arrays; ++k) {
        std::span<float> full = std::span<float>(unit->state).subspan(k * padded, padded);
        gathers.push_back(comm_.all_gather(full.subspan(r * shard, shard), full));
      }
  }
  for (Work& w : gathers) w.wait();
}

std::vector<float> Engine::full_optimizer_state(const std::string& name) {
  const auto states = optimizer_.state_names();
  const auto found = std::find(states.begin(), states.end(), name);
  if (found == states.end())
    throw InvalidArgument("optimizer " + to_string(config_.optimizer.kind) + " has no state '" + name + "'");
  const std::size_t k = static_cast<std::size_t>(found - states.begin());
  std::vector<float> out;
  for (auto& unit : units_) {
    const std::int64_t shard = unit->shard_elems(), padded = unit->layout.padded_numel();
    std::vector<float> full(padded);
    if (config_.stage == 0) {
      std::copy_n(unit->state.begin() + k * padded, padded, full.begin());
    } else {
      std::span<const float> own = std::span<const float>(unit->state).subspan(k * shard, shard);
      comm_.all_gather(own, std::span<float>(full)).wait();
    }
    for (const auto& slot : unit->layout.tensors())
      out.insert(out.end(), full.begin() + slot.offset, full.begin() + slot.end());
  }
  return out;
}

}  // namespace zs
