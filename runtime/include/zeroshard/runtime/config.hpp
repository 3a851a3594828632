#pragma once
// Training configuration: a JSON file (DeepSpeed-style nesting; every key in
// docs/config.md with its DeepSpeed / FSDP equivalent) plus `key=value` overrides with dotted
// keys (`--optimizer.params.lr=0.01` on a command line). Unknown keys, wrong types and
// impossible values are rejected with a message naming the key. require_same_on_all_ranks()
// checks, collectively, that every rank ended up with the same configuration.

#include <cstdint>
#include <string>
#include <vector>

#include "zeroshard/comm/collective_options.hpp"
#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine_config.hpp"

namespace zs {

struct TrainingConfig {
  EngineConfig engine;
  CommunicatorConfig communication;
  std::int64_t micro_batch_size = 64;  // train_micro_batch_size_per_gpu

  /// Applies one JSON document (file contents); `source` names it in errors.
  void apply_json(const std::string& text, const std::string& source);
  /// Applies one "dotted.key=value" override.
  void apply_override(const std::string& assignment);
  /// Throws InvalidArgument naming the first impossible value.
  void validate() const;
  /// "key = value" for every key, in documentation order: what is compared across ranks and
  /// printed at start-up.
  std::vector<std::pair<std::string, std::string>> entries() const;
};

/// Documentation of every key: (key, type, default, meaning, DeepSpeed / FSDP equivalent).
struct ConfigKeyDoc {
  std::string key, type, default_value, meaning, equivalent;
};
std::vector<ConfigKeyDoc> config_documentation();

/// Reads `path` (if not empty), then applies `overrides` in order, then validates.
TrainingConfig load_training_config(const std::string& path, const std::vector<std::string>& overrides);

/// Collective. Throws InvalidArgument on every rank, naming the keys whose values differ
/// between ranks, if the ranks do not all hold the same configuration.
void require_same_on_all_ranks(const TrainingConfig& config, Communicator& comm);

}  // namespace zs
