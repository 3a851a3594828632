#include "shared_file_writer.hpp"

#include "zeroshard/checkpoint/checkpoint_error.hpp"

#ifdef ZS_HDF5_PARALLEL

#include <algorithm>
#include <numeric>

#include "data_file_layout.hpp"
#include "file_size_signal.hpp"
#include "h5_attributes.hpp"
#include "training_state_io.hpp"
#include "zeroshard/checkpoint/checksum.hpp"
#include "zeroshard/checkpoint/collective_outcome.hpp"
#include "zeroshard/checkpoint/durable_file.hpp"
#include "zeroshard/checkpoint/shard_file.hpp"
#include "zeroshard/comm/mpi_check.hpp"

namespace zs::checkpoint {

namespace {

// Parallel HDF5 wants every metadata call (attributes, groups, dataset creation) made by every
// rank with the same arguments. These make the per-rank parts of a save the same everywhere
// before the first HDF5 call.

std::string broadcast_from_rank_zero(Communicator& comm, std::string text) {
  long long length = static_cast<long long>(text.size());
  ZS_MPI_CHECK(MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, comm.handle()));
  text.resize(static_cast<std::size_t>(length));
  ZS_MPI_CHECK(MPI_Bcast(text.data(), static_cast<int>(length), MPI_CHAR, 0, comm.handle()));
  return text;
}

// The index (and a per-rank save's loader) uses rank 0's training state; so does the shared file.
TrainingState training_state_of_rank_zero(Communicator& comm, TrainingState state) {
  std::int64_t numbers[3] = {state.step, state.micro_step, state.stage};
  ZS_MPI_CHECK(MPI_Bcast(numbers, 3, MPI_INT64_T, 0, comm.handle()));
  state.step = numbers[0];
  state.micro_step = numbers[1];
  state.stage = static_cast<int>(numbers[2]);
  state.optimizer = broadcast_from_rank_zero(comm, state.optimizer);
  state.config = broadcast_from_rank_zero(comm, state.config);
  // client_state as "key\0value\0" pairs: attribute names hold no NUL.
  std::string pairs;
  for (const auto& [key, value] : state.client_state) pairs += key + '\0' + std::to_string(value) + '\0';
  pairs = broadcast_from_rank_zero(comm, pairs);
  state.client_state.clear();
  for (std::size_t at = 0; at < pairs.size();) {
    const std::size_t key_end = pairs.find('\0', at), value_end = pairs.find('\0', key_end + 1);
    state.client_state[pairs.substr(at, key_end - at)] = std::stoll(pairs.substr(key_end + 1, value_end - key_end - 1));
    at = value_end + 1;
  }
  return state;
}

std::vector<std::string> all_gather_strings(Communicator& comm, const std::string& mine) {
  const int ranks = comm.size();
  int length = static_cast<int>(mine.size());
  std::vector<int> lengths(ranks), starts(ranks);
  ZS_MPI_CHECK(MPI_Allgather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, comm.handle()));
  std::exclusive_scan(lengths.begin(), lengths.end(), starts.begin(), 0);
  std::string all(static_cast<std::size_t>(starts.back() + lengths.back()), '\0');
  ZS_MPI_CHECK(MPI_Allgatherv(mine.data(), length, MPI_CHAR, all.data(), lengths.data(), starts.data(), MPI_CHAR,
                              comm.handle()));
  std::vector<std::string> strings;
  for (int r = 0; r < ranks; ++r) strings.push_back(all.substr(starts[r], lengths[r]));
  return strings;
}

// Every rank's block checksums of one buffer, rank after rank (every rank has as many blocks).
std::vector<std::uint32_t> all_gather_checksums(Communicator& comm, std::span<const float> mine) {
  const std::vector<std::uint32_t> local = block_checksums(mine);
  std::vector<std::uint32_t> all(local.size() * comm.size());
  ZS_MPI_CHECK(MPI_Allgather(local.data(), static_cast<int>(local.size()), MPI_UINT32_T, all.data(),
                             static_cast<int>(local.size()), MPI_UINT32_T, comm.handle()));
  return all;
}

// An upper bound on the file's size: the data, the fragment tables, and generous room for the
// metadata (headers, attributes with checksums, names, the config). Over-reserving costs
// nothing: HDF5 truncates the file to its real end when it closes it.
std::int64_t expected_file_bytes(const ShardContents& contents, int ranks) {
  std::int64_t bytes = std::int64_t{1} << 20;
  bytes += static_cast<std::int64_t>(contents.state.config.size() + contents.rng_state.size() * ranks);
  for (const UnitShard& unit : contents.units) {
    bytes += 16 * 1024 + static_cast<std::int64_t>(unit.layout.tensors().size()) * (256 + 32 * ranks);
    for (const ShardBuffer& buffer : unit.buffers)
      bytes += 4 * 1024 + static_cast<std::int64_t>(buffer.data.size_bytes()) * ranks +
               4 * ranks * (static_cast<std::int64_t>(buffer.data.size()) / kChecksumBlockElements + 1);
  }
  return bytes;
}

Hid create_parallel_file(Communicator& comm, const std::string& path) {
  Hid access(ZS_H5_CHECK(H5Pcreate(H5P_FILE_ACCESS)));
  ZS_H5_CHECK(H5Pset_fapl_mpio(access.get(), comm.handle(), MPI_INFO_NULL));
  // The 1.8+ object format stores attributes over 64 KiB (the rank-major crc32 arrays grow
  // with the world size) densely; the default oldest format refuses them (measured with
  // HDF5 1.10.8: H5Acreate fails for a 160 KB attribute). Any HDF5 since 1.8 reads it.
  ZS_H5_CHECK(H5Pset_libver_bounds(access.get(), H5F_LIBVER_V18, H5F_LIBVER_LATEST));
  return Hid(ZS_H5_CHECK(H5Fcreate(path.c_str(), H5F_ACC_EXCL, H5P_DEFAULT, access.get())));
}

// This rank's slice [rank * shard, (rank + 1) * shard) of one buffer dataset, written with
// one collective MPI-IO call. Returns the error instead of throwing: every rank must still
// make the remaining collective calls, or the ranks that succeeded would wait forever.
std::string write_slice_collectively(hid_t group, const ShardBuffer& buffer, int rank, int ranks,
                                     const std::vector<std::uint32_t>& checksums) {
  const hsize_t shard = buffer.data.size(), total[1] = {shard * static_cast<hsize_t>(ranks)};
  try {
    Hid file_space(ZS_H5_CHECK(H5Screate_simple(1, total, nullptr)));
    Hid create = detail::unfilled_dataset_properties();
    Hid dataset(ZS_H5_CHECK(H5Dcreate2(group, buffer.name.c_str(), H5T_IEEE_F32LE, file_space.get(), H5P_DEFAULT,
                                       create.get(), H5P_DEFAULT)));
    detail::write_checksums(dataset.get(), checksums);
    const hsize_t start[1] = {shard * static_cast<hsize_t>(rank)}, count[1] = {std::max<hsize_t>(shard, 1)};
    Hid memory_space(ZS_H5_CHECK(H5Screate_simple(1, count, nullptr)));
    if (shard == 0) {  // nothing to write, but the collective call is still made
      ZS_H5_CHECK(H5Sselect_none(file_space.get()));
      ZS_H5_CHECK(H5Sselect_none(memory_space.get()));
    } else {
      ZS_H5_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr));
    }
    Hid transfer(ZS_H5_CHECK(H5Pcreate(H5P_DATASET_XFER)));
    ZS_H5_CHECK(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE));
    ZS_H5_CHECK(H5Dwrite(dataset.get(), H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), transfer.get(),
                         buffer.data.data()));
  } catch (const Error& e) {
    return "dataset " + buffer.name + ": " + e.what();
  }
  return "";
}

// Every rank reads its own slices back through HDF5 (a fresh, independent open of the closed
// file) and compares them with the checksums computed from memory before the write.
void read_back_own_slices(const std::string& path, const ShardContents& contents) {
  ShardFile written(path);
  std::vector<float> chunk;
  for (std::size_t u = 0; u < contents.units.size(); ++u)
    for (const ShardBuffer& buffer : contents.units[u].buffers) {
      const std::int64_t shard = static_cast<std::int64_t>(buffer.data.size());
      for (std::int64_t at = 0; at < shard; at += 4 * kChecksumBlockElements) {
        chunk.resize(static_cast<std::size_t>(std::min(shard - at, 4 * kChecksumBlockElements)));
        written.read(contents.rank, u, buffer.name, at, chunk);  // verifies every block's CRC
      }
    }
}

}  // namespace

void detail::write_shared_file(Communicator& comm, const std::string& path, const ShardContents& contents) {
  const int rank = comm.rank(), ranks = comm.size();
  // MPI-IO writes on this thread: past the file size limit they fail, not kill the rank.
  const detail::SigxfszAsError sigxfsz;
  run_on_all_ranks(comm, [&] {
    if (contents.rank != rank || contents.world_size != ranks)
      throw CheckpointError("shared checkpoint file: contents of rank " + std::to_string(contents.rank) + " of " +
                            std::to_string(contents.world_size) + " handed to rank " + std::to_string(rank) + " of " +
                            std::to_string(ranks));
    for (const UnitShard& unit : contents.units)
      for (const ShardBuffer& buffer : unit.buffers) detail::require_shard_sized(unit, buffer);
  });
  disable_hdf5_error_printing();
  const TrainingState state = training_state_of_rank_zero(comm, contents.state);
  const std::vector<std::string> rng_states = all_gather_strings(comm, contents.rng_state);
  std::vector<std::vector<std::uint32_t>> checksums;  // per unit and buffer, in write order
  for (const UnitShard& unit : contents.units)
    for (const ShardBuffer& buffer : unit.buffers) checksums.push_back(all_gather_checksums(comm, buffer.data));

  Hid file;
  run_on_all_ranks(comm, [&] { file = create_parallel_file(comm, path); });
  // A full disk must show before the collective writes: Open MPI's collective MPI-IO does not
  // pass one aggregator's write error on to the others, which then wait forever (measured with
  // a file size limit on rank 0), and HDF5 1.10 crashes at exit after a failed write. So rank
  // 0 reserves the whole file's blocks first; if that fails every rank closes the file (only
  // the superblock is pending) and throws. Where the file system cannot reserve (NFS, some
  // parallel file systems) this protection is absent: docs/checkpoint-format.md.
  run_on_all_ranks(comm, [&] {
    if (rank == 0) reserve_file_space(path, expected_file_bytes(contents, ranks));
  });
  // Metadata calls fail alike on every rank (same arguments; HDF5 caches metadata until the
  // close). Data writes and the close do I/O and can fail on one rank alone: their errors are
  // collected and agreed on after the close, which every rank reaches.
  std::string error;
  try {
    detail::write_training_state(file.get(), state, contents.identity);
    detail::write_attribute(file.get(), "world_size", std::int64_t{ranks});
    detail::write_attribute(file.get(), "first_rank", std::int64_t{0});
    detail::write_attribute(file.get(), "rank_count", std::int64_t{ranks});
    detail::write_attribute(file.get(), "rng_states", rng_states);
    Hid units(ZS_H5_CHECK(H5Gcreate2(file.get(), "units", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)));
    std::size_t next_checksums = 0;
    for (const UnitShard& unit : contents.units) {
      Hid group = detail::write_unit_group(units.get(), unit);
      // Rank 0 alone writes the table (independent I/O): it grows with the world size, and
      // every rank writing the same bytes would multiply that by the world size again.
      detail::write_fragment_table(group.get(), fragments_in_file(unit.layout, 0, ranks), rank == 0);
      for (const ShardBuffer& buffer : unit.buffers) {
        std::string failed = write_slice_collectively(group.get(), buffer, rank, ranks, checksums[next_checksums++]);
        if (error.empty() && !failed.empty()) error = "units/" + unit.name + "/" + failed;
      }
    }
  } catch (const Error& e) {
    error = e.what();
  }
  try {
    ZS_H5_CHECK(H5Fclose(file.release()));
  } catch (const Error& e) {
    if (error.empty()) error = std::string("closing the file: ") + e.what();
  }
  if (!error.empty()) error = "writing shared checkpoint file " + path + " failed: " + error;
  raise_if_any_rank_failed(comm, error);
  // On a parallel file system each node's client holds its own dirty pages: every rank syncs.
  run_on_all_ranks(comm, [&] {
    fsync_path(path, /*directory=*/false);
    read_back_own_slices(path, contents);
  });
}

}  // namespace zs::checkpoint

#else  // serial HDF5

namespace zs::checkpoint {

void detail::write_shared_file(Communicator&, const std::string& path, const ShardContents&) {
  // CheckpointConfig::validate() refuses shared_file mode in this build before a save starts.
  throw CheckpointError("cannot write " + path + ": checkpoint.mode = shared_file needs ZeroShard built against "
                        "parallel HDF5; use checkpoint.mode = per_rank");
}

}  // namespace zs::checkpoint

#endif
