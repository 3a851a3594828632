#include "training_state_io.hpp"

#include "h5_attributes.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"

namespace zs::checkpoint::detail {

void write_training_state(hid_t file, const TrainingState& state, const SaveIdentity& identity) {
  write_attribute(file, "format_version", std::int64_t{kFormatVersion});
  write_attribute(file, "step", state.step);
  write_attribute(file, "micro_step", state.micro_step);
  write_attribute(file, "stage", std::int64_t{state.stage});
  write_attribute(file, "optimizer", state.optimizer);
  write_attribute(file, "config", state.config);
  if (!identity.save_id.empty()) write_attribute(file, "save_id", identity.save_id);
  if (!identity.parent_save_id.empty()) write_attribute(file, "parent_save_id", identity.parent_save_id);
  Hid group(ZS_H5_CHECK(H5Gcreate2(file, "client_state", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  for (const auto& [key, value] : state.client_state) write_attribute(group.get(), key, value);
}

TrainingState read_training_state(hid_t file) {
  TrainingState state;
  state.step = read_int_attribute(file, "step");
  state.micro_step = read_int_attribute(file, "micro_step");
  state.stage = static_cast<int>(read_int_attribute(file, "stage"));
  state.optimizer = read_string_attribute(file, "optimizer");
  state.config = read_string_attribute(file, "config");
  Hid group(ZS_H5_CHECK(H5Gopen2(file, "client_state", H5P_DEFAULT)));
  for (const std::string& key : attribute_names(group.get()))
    state.client_state[key] = read_int_attribute(group.get(), key);
  return state;
}

SaveIdentity read_save_identity(hid_t file) {
  SaveIdentity identity;
  if (has_attribute(file, "save_id")) identity.save_id = read_string_attribute(file, "save_id");
  if (has_attribute(file, "parent_save_id")) identity.parent_save_id = read_string_attribute(file, "parent_save_id");
  return identity;
}

}  // namespace zs::checkpoint::detail
