#include "training_state_io.hpp"

#include "h5_attributes.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"

namespace zs::checkpoint::detail {

void write_training_state(hid_t file, const TrainingState& state) {
  write_attribute(file, "format_version", std::int64_t{kFormatVersion});
  write_attribute(file, "step", state.step);
  write_attribute(file, "micro_step", state.micro_step);
  write_attribute(file, "stage", std::int64_t{state.stage});
  write_attribute(file, "optimizer", state.optimizer);
  write_attribute(file, "config", state.config);
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

Hid create_in_memory_file(std::int64_t data_bytes, ImageArena& arena) {
  Hid access(ZS_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS)));
  // Grow in steps of the expected size (+1 MiB of metadata): one allocation, no re-copying.
  const std::size_t increment = static_cast<std::size_t>(data_bytes) + (std::size_t{1} << 20);
  ZS_H5_CHECK(H5Pset_fapl_core(access.get(), increment, /*backing_store=*/0));
  arena.attach(access.get());
  return Hid(ZS_H5_CHECK(H5Fcreate("zeroshard-in-memory.h5", H5F_ACC_TRUNC, H5P_DEFAULT, access.get())));
}

std::span<const char> file_image(hid_t file, const ImageArena& arena) {
  ZS_H5_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL));
  // The image is the file's allocated address space (EOA); the core driver's memory beyond
  // it (growth slack) is not part of the file.
  const ssize_t size = ZS_H5_CHECK(H5Fget_file_image(file, nullptr, 0));
  return arena.bytes(static_cast<std::size_t>(size));
}

void quiet_hdf5() { disable_hdf5_error_printing(); }

}  // namespace zs::checkpoint::detail
