#include "zeroshard/checkpoint/checkpoint_tools.hpp"

#include <algorithm>
#include <filesystem>

#include "h5_attributes.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/index_file.hpp"

namespace zs::checkpoint {

namespace fs = std::filesystem;

VerifyReport verify_checkpoint(const std::string& dir, const std::string& tag) {
  // Not through CheckpointReader, which stops at the first data file that does not belong:
  // verify reports every problem of every file, found by the same check the reader runs.
  VerifyReport report;
  report.tag = resolve_tag(dir, tag);
  const fs::path tag_dir = tag_directory(dir, report.tag);
  const std::string index_path = (tag_dir / kIndexFileName).string();
  const IndexSummary index = read_index_summary(index_path);
  report.shards = index.world_size;
  // Each data file once (the shared file holds every rank), in rank order.
  std::vector<std::string> files;
  for (const std::string& name : index.shard_files)
    if (std::find(files.begin(), files.end(), name) == files.end()) files.push_back(name);
  report.files = static_cast<int>(files.size());
  std::vector<ShardFile::Unit> expected;  // the first readable file's units
  std::string expected_from;
  for (const std::string& name : files) {
    const std::string path = (tag_dir / name).string();
    try {
      ShardFile shard(path);
      if (expected_from.empty()) {
        expected = shard.units();
        expected_from = name;
        for (const auto& unit : expected) report.tensors += static_cast<std::int64_t>(unit.layout.tensors().size());
      }
      const std::vector<std::string> differences = data_file_differences(shard, name, index, expected, expected_from);
      if (!differences.empty()) report.problems.push_back(mixed_saves_message(path, index_path, differences));
      for (std::string& problem : shard.verify()) report.problems.push_back(std::move(problem));
      for (const auto& unit : shard.units())
        report.bytes_checked += unit.layout.shard_numel() * 4 * static_cast<std::int64_t>(unit.buffers.size()) *
                                shard.rank_count();
    } catch (const Error& e) {
      report.problems.push_back(e.what());
    }
  }
  return report;
}

std::string consolidate_checkpoint(const std::string& dir, const std::string& tag, const std::string& out,
                                   bool include_optimizer) {
  CheckpointReader reader(dir, tag);
  const std::string temporary = out + ".tmp";
  try {
    disable_hdf5_error_printing();
    {
      Hid file(ZS_H5_CHECK(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)));
      detail::write_training_state(file.get(), reader.state(), reader.identity());
      detail::write_attribute(file.get(), "world_size", std::int64_t{reader.world_size()});
      detail::write_attribute(file.get(), "tag", reader.tag());
      Hid link_create(ZS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
      ZS_H5_CHECK(H5Pset_create_intermediate_group(link_create.get(), 1));
      std::vector<std::string> buffers = {"params"};
      if (include_optimizer)
        for (const std::string& b : reader.buffers())
          if (b != "params") buffers.push_back(b);
      std::vector<float> values;
      for (const sharding::TensorSpec& spec : reader.tensors()) {
        // The tensor alone, laid out for one rank: read() then fills it in row-major order.
        const auto alone = sharding::FlatLayout::build({spec}, 1, 1);
        values.resize(alone.padded_numel());
        std::vector<hsize_t> dims(spec.shape.begin(), spec.shape.end());
        Hid space(dims.empty() ? ZS_H5_CHECK(H5Screate(H5S_SCALAR))
                               : ZS_H5_CHECK(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr)));
        for (const std::string& buffer : buffers) {
          reader.read(alone, buffer, 0, values);
          const std::string name = index_dataset_path(buffer, spec.name);
          Hid dataset(ZS_H5_CHECK(H5Dcreate2(file.get(), name.c_str(), H5T_IEEE_F32LE, space.get(), link_create.get(),
                                             H5P_DEFAULT, H5P_DEFAULT)));
          if (!values.empty())
            ZS_H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
        }
      }
    }
    fs::rename(temporary, out);
  } catch (const CheckpointError&) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  } catch (const std::exception& e) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw CheckpointError("writing the consolidated file " + out + " failed: " + e.what());
  }
  return reader.tag();
}

}  // namespace zs::checkpoint
