#include "zeroshard/checkpoint/checkpoint_tools.hpp"

#include "zeroshard/dtype_convert.hpp"
#include "zeroshard/error.hpp"

#include <algorithm>
#include <filesystem>

#include "file_size_signal.hpp"
#include "h5_attributes.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checkpoint_reader.hpp"
#include "zeroshard/checkpoint/durable_file.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"
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
  TagFiles checked(tag_dir.string());  // every file against the manifest before HDF5 opens it
  checked.require_intact(kIndexFileName);
  const IndexSummary index = read_index_summary(index_path);
  report.warning = checked.unchecked_warning();
  try {
    checked.require_matches_index(index);
  } catch (const CheckpointError& e) {
    report.problems.push_back(e.what());
  }
  report.shards = index.world_size;
  if (checked.has_manifest()) report.bytes_checked += static_cast<std::int64_t>(fs::file_size(index_path));
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
      checked.require_intact(name);
      ShardFile shard(path);
      if (expected_from.empty()) {
        expected = shard.units();
        expected_from = name;
        for (const auto& unit : expected) report.tensors += static_cast<std::int64_t>(unit.layout.tensors().size());
        // The index against the first file's layouts; every other file is compared with those.
        const std::vector<std::string> disagreements = index_layout_differences(index_path, index, expected);
        if (!disagreements.empty()) report.problems.push_back(index_disagrees_message(path, index_path, disagreements));
      }
      const std::vector<std::string> differences = data_file_differences(shard, name, index, expected, expected_from);
      if (!differences.empty()) report.problems.push_back(mixed_saves_message(path, index_path, differences));
      if (checked.has_manifest()) {
        // Its every byte matched the manifest's CRC above: the block CRCs would check the same
        // bytes again, and the loader skips them too (verify refuses what a load refuses).
        report.bytes_checked += static_cast<std::int64_t>(fs::file_size(path));
      } else {
        for (std::string& problem : shard.verify()) report.problems.push_back(std::move(problem));
        for (const auto& unit : shard.units())
          report.bytes_checked += unit.layout.shard_numel() * 4 * static_cast<std::int64_t>(unit.buffers.size()) *
                                  shard.rank_count();
      }
    } catch (const Error& e) {
      report.problems.push_back(e.what());
    }
  }
  return report;
}

namespace {

// More than the consolidated file can take: the data, generous room per dataset for its header
// and name, and 1 MiB for the rest (superblock, groups, the training state's attributes).
std::int64_t consolidated_bytes_bound(const CheckpointReader& reader, std::size_t buffers) {
  std::int64_t bytes = (std::int64_t{1} << 20) + static_cast<std::int64_t>(reader.state().config.size());
  for (const sharding::TensorSpec& spec : reader.tensors()) {
    std::int64_t numel = 1;
    for (std::int64_t d : spec.shape) numel *= d;
    bytes += static_cast<std::int64_t>(buffers) * (4 * numel + 4096 + static_cast<std::int64_t>(spec.name.size()));
  }
  return bytes;
}

}  // namespace

namespace {

// The HDF5 file type of exported parameters: IEEE float32 or binary16, or bfloat16 as an HDF5
// floating-point type with bfloat16's fields (sign bit 15, 8 exponent bits biased by 127, 7
// mantissa bits), so that HDF5 itself converts it to float on read (H5Dread to
// H5T_NATIVE_FLOAT).
Hid parameter_file_type(DType dtype) {
  if (dtype == DType::float32) return Hid(ZS_H5_CHECK(H5Tcopy(H5T_IEEE_F32LE)));
  const bool bf16 = dtype == DType::bfloat16;
  if (!bf16 && dtype != DType::float16)
    throw InvalidArgument("consolidate --dtype " + to_string(dtype) + ": export parameters as float32, bfloat16 or float16");
  Hid type(ZS_H5_CHECK(H5Tcopy(H5T_IEEE_F32LE)));
  ZS_H5_CHECK(H5Tset_fields(type.get(), 15, bf16 ? 7 : 10, bf16 ? 8 : 5, 0, bf16 ? 7 : 10));
  ZS_H5_CHECK(H5Tset_precision(type.get(), 16));
  ZS_H5_CHECK(H5Tset_size(type.get(), 2));
  ZS_H5_CHECK(H5Tset_ebias(type.get(), bf16 ? 127 : 15));
  return type;
}

// Refuses an output whose directory is missing or not a directory, or that is a directory
// itself, before any reading: HDF5's own error for these is a stack of five lines.
void require_writable_output(const std::string& out) {
  namespace fs = std::filesystem;
  if (out.empty()) throw InvalidArgument("consolidate: the output file name is empty");
  std::error_code error;
  if (fs::is_directory(out, error))
    throw InvalidArgument("consolidate: the output " + out + " is a directory; give a file name (e.g. " +
                          (fs::path(out) / "consolidated.h5").string() + ")");
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, error))
    throw InvalidArgument("consolidate: the output's directory " + parent.string() +
                          (fs::exists(parent, error) ? " is not a directory" : " does not exist: create it first"));
}

}  // namespace

std::string consolidate_checkpoint(const std::string& dir, const std::string& tag, const std::string& out,
                                   bool include_optimizer, DType parameter_dtype) {
  const Hid parameter_type = parameter_file_type(parameter_dtype);
  require_writable_output(out);
  CheckpointReader reader(dir, tag);
  const std::string temporary = out + ".tmp";
  // Past the file size limit the tool fails with "File too large" instead of dying of SIGXFSZ.
  const detail::SigxfszAsError sigxfsz;
  try {
    disable_hdf5_error_printing();
    {
      std::vector<std::string> buffers = {"params"};
      if (include_optimizer)
        for (const std::string& b : reader.buffers())
          if (b != "params") buffers.push_back(b);
      Hid file(ZS_H5_CHECK(H5Fcreate(temporary.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)));
      // A full disk or the file size limit must fail here, before HDF5 writes: after a failed
      // write HDF5 1.10 cannot close the file and crashes at exit (as write_shared_file()
      // found). Where the file system cannot reserve (NFS) this protection is absent.
      reserve_file_space(temporary, consolidated_bytes_bound(reader, buffers.size()));
      detail::write_training_state(file.get(), reader.state(), reader.identity());
      detail::write_attribute(file.get(), "world_size", std::int64_t{reader.world_size()});
      detail::write_attribute(file.get(), "tag", reader.tag());
      Hid link_create(ZS_H5_CHECK(H5Pcreate(H5P_LINK_CREATE)));
      ZS_H5_CHECK(H5Pset_create_intermediate_group(link_create.get(), 1));
      std::vector<float> values;
      std::vector<std::uint16_t> rounded;  // 16-bit exports: the masters rounded to nearest even
      detail::write_attribute(file.get(), "params_dtype", to_string(parameter_dtype));
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
          // Optimizer states stay float32 whatever the export dtype (they are float32 states).
          const bool narrowed = buffer == "params" && parameter_dtype != DType::float32;
          Hid dataset(ZS_H5_CHECK(H5Dcreate2(file.get(), name.c_str(), narrowed ? parameter_type.get() : H5T_IEEE_F32LE,
                                             space.get(), link_create.get(), H5P_DEFAULT, H5P_DEFAULT)));
          if (values.empty()) continue;
          if (narrowed) {
            rounded.resize(values.size());
            narrow(values.data(), rounded.data(), parameter_dtype, static_cast<std::int64_t>(values.size()));
            ZS_H5_CHECK(H5Dwrite(dataset.get(), parameter_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, rounded.data()));
          } else {
            ZS_H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()));
          }
        }
      }
      // The close writes the metadata HDF5 still caches: a failure there (a full disk, the
      // file size limit) must not be dropped by a destructor and leave a broken file as `out`.
      ZS_H5_CHECK(H5Fclose(file.release()));
    }
    {
      // The reservation left the file longer than what HDF5 uses (it does not truncate a file
      // grown behind its back): cut it at HDF5's end of allocation, recorded in the superblock.
      Hid written(ZS_H5_CHECK(H5Fopen(temporary.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
      haddr_t end = 0;
      ZS_H5_CHECK(H5Fget_eoa(written.get(), &end));
      ZS_H5_CHECK(H5Fclose(written.release()));
      fs::resize_file(temporary, end);
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

std::string seal_checkpoint(const std::string& dir, const std::string& tag) {
  const std::string chosen = resolve_tag(dir, tag);
  const std::string tag_dir = tag_directory(dir, chosen);
  if (TagFiles(tag_dir).has_manifest())
    throw CheckpointError("checkpoint " + tag_dir + " already has a manifest (" + kManifestFileName +
                          "): nothing to seal; `zeroshard-ckpt verify " + dir + " " + chosen + "` checks it");
  const VerifyReport report = verify_checkpoint(dir, chosen);
  if (!report.problems.empty()) {
    std::string message = "checkpoint " + tag_dir + " was not sealed: verify found " +
                          std::to_string(report.problems.size()) + " problem(s):";
    for (const std::string& p : report.problems) message += "\n  - " + p;
    throw CheckpointError(message + "\n  A manifest would vouch for damaged files: load or seal another tag");
  }
  const IndexSummary index = read_index_summary((fs::path(tag_dir) / kIndexFileName).string());
  std::vector<std::string> names{kIndexFileName};
  for (const std::string& name : index.shard_files)
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  write_manifest(tag_dir, manifest_of_files(tag_dir, names));
  return chosen;
}

}  // namespace zs::checkpoint
