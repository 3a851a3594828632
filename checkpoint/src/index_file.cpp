#include "zeroshard/checkpoint/index_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "h5_attributes.hpp"
#include "in_memory_file.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/shard_file.hpp"
#include "zeroshard/sharding/fragment_map.hpp"
#include "zeroshard/sharding/row_major_boxes.hpp"

namespace zs::checkpoint {

std::string index_dataset_path(const std::string& buffer, const std::string& tensor) {
  return (buffer == "params" ? std::string("params/") : "optimizer/" + buffer + "/") + tensor;
}

namespace {

Hid dataspace_of(const std::vector<std::int64_t>& shape) {
  // HDF5 virtual datasets need a simple dataspace: a scalar is stored as shape [1].
  std::vector<hsize_t> dims(std::max<std::size_t>(shape.size(), 1), 1);
  std::copy(shape.begin(), shape.end(), dims.begin());
  return Hid(ZS_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
}

// One virtual dataset: every rank's fragments of `tensor`, box by box, from the data file that
// holds the rank's slice (its own file, or its stretch of the shared file).
void write_virtual_tensor(hid_t file, hid_t link_create, CheckpointMode mode, const IndexUnit& unit, std::size_t tensor,
                          const std::string& buffer, const std::vector<std::vector<sharding::Fragment>>& fragments_by_rank) {
  const sharding::TensorSlot& slot = unit.layout.tensors()[tensor];
  Hid full = dataspace_of(slot.spec.shape);
  Hid create(ZS_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)));
  const float missing = std::numeric_limits<float>::quiet_NaN();
  ZS_H5_CHECK(H5Pset_fill_value(create.get(), H5T_NATIVE_FLOAT, &missing));
  const std::string source_dataset = "/units/" + unit.name + "/" + buffer;
  const bool shared = mode == CheckpointMode::shared_file;
  const std::int64_t shard = unit.layout.shard_numel();
  const hsize_t source_dims[1] = {static_cast<hsize_t>(shared ? shard * unit.layout.world_size() : shard)};
  Hid source(ZS_H5_CHECK(H5Screate_simple(1, source_dims, nullptr)));
  const std::vector<std::int64_t> shape = slot.spec.shape.empty() ? std::vector<std::int64_t>{1} : slot.spec.shape;
  for (std::size_t rank = 0; rank < fragments_by_rank.size(); ++rank)
    for (const sharding::Fragment& f : fragments_by_rank[rank]) {
      if (f.tensor != tensor) continue;
      std::int64_t source_offset = f.shard_offset + (shared ? static_cast<std::int64_t>(rank) * shard : 0);
      for (const sharding::Box& box : sharding::row_major_boxes(shape, f.tensor_offset, f.length)) {
        std::vector<hsize_t> start(box.start.begin(), box.start.end()), count(box.count.begin(), box.count.end());
        ZS_H5_CHECK(H5Sselect_hyperslab(full.get(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr));
        const hsize_t source_start[1] = {static_cast<hsize_t>(source_offset)};
        const hsize_t source_count[1] = {static_cast<hsize_t>(box.numel())};
        ZS_H5_CHECK(H5Sselect_hyperslab(source.get(), H5S_SELECT_SET, source_start, nullptr, source_count, nullptr));
        ZS_H5_CHECK(H5Pset_virtual(create.get(), full.get(), data_file_name(mode, static_cast<int>(rank)).c_str(),
                                   source_dataset.c_str(), source.get()));
        source_offset += box.numel();
      }
    }
  ZS_H5_CHECK(H5Sselect_all(full.get()));
  const std::string path = index_dataset_path(buffer, slot.spec.name);
  Hid dataset(ZS_H5_CHECK(
      H5Dcreate2(file, path.c_str(), H5T_IEEE_F32LE, full.get(), link_create, create.get(), H5P_DEFAULT)));
}

}  // namespace

std::span<const char> build_index_image(const std::string& tag, int world_size, CheckpointMode mode,
                                        const TrainingState& state, const SaveIdentity& identity,
                                        const std::vector<IndexUnit>& units, ImageArena& arena) {
  try {
    disable_hdf5_error_printing();
    Hid file = detail::create_in_memory_file(0, arena);
    detail::write_training_state(file.get(), state, identity);
    detail::write_attribute(file.get(), "world_size", std::int64_t{world_size});
    detail::write_attribute(file.get(), "tag", tag);
    std::vector<std::string> shards;
    for (int r = 0; r < world_size; ++r) shards.push_back(data_file_name(mode, r));
    detail::write_attribute(file.get(), "shard_files", shards);
    detail::write_attribute(file.get(), "mode", to_string(mode));
    // Tensor names may contain '/' (nested modules): create the groups on the way.
    Hid link_create(ZS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
    ZS_H5_CHECK(H5Pset_create_intermediate_group(link_create.get(), 1));
    for (const IndexUnit& unit : units) {
      std::vector<std::vector<sharding::Fragment>> fragments_by_rank;
      for (int r = 0; r < world_size; ++r) fragments_by_rank.push_back(sharding::fragment_map(unit.layout, r));
      for (const std::string& buffer : unit.buffers)
        for (std::size_t t = 0; t < unit.layout.tensors().size(); ++t)
          write_virtual_tensor(file.get(), link_create.get(), mode, unit, t, buffer, fragments_by_rank);
    }
    return detail::file_image(file.get(), arena);
  } catch (const Error& e) {
    throw CheckpointError(std::string("building the checkpoint index failed: ") + e.what());
  }
}

IndexSummary read_index_summary(const std::string& path) {
  if (!std::filesystem::exists(path))
    throw CheckpointError("checkpoint index " + path + " is missing: the tag is incomplete (a save that did not "
                          "finish?); load another tag");
  IndexSummary summary;
  disable_hdf5_error_printing();
  try {
    Hid file(ZS_H5_CHECK(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
    summary.format_version = static_cast<int>(detail::read_int_attribute(file.get(), "format_version"));
    if (summary.format_version > kFormatVersion)
      throw CheckpointError("checkpoint index " + path + " has format version " + std::to_string(summary.format_version) +
                            ", newer than this ZeroShard reads (" + std::to_string(kFormatVersion) +
                            "): load it with a newer ZeroShard");
    summary.world_size = static_cast<int>(detail::read_int_attribute(file.get(), "world_size"));
    summary.tag = detail::read_string_attribute(file.get(), "tag");
    summary.state = detail::read_training_state(file.get());
    summary.identity = detail::read_save_identity(file.get());
    summary.shard_files = detail::read_strings_attribute(file.get(), "shard_files");
    // Files saved before shared-file mode existed have no mode attribute: they are per-rank.
    if (detail::has_attribute(file.get(), "mode"))
      summary.mode = parse_checkpoint_mode(detail::read_string_attribute(file.get(), "mode"));
    if (static_cast<int>(summary.shard_files.size()) != summary.world_size)
      throw CheckpointError("checkpoint index " + path + " names " + std::to_string(summary.shard_files.size()) +
                            " data files for " + std::to_string(summary.world_size) + " ranks (corrupt index)");
    for (const std::string& name : summary.shard_files)
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw CheckpointError("checkpoint index " + path + " names data file '" + name +
                              "', not a file in its own directory (corrupt index)");
  } catch (const CheckpointError&) {
    throw;
  } catch (const InvalidArgument& e) {  // an unknown mode
    throw CheckpointError("checkpoint index " + path + ": " + e.what() + " (corrupt index, or a newer ZeroShard's)");
  } catch (const Error& e) {
    throw CheckpointError("checkpoint index " + path + " cannot be read (truncated or corrupt): " + e.what());
  }
  return summary;
}

}  // namespace zs::checkpoint
