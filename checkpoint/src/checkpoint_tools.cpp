#include "zeroshard/checkpoint/checkpoint_tools.hpp"

#include <filesystem>
#include <map>

#include "h5_attributes.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/hdf5_check.hpp"
#include "zeroshard/checkpoint/index_file.hpp"

namespace zs::checkpoint {

namespace fs = std::filesystem;

VerifyReport verify_checkpoint(const std::string& dir, const std::string& tag) {
  CheckpointReader reader(dir, tag);
  VerifyReport report;
  report.tag = reader.tag();
  report.shards = reader.world_size();
  report.tensors = static_cast<std::int64_t>(reader.tensors().size());
  const auto expected_tensors = reader.tensors();
  // Each data file once, with the ranks the index says it holds (all of them for a shared file).
  std::map<std::string, std::vector<int>> ranks_of_file;
  for (int r = 0; r < reader.world_size(); ++r) ranks_of_file[reader.data_files()[r]].push_back(r);
  report.files = static_cast<int>(ranks_of_file.size());
  for (const auto& [name, ranks] : ranks_of_file) {
    const std::string path = (fs::path(reader.directory()) / name).string();
    try {
      ShardFile shard(path);
      const bool contiguous = ranks.back() - ranks.front() + 1 == static_cast<int>(ranks.size());
      if (!contiguous || shard.first_rank() != ranks.front() || shard.rank_count() != static_cast<int>(ranks.size()) ||
          shard.world_size() != reader.world_size())
        report.problems.push_back(path + ": holds ranks [" + std::to_string(shard.first_rank()) + ", " +
                                  std::to_string(shard.first_rank() + shard.rank_count()) + ") of " +
                                  std::to_string(shard.world_size()) + ", the index says ranks " +
                                  std::to_string(ranks.front()) + "-" + std::to_string(ranks.back()) + " of " +
                                  std::to_string(reader.world_size()));
      if (shard.state().step != reader.state().step || shard.state().micro_step != reader.state().micro_step)
        report.problems.push_back(path + ": step " + std::to_string(shard.state().step) + " differs from the index's " +
                                  std::to_string(reader.state().step) + " (files of two saves mixed)");
      std::vector<sharding::TensorSpec> tensors;
      for (const auto& unit : shard.units())
        for (const auto& slot : unit.layout.tensors()) tensors.push_back(slot.spec);
      if (tensors != expected_tensors) report.problems.push_back(path + ": holds other tensors than shard 0");
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
      detail::write_training_state(file.get(), reader.state());
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
