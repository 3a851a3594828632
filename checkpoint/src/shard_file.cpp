#include "zeroshard/checkpoint/shard_file.hpp"

#include <algorithm>
#include <filesystem>
#include <charconv>

#include "data_file_layout.hpp"
#include "h5_attributes.hpp"
#include "in_memory_file.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checksum.hpp"
#include "zeroshard/checkpoint/saved_values.hpp"
#include "zeroshard/sharding/fragment_map.hpp"

namespace zs::checkpoint {

using detail::read_int_attribute;
using detail::read_string_attribute;
using detail::read_strings_attribute;
using detail::write_attribute;

std::string shape_to_text(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text.push_back(',');
    text.append(std::to_string(shape[i]));
  }
  return text;
}

std::vector<std::int64_t> shape_from_text(const std::string& text) {
  std::vector<std::int64_t> shape;
  if (text.empty()) return shape;  // a scalar
  std::size_t at = 0;
  while (true) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    const std::string part = text.substr(at, comma - at);
    std::int64_t value = 0;
    const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), value);
    if (part.empty() || error != std::errc() || end != part.data() + part.size() || value < 0)
      throw CheckpointError(detail::field_problem("tensor_shapes", "'" + text + "'",
                                                  "comma-separated dimensions, each an integer in [0, 2^63-1]"));
    shape.push_back(value);
    if (comma == text.size()) return shape;
    at = comma + 1;
  }
}

namespace detail {

void require_shard_sized(const UnitShard& unit, const ShardBuffer& buffer) {
  if (static_cast<std::int64_t>(buffer.data.size()) != unit.layout.shard_numel())
    throw CheckpointError("buffer " + buffer.name + " of " + unit.name + " holds " + std::to_string(buffer.data.size()) +
                          " elements, the layout's shard " + std::to_string(unit.layout.shard_numel()));
}

Hid write_unit_group(hid_t units_group, const UnitShard& unit) {
  Hid group(ZS_H5_CHECK(H5Gcreate2(units_group, unit.name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  const sharding::FlatLayout& layout = unit.layout;
  write_attribute(group.get(), "world_size", std::int64_t{layout.world_size()});
  write_attribute(group.get(), "alignment", layout.alignment());
  write_attribute(group.get(), "shard_numel", layout.shard_numel());
  std::vector<std::string> names, shapes;
  for (const auto& slot : layout.tensors()) {
    names.push_back(slot.spec.name);
    shapes.push_back(shape_to_text(slot.spec.shape));
  }
  write_attribute(group.get(), "tensor_names", names);
  write_attribute(group.get(), "tensor_shapes", shapes);
  return group;
}

void write_fragment_table(hid_t group, const std::vector<sharding::Fragment>& fragments, bool write_values) {
  std::vector<std::int64_t> table;
  for (const auto& f : fragments)
    table.insert(table.end(), {static_cast<std::int64_t>(f.tensor), f.tensor_offset, f.shard_offset, f.length});
  const hsize_t dims[2] = {fragments.size(), 4};
  Hid space(ZS_H5_CHECK(H5Screate_simple(2, dims, nullptr)));
  Hid dataset(ZS_H5_CHECK(
      H5Dcreate2(group, "fragments", H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
  if (write_values && !fragments.empty())
    ZS_H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, table.data()));
  write_attribute(dataset.get(), "columns", std::string("tensor,tensor_offset,shard_offset,length"));
}

Hid unfilled_dataset_properties() {
  Hid create(ZS_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE)));
  ZS_H5_CHECK(H5Pset_fill_time(create.get(), H5D_FILL_TIME_NEVER));
  return create;
}

void write_checksums(hid_t dataset, const std::vector<std::uint32_t>& crc32) {
  write_attribute(dataset, "crc32", crc32);
  write_attribute(dataset, "checksum_block_elements", kChecksumBlockElements);
}

}  // namespace detail

std::vector<sharding::Fragment> fragments_in_file(const sharding::FlatLayout& layout, int first_rank, int rank_count) {
  std::vector<sharding::Fragment> fragments;
  for (int r = first_rank; r < first_rank + rank_count; ++r)
    for (sharding::Fragment f : sharding::fragment_map(layout, r)) {
      f.shard_offset += (r - first_rank) * layout.shard_numel();
      fragments.push_back(f);
    }
  return fragments;
}

namespace {

void write_buffer(hid_t group, const ShardBuffer& buffer) {
  const hsize_t dims[1] = {buffer.data.size()};
  Hid space(ZS_H5_CHECK(H5Screate_simple(1, dims, nullptr)));
  Hid create = detail::unfilled_dataset_properties();
  Hid dataset(ZS_H5_CHECK(
      H5Dcreate2(group, buffer.name.c_str(), H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, create.get(), H5P_DEFAULT)));
  if (!buffer.data.empty())
    ZS_H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data.data()));
  detail::write_checksums(dataset.get(), block_checksums(buffer.data));
}

}  // namespace

std::span<const char> build_shard_image(const ShardContents& contents, ImageArena& arena) {
  std::string where = "the file";
  try {
    disable_hdf5_error_printing();
    std::int64_t data_bytes = 0;
    for (const UnitShard& unit : contents.units)
      for (const ShardBuffer& buffer : unit.buffers) data_bytes += static_cast<std::int64_t>(buffer.data.size_bytes());
    Hid file = detail::create_in_memory_file(data_bytes, arena);
    detail::write_training_state(file.get(), contents.state, contents.identity);
    write_attribute(file.get(), "rank", std::int64_t{contents.rank});
    write_attribute(file.get(), "world_size", std::int64_t{contents.world_size});
    write_attribute(file.get(), "rng_state", contents.rng_state);
    Hid units(ZS_H5_CHECK(H5Gcreate2(file.get(), "units", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    for (const UnitShard& unit : contents.units) {
      where = "units/" + unit.name;
      Hid group = detail::write_unit_group(units.get(), unit);
      detail::write_fragment_table(group.get(), fragments_in_file(unit.layout, contents.rank, 1));
      for (const ShardBuffer& buffer : unit.buffers) {
        where = "units/" + unit.name + "/" + buffer.name;
        detail::require_shard_sized(unit, buffer);
        write_buffer(group.get(), buffer);
      }
    }
    where = "the file image";
    return detail::file_image(file.get(), arena);
  } catch (const Error& e) {
    throw CheckpointError("building checkpoint shard " + shard_file_name(contents.rank) + " failed at " + where +
                          ": " + e.what());
  }
}

namespace {

using detail::field_problem;
using detail::read_int_in_range;

// The fragment table must be exactly the layout's fragment maps of the file's ranks: a
// reordered tensor_names/tensor_shapes (moving tensors within the flat buffer) or an edited
// table is refused here, on open, by every reader.
void check_fragment_table(hid_t group, const ShardFile::Unit& unit, int first_rank, int rank_count) {
  Hid dataset(ZS_H5_CHECK(H5Dopen2(group, "fragments", H5P_DEFAULT)));
  const auto expected = fragments_in_file(unit.layout, first_rank, rank_count);
  Hid space(ZS_H5_CHECK(H5Dget_space(dataset.get())));
  const hssize_t stored = ZS_H5_CHECK(H5Sget_simple_extent_npoints(space.get()));
  if (stored != static_cast<hssize_t>(expected.size() * 4))
    throw CheckpointError("unit " + unit.name + ": " +
                          field_problem("fragments", std::to_string(stored) + " numbers",
                                        std::to_string(expected.size() * 4) + " (4 per fragment of its layout)"));
  std::vector<std::int64_t> table(expected.size() * 4);
  if (!table.empty()) ZS_H5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, table.data()));
  for (std::size_t f = 0; f < expected.size(); ++f) {
    const auto& e = expected[f];
    const std::int64_t want[4] = {static_cast<std::int64_t>(e.tensor), e.tensor_offset, e.shard_offset, e.length};
    if (!std::equal(want, want + 4, table.begin() + 4 * f))
      throw CheckpointError("unit " + unit.name + ": " +
                            field_problem("fragments[" + std::to_string(f) + "]",
                                          "(" + std::to_string(table[4 * f]) + ", " + std::to_string(table[4 * f + 1]) +
                                              ", " + std::to_string(table[4 * f + 2]) + ", " +
                                              std::to_string(table[4 * f + 3]) + ")",
                                          "(" + std::to_string(want[0]) + ", " + std::to_string(want[1]) + ", " +
                                              std::to_string(want[2]) + ", " + std::to_string(want[3]) + ") for tensor " +
                                              unit.layout.tensors()[e.tensor].spec.name +
                                              " as tensor_names/tensor_shapes lay it out"));
  }
}

// A buffer dataset must hold rank_count shards and one checksum per block of each: checked on
// open, so no later read computes offsets from sizes the file does not have.
void check_buffer_dataset(hid_t group, const ShardFile::Unit& unit, const std::string& buffer, int rank_count) {
  Hid dataset(ZS_H5_CHECK(H5Dopen2(group, buffer.c_str(), H5P_DEFAULT)));
  const std::string where = "unit " + unit.name + ", dataset " + buffer + ": ";
  const std::int64_t shard = unit.layout.shard_numel();
  std::int64_t elements = 0;
  if (__builtin_mul_overflow(shard, std::int64_t{rank_count}, &elements))
    throw CheckpointError(where + "shard_numel x ranks overflows");
  Hid space(ZS_H5_CHECK(H5Dget_space(dataset.get())));
  const hssize_t stored = ZS_H5_CHECK(H5Sget_simple_extent_npoints(space.get()));
  if (stored != elements)
    throw CheckpointError(where + field_problem("size", std::to_string(stored) + " elements",
                                                std::to_string(elements) + " (shard_numel " + std::to_string(shard) +
                                                    " x " + std::to_string(rank_count) + " rank(s))"));
  read_int_in_range(dataset.get(), "checksum_block_elements", kChecksumBlockElements, kChecksumBlockElements,
                    std::to_string(kChecksumBlockElements));
  const std::int64_t blocks = (shard + kChecksumBlockElements - 1) / kChecksumBlockElements * rank_count;
  const auto crc32 = detail::read_uint32s_attribute(dataset.get(), "crc32");
  if (static_cast<std::int64_t>(crc32.size()) != blocks)
    throw CheckpointError(where + field_problem("crc32", std::to_string(crc32.size()) + " checksums",
                                                std::to_string(blocks) + " (one per block of each rank's slice)"));
}

}  // namespace

ShardFile::ShardFile(std::string path) : path_(std::move(path)) {
  disable_hdf5_error_printing();
  if (!std::filesystem::exists(path_))
    throw CheckpointError("checkpoint shard " + path_ + " is missing: the checkpoint is incomplete; restore the "
                          "file or load another tag");
  if (std::filesystem::is_directory(path_))
    throw CheckpointError("checkpoint shard " + path_ + " is a directory, not a file: restore the file or load another tag");
  try {
    file_ = Hid(ZS_H5_CHECK(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT)));
  } catch (const Error& e) {
    throw CheckpointError("checkpoint shard " + path_ + " cannot be opened (truncated or corrupt): " + e.what() +
                          "\n  Restore the file or load another tag.");
  }
  // Everything read is checked here, once, for every reader (docs/checkpoint-format.md,
  // "Validation"): ranges before any value becomes an int, a size or an offset.
  try {
    format_version_ = static_cast<int>(detail::read_format_version(file_.get()));
    state_ = detail::read_training_state(file_.get());
    identity_ = detail::read_save_identity(file_.get());
    world_size_ = static_cast<int>(read_int_in_range(file_.get(), "world_size", 1, kMaxSavedWorldSize, "1 to 2^24 ranks"));
    const std::string ranks = "a rank of the world size " + std::to_string(world_size_) + ", 0 to " +
                              std::to_string(world_size_ - 1);
    if (detail::has_attribute(file_.get(), "rank_count")) {  // the shared file
      first_rank_ = static_cast<int>(read_int_in_range(file_.get(), "first_rank", 0, world_size_ - 1, ranks));
      const std::int64_t count = read_int_in_range(file_.get(), "rank_count", 1, world_size_ - first_rank_,
                                                   "1 to " + std::to_string(world_size_ - first_rank_) +
                                                       " (ranks from first_rank to the world size)");
      rng_states_ = read_strings_attribute(file_.get(), "rng_states");
      if (static_cast<std::int64_t>(rng_states_.size()) != count)
        throw CheckpointError(field_problem("rng_states", std::to_string(rng_states_.size()) + " states",
                                            std::to_string(count) + " (one per rank of rank_count)"));
    } else {
      first_rank_ = static_cast<int>(read_int_in_range(file_.get(), "rank", 0, world_size_ - 1, ranks));
      rng_states_ = {read_string_attribute(file_.get(), "rng_state")};
    }
    for (const std::string& state : rng_states_) parse_rng_state(state);
    Hid units(ZS_H5_CHECK(H5Gopen2(file_.get(), "units", H5P_DEFAULT)));
    hsize_t count = 0;
    ZS_H5_CHECK(H5Gget_num_objs(units.get(), &count));
    for (hsize_t i = 0; i < count; ++i) {
      Unit unit;
      const ssize_t length = ZS_H5_CHECK(H5Lget_name_by_idx(units.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT));
      unit.name.resize(length);
      ZS_H5_CHECK(H5Lget_name_by_idx(units.get(), ".", H5_INDEX_NAME, H5_ITER_INC, i, unit.name.data(), length + 1, H5P_DEFAULT));
      Hid group(ZS_H5_CHECK(H5Gopen2(units.get(), unit.name.c_str(), H5P_DEFAULT)));
      const std::string where = "unit " + unit.name + ": ";
      const auto names = read_strings_attribute(group.get(), "tensor_names");
      const auto shapes = read_strings_attribute(group.get(), "tensor_shapes");
      if (names.size() != shapes.size())
        throw CheckpointError(where + field_problem("tensor_shapes", std::to_string(shapes.size()) + " shapes",
                                                    std::to_string(names.size()) + ", one per entry of tensor_names"));
      std::vector<sharding::TensorSpec> specs;
      for (std::size_t t = 0; t < names.size(); ++t) specs.push_back({names[t], shape_from_text(shapes[t]), DType::float32});
      const std::int64_t unit_world = read_int_in_range(group.get(), "world_size", world_size_, world_size_,
                                                        std::to_string(world_size_) + ", the file's world size");
      const std::int64_t alignment = read_int_in_range(group.get(), "alignment", 1, kMaxAlignment, "1 to 2^30 elements");
      try {
        unit.layout = sharding::FlatLayout::build(std::move(specs), static_cast<int>(unit_world), alignment);
      } catch (const InvalidArgument& e) {
        throw CheckpointError(where + "tensor_names/tensor_shapes do not describe a layout: " + e.what());
      }
      const std::int64_t recorded = read_int_attribute(group.get(), "shard_numel");
      if (unit.layout.shard_numel() != recorded)
        throw CheckpointError(where + field_problem("shard_numel", std::to_string(recorded),
                                                    std::to_string(unit.layout.shard_numel()) +
                                                        " (what tensor_shapes, world_size and alignment give)"));
      hsize_t members = 0;
      ZS_H5_CHECK(H5Gget_num_objs(group.get(), &members));
      for (hsize_t m = 0; m < members; ++m) {
        const ssize_t n = ZS_H5_CHECK(H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, m, nullptr, 0, H5P_DEFAULT));
        std::string name(n, '\0');
        ZS_H5_CHECK(H5Lget_name_by_idx(group.get(), ".", H5_INDEX_NAME, H5_ITER_INC, m, name.data(), n + 1, H5P_DEFAULT));
        if (name != "fragments") unit.buffers.push_back(name);
      }
      if (std::find(unit.buffers.begin(), unit.buffers.end(), "params") == unit.buffers.end())
        throw CheckpointError(where + "has no params dataset");
      check_fragment_table(group.get(), unit, first_rank_, rank_count());
      for (const std::string& buffer : unit.buffers) check_buffer_dataset(group.get(), unit, buffer, rank_count());
      units_.push_back(std::move(unit));
    }
  } catch (const CheckpointError& e) {
    throw CheckpointError(std::string(e.what()).find(path_) == std::string::npos
                              ? "checkpoint shard " + path_ + ": " + e.what()
                              : std::string(e.what()));
  } catch (const Error& e) {
    throw CheckpointError("checkpoint shard " + path_ + " is not a readable ZeroShard shard (corrupt?): " + e.what());
  }
}

ShardFile::~ShardFile() = default;
ShardFile::ShardFile(ShardFile&&) noexcept = default;
ShardFile& ShardFile::operator=(ShardFile&&) noexcept = default;

const std::string& ShardFile::rng_state(int rank) const {
  check_holds(rank);
  return rng_states_[rank - first_rank_];
}

void ShardFile::check_holds(int rank) const {
  if (!holds_rank(rank))
    throw CheckpointError("checkpoint file " + path_ + " holds ranks [" + std::to_string(first_rank_) + ", " +
                          std::to_string(first_rank_ + rank_count()) + "), not rank " + std::to_string(rank) +
                          ": the index names the wrong file (files of two saves mixed?)");
}

std::string ShardFile::describe_block(int rank, std::size_t unit, std::int64_t begin, std::int64_t end) const {
  // Which tensors the bad elements belong to, so the user knows what is lost.
  std::string tensors;
  for (const sharding::Fragment& f : sharding::fragment_map(units_[unit].layout, rank))
    if (f.shard_offset < end && f.shard_offset + f.length > begin)
      tensors += (tensors.empty() ? "" : ", ") + units_[unit].layout.tensors()[f.tensor].spec.name;
  return tensors.empty() ? "padding only" : "tensor(s) " + tensors;
}

void ShardFile::read_verified_blocks(int rank, std::size_t unit, const std::string& buffer, std::int64_t first_block,
                                     std::int64_t last_block, std::vector<float>& out) {
  const std::string dataset_path = "units/" + units_[unit].name + "/" + buffer;
  const std::int64_t shard = units_[unit].layout.shard_numel();
  const std::int64_t blocks_per_rank = (shard + kChecksumBlockElements - 1) / kChecksumBlockElements;
  // Where this rank's slice starts in the dataset, and its checksums in the crc32 attribute.
  const std::int64_t slice_start = (rank - first_rank_) * shard, first_checksum = (rank - first_rank_) * blocks_per_rank;
  const std::int64_t begin = first_block * kChecksumBlockElements;
  const std::int64_t end = std::min(shard, (last_block + 1) * kChecksumBlockElements);
  out.resize(end - begin);
  std::vector<std::uint32_t> expected;
  try {
    Hid dataset(ZS_H5_CHECK(H5Dopen2(file_.get(), dataset_path.c_str(), H5P_DEFAULT)));
    expected = detail::read_uint32s_attribute(dataset.get(), "crc32");
    if (detail::read_int_attribute(dataset.get(), "checksum_block_elements") != kChecksumBlockElements)
      throw CheckpointError("unexpected checksum block size");
    Hid space(ZS_H5_CHECK(H5Dget_space(dataset.get())));
    if (ZS_H5_CHECK(H5Sget_simple_extent_npoints(space.get())) != shard * rank_count())
      throw CheckpointError("holds a different number of elements than its layout's shard (" + std::to_string(shard) +
                            ") times the ranks in the file (" + std::to_string(rank_count()) + ")");
    if (end > begin) {
      const hsize_t start[1] = {static_cast<hsize_t>(slice_start + begin)}, count[1] = {static_cast<hsize_t>(end - begin)};
      ZS_H5_CHECK(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr));
      Hid memory(ZS_H5_CHECK(H5Screate_simple(1, count, nullptr)));
      ZS_H5_CHECK(H5Dread(dataset.get(), H5T_NATIVE_FLOAT, memory.get(), space.get(), H5P_DEFAULT, out.data()));
    }
  } catch (const Error& e) {
    throw CheckpointError("checkpoint shard " + path_ + ", dataset " + dataset_path + ": cannot be read (" +
                          e.what() + "); restore the file or load another tag");
  }
  if (whole_file_checked_) return;  // the same bytes passed the manifest's CRC just now
  for (std::int64_t b = first_block; b <= last_block && b * kChecksumBlockElements < end; ++b) {
    const std::int64_t from = b * kChecksumBlockElements - begin;
    const std::int64_t length = std::min(kChecksumBlockElements, end - begin - from);
    const std::int64_t checksum = first_checksum + b;
    const bool known = b < blocks_per_rank && checksum < static_cast<std::int64_t>(expected.size());
    if (!known || crc32_of(std::span<const float>(out).subspan(from, length)) != expected[checksum])
      throw CheckpointError("checkpoint shard " + path_ + ", dataset " + dataset_path + ": checksum mismatch in "
                            "rank " + std::to_string(rank) + "'s elements [" + std::to_string(begin + from) + ", " +
                            std::to_string(begin + from + length) + ") holding " +
                            describe_block(rank, unit, begin + from, begin + from + length) +
                            ": the file is corrupt; restore it or load another tag");
  }
}

void ShardFile::read(int rank, std::size_t unit, const std::string& buffer, std::int64_t begin, std::span<float> out) {
  if (out.empty()) return;
  check_holds(rank);
  const auto& names = units_.at(unit).buffers;
  if (std::find(names.begin(), names.end(), buffer) == names.end())
    throw CheckpointError("checkpoint shard " + path_ + ": unit " + units_[unit].name + " has no dataset '" + buffer + "'");
  const std::int64_t end = begin + static_cast<std::int64_t>(out.size());
  const std::int64_t first = begin / kChecksumBlockElements, last = (end - 1) / kChecksumBlockElements;
  if (first == last && cache_.rank == rank && cache_.unit == unit && cache_.buffer == buffer && cache_.block == first) {
    std::copy_n(cache_.data.begin() + (begin - first * kChecksumBlockElements), out.size(), out.begin());
    return;
  }
  std::vector<float>& blocks = read_buffer_;  // reused: fresh buffers cost page faults per read
  read_verified_blocks(rank, unit, buffer, first, last, blocks);
  std::copy_n(blocks.begin() + (begin - first * kChecksumBlockElements), out.size(), out.begin());
  // Keep the last block: the next read of a neighbouring tensor usually starts in it.
  cache_.rank = rank;
  cache_.unit = unit;
  cache_.buffer = buffer;
  cache_.block = last;
  cache_.data.assign(blocks.begin() + (last - first) * kChecksumBlockElements, blocks.end());
}

std::vector<std::string> ShardFile::verify() {
  // Fragment tables, dataset sizes and checksum counts were checked on open (every reader
  // does that); what is left is reading every block against its checksum.
  std::vector<std::string> problems;
  const bool skipping = whole_file_checked_;
  whole_file_checked_ = false;  // verify checks every block, whatever the manifest said
  for (std::size_t u = 0; u < units_.size(); ++u) {
    const Unit& unit = units_[u];
    const std::int64_t blocks = (unit.layout.shard_numel() + kChecksumBlockElements - 1) / kChecksumBlockElements;
    for (const std::string& buffer : unit.buffers)
      for (int rank = first_rank_; rank < first_rank_ + rank_count(); ++rank) {
        std::vector<float> data;
        try {
          for (std::int64_t b = 0; b < blocks; ++b) read_verified_blocks(rank, u, buffer, b, b, data);
        } catch (const Error& e) {
          problems.push_back(e.what());
        }
      }
  }
  whole_file_checked_ = skipping;
  return problems;
}

}  // namespace zs::checkpoint
