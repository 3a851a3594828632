#include "training_state_io.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "h5_attributes.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/saved_values.hpp"

namespace zs::checkpoint::detail {

void write_training_state(hid_t file, const TrainingState& state, const SaveIdentity& identity) {
  write_attribute(file, "format_version", std::int64_t{kFormatVersion});
  write_attribute(file, "step", state.step);
  write_attribute(file, "micro_step", state.micro_step);
  write_attribute(file, "stage", std::int64_t{state.stage});
  write_attribute(file, "optimizer", state.optimizer);
  write_attribute(file, "config", state.config);
  if (state.data_parallel_size > 0) write_attribute(file, "data_parallel_size", std::int64_t{state.data_parallel_size});
  if (!identity.save_id.empty()) write_attribute(file, "save_id", identity.save_id);
  if (!identity.parent_save_id.empty()) write_attribute(file, "parent_save_id", identity.parent_save_id);
  if (state.loss_scaler) {
    // The scale as text with 17 digits (round-trips any double; HDF5 attributes here are
    // integers and strings), the counters as integers.
    char scale[40];
    std::snprintf(scale, sizeof scale, "%.17g", state.loss_scaler->scale);
    write_attribute(file, "loss_scale", std::string(scale));
    write_attribute(file, "loss_scale_iteration", state.loss_scaler->iteration);
    write_attribute(file, "loss_scale_last_overflow", state.loss_scaler->last_overflow_iteration);
    write_attribute(file, "loss_scale_hysteresis", state.loss_scaler->hysteresis_left);
  }
  Hid group(ZS_H5_CHECK(H5Gcreate2(file, "client_state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  for (const auto& [key, value] : state.client_state) write_attribute(group.get(), key, value);
}

namespace {

LossScalerState read_loss_scaler(hid_t file) {
  LossScalerState scaler;
  const std::string text = read_string_attribute(file, "loss_scale");
  char* end = nullptr;
  scaler.scale = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(scaler.scale) || !(scaler.scale > 0))
    throw CheckpointError(field_problem("loss_scale", "'" + text + "'", "a finite number > 0"));
  scaler.iteration = read_int_in_range(file, "loss_scale_iteration", 0, kMaxSavedStep, "an integer in [0, 2^53]");
  scaler.last_overflow_iteration =
      read_int_in_range(file, "loss_scale_last_overflow", -1, scaler.iteration - 1,
                        "an integer in [-1, loss_scale_iteration - 1] (-1: no overflow yet)");
  scaler.hysteresis_left =
      read_int_in_range(file, "loss_scale_hysteresis", 1, std::int64_t{1} << 31, "an integer >= 1");
  return scaler;
}

}  // namespace

TrainingState read_training_state(hid_t file) {
  TrainingState state;
  // Every optimizer step takes at least one micro-step: 0 <= step <= micro_step <= 2^53.
  state.step = read_int_in_range(file, "step", 0, kMaxSavedStep, "an integer in [0, 2^53]");
  state.micro_step = read_int_in_range(file, "micro_step", state.step, kMaxSavedStep,
                                       "an integer in [step = " + std::to_string(state.step) +
                                           ", 2^53] (every optimizer step takes at least one micro-step)");
  state.stage = static_cast<int>(read_int_in_range(file, "stage", 0, kMaxStage, "a ZeRO stage, 0 to 3"));
  state.optimizer = read_string_attribute(file, "optimizer");
  if (!is_optimizer_name(state.optimizer))
    throw CheckpointError(field_problem("optimizer", "'" + state.optimizer + "'",
                                       "an optimizer name (lowercase letters, digits, '_'), e.g. 'adamw'"));
  state.config = read_string_attribute(file, "config");
  if (has_attribute(file, "loss_scale")) state.loss_scaler = read_loss_scaler(file);
  if (has_attribute(file, "data_parallel_size"))
    state.data_parallel_size = static_cast<int>(
        read_int_in_range(file, "data_parallel_size", 1, kMaxSavedWorldSize, "1 to 2^24 ranks"));
  Hid group(ZS_H5_CHECK(H5Gopen2(file, "client_state", H5P_DEFAULT)));
  for (const std::string& key : attribute_names(group.get()))
    state.client_state[key] = read_int_attribute(group.get(), key);
  return state;
}

std::int64_t read_format_version(hid_t file) {
  const std::int64_t version = read_int_attribute(file, "format_version");
  if (version > kFormatVersion)
    throw CheckpointError("format version " + std::to_string(version) + " is newer than this ZeroShard reads (" +
                          std::to_string(kFormatVersion) + "): load it with a newer ZeroShard");
  if (version < 1)
    throw CheckpointError(field_problem("format_version", std::to_string(version),
                                        "1 to " + std::to_string(kFormatVersion)));
  return version;
}

SaveIdentity read_save_identity(hid_t file) {
  SaveIdentity identity;
  if (has_attribute(file, "save_id")) identity.save_id = read_string_attribute(file, "save_id");
  if (has_attribute(file, "parent_save_id")) identity.parent_save_id = read_string_attribute(file, "parent_save_id");
  return identity;
}

}  // namespace zs::checkpoint::detail
