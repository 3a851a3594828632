#include "zeroshard/checkpoint/index_file.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include "h5_attributes.hpp"
#include "in_memory_file.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/saved_values.hpp"
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

// One mapping of a virtual dataset: a box of the tensor from a stretch of a data file's
// flat dataset.
struct VirtualMapping {
  std::string file;
  std::vector<hsize_t> start, count;  // the box in the tensor (a scalar is shape [1])
  hsize_t source_start = 0, source_count = 0;
};

// Every rank's fragments of tensor `tensor`, box by box, from the data file that holds the
// rank's slice (its own file, or its stretch of the shared file): what the index writes, and
// what readers compare the index with.
std::vector<VirtualMapping> virtual_mappings(CheckpointMode mode, const IndexUnit& unit, std::size_t tensor,
                                             const std::vector<std::vector<sharding::Fragment>>& fragments_by_rank) {
  const sharding::TensorSlot& slot = unit.layout.tensors()[tensor];
  const bool shared = mode == CheckpointMode::shared_file;
  const std::int64_t shard = unit.layout.shard_numel();
  const std::vector<std::int64_t> shape = slot.spec.shape.empty() ? std::vector<std::int64_t>{1} : slot.spec.shape;
  std::vector<VirtualMapping> mappings;
  for (std::size_t rank = 0; rank < fragments_by_rank.size(); ++rank)
    for (const sharding::Fragment& f : fragments_by_rank[rank]) {
      if (f.tensor != tensor) continue;
      std::int64_t source_offset = f.shard_offset + (shared ? static_cast<std::int64_t>(rank) * shard : 0);
      for (const sharding::Box& box : sharding::row_major_boxes(shape, f.tensor_offset, f.length)) {
        mappings.push_back({data_file_name(mode, static_cast<int>(rank)),
                            {box.start.begin(), box.start.end()},
                            {box.count.begin(), box.count.end()},
                            static_cast<hsize_t>(source_offset),
                            static_cast<hsize_t>(box.numel())});
        source_offset += box.numel();
      }
    }
  return mappings;
}

std::string source_dataset_of(const IndexUnit& unit, const std::string& buffer) {
  return "/units/" + unit.name + "/" + buffer;
}

std::vector<std::vector<sharding::Fragment>> fragments_by_rank_of(const IndexUnit& unit, int world_size) {
  std::vector<std::vector<sharding::Fragment>> fragments;
  for (int r = 0; r < world_size; ++r) fragments.push_back(sharding::fragment_map(unit.layout, r));
  return fragments;
}

void write_virtual_tensor(hid_t file, hid_t link_create, CheckpointMode mode, const IndexUnit& unit, std::size_t tensor,
                          const std::string& buffer, const std::vector<std::vector<sharding::Fragment>>& fragments_by_rank) {
  const sharding::TensorSlot& slot = unit.layout.tensors()[tensor];
  Hid full = dataspace_of(slot.spec.shape);
  Hid create(ZS_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)));
  const float missing = std::numeric_limits<float>::quiet_NaN();
  ZS_H5_CHECK(H5Pset_fill_value(create.get(), H5T_NATIVE_FLOAT, &missing));
  const std::string source_dataset = source_dataset_of(unit, buffer);
  const bool shared = mode == CheckpointMode::shared_file;
  const std::int64_t shard = unit.layout.shard_numel();
  const hsize_t source_dims[1] = {static_cast<hsize_t>(shared ? shard * unit.layout.world_size() : shard)};
  Hid source(ZS_H5_CHECK(H5Screate_simple(1, source_dims, nullptr)));
  for (const VirtualMapping& m : virtual_mappings(mode, unit, tensor, fragments_by_rank)) {
    ZS_H5_CHECK(H5Sselect_hyperslab(full.get(), H5S_SELECT_SET, m.start.data(), nullptr, m.count.data(), nullptr));
    const hsize_t source_start[1] = {m.source_start}, source_count[1] = {m.source_count};
    ZS_H5_CHECK(H5Sselect_hyperslab(source.get(), H5S_SELECT_SET, source_start, nullptr, source_count, nullptr));
    ZS_H5_CHECK(H5Pset_virtual(create.get(), full.get(), m.file.c_str(), source_dataset.c_str(), source.get()));
  }
  ZS_H5_CHECK(H5Sselect_all(full.get()));
  const std::string path = index_dataset_path(buffer, slot.spec.name);
  Hid dataset(ZS_H5_CHECK(
      H5Dcreate2(file, path.c_str(), H5T_IEEE_F32LE, full.get(), link_create, create.get(), H5P_DEFAULT)));
}

// The bounds [first, last] of a dataspace's selection.
std::pair<std::vector<hsize_t>, std::vector<hsize_t>> selection_bounds(hid_t space) {
  const int rank = ZS_H5_CHECK(H5Sget_simple_extent_ndims(space));
  std::vector<hsize_t> first(rank), last(rank);
  ZS_H5_CHECK(H5Sget_select_bounds(space, first.data(), last.data()));
  return {first, last};
}

// Why the index's virtual dataset of `buffer` of `tensor` does not map the elements the
// layout says it holds (empty: it does).
std::string virtual_tensor_difference(hid_t index, CheckpointMode mode, const IndexUnit& unit, std::size_t tensor,
                                      const std::string& buffer,
                                      const std::vector<std::vector<sharding::Fragment>>& fragments_by_rank) {
  const sharding::TensorSpec& spec = unit.layout.tensors()[tensor].spec;
  const std::string path = index_dataset_path(buffer, spec.name);
  if (H5Lexists(index, path.c_str(), H5P_DEFAULT) <= 0) return path + " is missing";
  Hid dataset(ZS_H5_CHECK(H5Dopen2(index, path.c_str(), H5P_DEFAULT)));
  Hid space(ZS_H5_CHECK(H5Dget_space(dataset.get())));
  std::vector<hsize_t> dims(ZS_H5_CHECK(H5Sget_simple_extent_ndims(space.get())));
  ZS_H5_CHECK(H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr));
  std::vector<hsize_t> shape(spec.shape.begin(), spec.shape.end());
  if (shape.empty()) shape = {1};
  if (dims != shape) return path + " has another shape than the data file's [" + shape_to_text(spec.shape) + "]";
  Hid create(ZS_H5_CHECK(H5Dget_create_plist(dataset.get())));
  if (ZS_H5_CHECK(H5Pget_layout(create.get())) != H5D_VIRTUAL) return path + " is not a virtual dataset";
  const std::vector<VirtualMapping> expected = virtual_mappings(mode, unit, tensor, fragments_by_rank);
  std::size_t count = 0;
  ZS_H5_CHECK(H5Pget_virtual_count(create.get(), &count));
  if (count != expected.size())
    return path + " maps " + std::to_string(count) + " pieces, the layout " + std::to_string(expected.size());
  const std::string source = source_dataset_of(unit, buffer);
  for (std::size_t i = 0; i < count; ++i) {
    const VirtualMapping& m = expected[i];
    std::string file(ZS_H5_CHECK(H5Pget_virtual_filename(create.get(), i, nullptr, 0)), '\0');
    ZS_H5_CHECK(H5Pget_virtual_filename(create.get(), i, file.data(), file.size() + 1));
    std::string name(ZS_H5_CHECK(H5Pget_virtual_dsetname(create.get(), i, nullptr, 0)), '\0');
    ZS_H5_CHECK(H5Pget_virtual_dsetname(create.get(), i, name.data(), name.size() + 1));
    Hid box(ZS_H5_CHECK(H5Pget_virtual_vspace(create.get(), i)));
    Hid from(ZS_H5_CHECK(H5Pget_virtual_srcspace(create.get(), i)));
    const auto [box_first, box_last] = selection_bounds(box.get());
    const auto [from_first, from_last] = selection_bounds(from.get());
    std::vector<hsize_t> expected_last(m.start.size());
    for (std::size_t d = 0; d < m.start.size(); ++d) expected_last[d] = m.start[d] + m.count[d] - 1;
    if (file != m.file || name != source || box_first != m.start || box_last != expected_last ||
        from_first.size() != 1 || from_first[0] != m.source_start || from_last[0] != m.source_start + m.source_count - 1)
      return path + " maps piece " + std::to_string(i) + " from " + file + ":" + name + " elements [" +
             std::to_string(from_first.empty() ? 0 : from_first[0]) + ", ...], the data file's layout puts it at " +
             m.file + ":" + source + " elements [" + std::to_string(m.source_start) + ", " +
             std::to_string(m.source_start + m.source_count) + ") (tensor names or order edited?)";
  }
  return "";
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
    // A tag whose manifest is missing is then known to have lost it (a save from before
    // manifests has no such attribute and loads with a warning).
    detail::write_attribute(file.get(), "manifest", std::string(kManifestFileName));
    // Tensor names may contain '/' (nested modules): create the groups on the way.
    Hid link_create(ZS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
    ZS_H5_CHECK(H5Pset_create_intermediate_group(link_create.get(), 1));
    for (const IndexUnit& unit : units) {
      const auto fragments_by_rank = fragments_by_rank_of(unit, world_size);
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
    summary.format_version = static_cast<int>(detail::read_format_version(file.get()));
    summary.world_size = static_cast<int>(
        detail::read_int_in_range(file.get(), "world_size", 1, kMaxSavedWorldSize, "1 to 2^24 ranks"));
    summary.tag = detail::read_string_attribute(file.get(), "tag");
    summary.state = detail::read_training_state(file.get());
    summary.identity = detail::read_save_identity(file.get());
    summary.shard_files = detail::read_strings_attribute(file.get(), "shard_files");
    // Files saved before shared-file mode existed have no mode attribute: they are per-rank.
    if (detail::has_attribute(file.get(), "mode"))
      summary.mode = parse_checkpoint_mode(detail::read_string_attribute(file.get(), "mode"));
    if (detail::has_attribute(file.get(), "manifest")) {
      const std::string manifest = detail::read_string_attribute(file.get(), "manifest");
      if (manifest != kManifestFileName)
        throw CheckpointError(detail::field_problem("manifest", "'" + manifest + "'", std::string("'") + kManifestFileName + "'"));
      summary.wrote_manifest = true;
    }
    if (static_cast<int>(summary.shard_files.size()) != summary.world_size)
      throw CheckpointError(detail::field_problem("shard_files", std::to_string(summary.shard_files.size()) + " names",
                                                  "one data file per rank of world_size " +
                                                      std::to_string(summary.world_size) + " (corrupt index)"));
    for (const std::string& name : summary.shard_files)
      if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
        throw CheckpointError("checkpoint index " + path + " names data file '" + name +
                              "', not a file in its own directory (corrupt index)");
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()).find(path) == std::string::npos
                              ? "checkpoint index " + path + ": " + e.what()
                              : std::string(e.what()));
  } catch (const InvalidArgument& e) {  // an unknown mode
    throw CheckpointError("checkpoint index " + path + ": " + e.what() + " (corrupt index, or a newer ZeroShard's)");
  } catch (const Error& e) {
    throw CheckpointError("checkpoint index " + path + " cannot be read (truncated or corrupt): " + e.what());
  }
  return summary;
}

}  // namespace zs::checkpoint

namespace zs::checkpoint {

std::vector<std::string> index_layout_differences(const std::string& index_path, const IndexSummary& index,
                                                  const std::vector<IndexUnit>& units) {
  std::vector<std::string> differences;
  disable_hdf5_error_printing();
  try {
    Hid file(ZS_H5_CHECK(H5Fopen(index_path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
    for (const IndexUnit& unit : units) {
      if (unit.layout.world_size() != index.world_size) continue;  // data_file_differences reports it
      const auto fragments_by_rank = fragments_by_rank_of(unit, index.world_size);
      for (const std::string& buffer : unit.buffers)
        for (std::size_t t = 0; t < unit.layout.tensors().size(); ++t) {
          std::string difference = virtual_tensor_difference(file.get(), index.mode, unit, t, buffer, fragments_by_rank);
          if (!difference.empty()) differences.push_back(std::move(difference));
        }
    }
  } catch (const Error& e) {
    differences.push_back(std::string("its virtual datasets cannot be read: ") + e.what());
  }
  return differences;
}

}  // namespace zs::checkpoint
