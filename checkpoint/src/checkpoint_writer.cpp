#include "zeroshard/checkpoint/checkpoint_writer.hpp"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>

#include "shared_file_writer.hpp"
#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/collective_outcome.hpp"
#include "zeroshard/checkpoint/durable_file.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"
#include "zeroshard/checkpoint/index_file.hpp"
#include "zeroshard/checkpoint/shard_file.hpp"
#include "zeroshard/comm/mpi_check.hpp"
#include "zeroshard/timeline.hpp"

namespace zs::checkpoint {

struct CheckpointWriter::Job {
  std::string dir, tag, save_id;
  CheckpointConfig config;
  int rank = 0;
  bool replica = false;  // writes nothing (ShardContents::replica)
  // The files' bytes, built in memory on the training thread: this is the snapshot an async
  // save writes while training changes the engine's buffers.
  std::span<const char> shard_image, index_image;  // in the writer's arenas
  std::thread thread;
  std::atomic<bool> done{false};
  std::string error;  // written by the thread before `done`
  FileDigest shard_digest, index_digest;  // likewise: what the manifest lists

  // Step 2: the files onto disk, each read back and checked. No HDF5 and no MPI calls.
  void write() {
    timeline::Span span("checkpoint write files");
    if (replica) return;
    const std::filesystem::path staging = staging_directory(dir, tag);
    shard_digest = write_file_durably((staging / shard_file_name(rank)).string(), shard_image);
    if (rank == 0) index_digest = write_file_durably((staging / kIndexFileName).string(), index_image);
  }
};

namespace {

std::span<const char> index_image_of(const std::string& tag, CheckpointMode mode, const ShardContents& contents,
                                     ImageArena& arena) {
  std::vector<IndexUnit> units;
  for (const UnitShard& unit : contents.units) {
    IndexUnit index_unit{unit.name, unit.layout, {}};
    for (const ShardBuffer& buffer : unit.buffers) index_unit.buffers.push_back(buffer.name);
    units.push_back(std::move(index_unit));
  }
  return build_index_image(tag, contents.world_size, mode, contents.state, contents.identity, units, arena);
}

// 128 random bits as 32 hex digits, the same on every rank (rank 0's). The clock is mixed in
// for platforms whose random_device is deterministic.
std::string agreed_save_id(Communicator& comm) {
  char id[33] = {};
  if (comm.rank() == 0) {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       static_cast<unsigned>(std::chrono::high_resolution_clock::now().time_since_epoch().count())};
    std::mt19937_64 bits(seed);
    const unsigned long long high = bits(), low = bits();
    std::snprintf(id, sizeof id, "%016llx%016llx", high, low);
  }
  ZS_MPI_CHECK(MPI_Bcast(id, 32, MPI_CHAR, 0, comm.handle()));
  return std::string(id, 32);
}

// Collective, after every rank wrote its file: rank 0 writes the save's manifest into the
// staging directory (file_manifest.hpp), before the commit makes the tag visible. `mine` is
// this rank's digest: per-rank mode, of its shard file; shared-file mode, of its consecutive
// range of shared.h5, which rank 0 combines into the whole file's digest without a re-read.
void write_save_manifest(Communicator& comm, const std::string& dir, const std::string& tag, CheckpointMode mode,
                         const FileDigest& mine, const FileDigest& index) {
  const std::int64_t local[2] = {mine.bytes, static_cast<std::int64_t>(mine.crc32)};
  std::vector<std::int64_t> all(comm.rank() == 0 ? 2 * static_cast<std::size_t>(comm.size()) : 2);
  ZS_MPI_CHECK(MPI_Gather(local, 2, MPI_INT64_T, all.data(), 2, MPI_INT64_T, 0, comm.handle()));
  run_on_all_ranks(comm, [&] {
    if (comm.rank() != 0) return;
    Manifest manifest{{kIndexFileName, index}};
    FileDigest shared;
    for (int r = 0; r < comm.size(); ++r) {
      const FileDigest digest{all[2 * r], static_cast<std::uint32_t>(all[2 * r + 1])};
      if (mode == CheckpointMode::per_rank)
        manifest[shard_file_name(r)] = digest;
      else
        shared = concatenated(shared, digest);
    }
    if (mode == CheckpointMode::shared_file) manifest[kSharedFileName] = shared;
    const std::string text = manifest_text(manifest);
    write_file_durably((std::filesystem::path(staging_directory(dir, tag)) / kManifestFileName).string(),
                       std::span<const char>(text.data(), text.size()));
  });
}

// Rank `rank`'s share of the shared file's digest: bytes [size * rank / ranks, size * (rank + 1) / ranks).
FileDigest digest_of_rank_range(const std::string& path, int rank, int ranks) {
  const auto size = static_cast<std::int64_t>(std::filesystem::file_size(path));
  const std::int64_t begin = size * rank / ranks, end = size * (rank + 1) / ranks;
  return digest_of_file(path, begin, end - begin);
}

}  // namespace

CheckpointWriter::CheckpointWriter(Communicator& comm) : comm_(comm) {}

CheckpointWriter::~CheckpointWriter() {
  if (job_ && job_->thread.joinable()) job_->thread.join();
}

void CheckpointWriter::save(const std::string& dir, const std::string& tag, const ShardContents& unstamped,
                            const CheckpointConfig& config) {
  wait();
  config.validate();
  validate_tag(tag);
  // Every file of this save carries its id (readers refuse files of two saves mixed) and the
  // save it continues (retention follows that lineage).
  ShardContents contents = unstamped;
  contents.identity = {agreed_save_id(comm_), parent_save_id_};
  if (config.mode == CheckpointMode::shared_file) {
    // Every rank of the communicator writes its stretch of the one file; replicas would have to
    // sit out of the collective MPI-IO calls. Known to every rank (the config agrees).
    std::int64_t replicas = contents.replica ? 1 : 0;
    comm_.all_reduce_scalars(std::span<std::int64_t>(&replicas, 1), ScalarOp::max, "checkpoint replicas?");
    if (replicas != 0)
      throw CheckpointError("checkpoint.mode = shared_file is not supported with hybrid sharding "
                            "(zero_optimization.shard_group_size below the world size): use checkpoint.mode = per_rank");
    save_shared_file(dir, tag, contents, config);
    return;
  }
  auto job = std::make_unique<Job>();
  job->dir = dir;
  job->tag = tag;
  job->save_id = contents.identity.save_id;
  job->config = config;
  job->rank = contents.rank;
  job->replica = contents.replica;
  // Step 1 on rank 0 only (ranks may share one file system, and one rank's removal of a
  // leftover staging directory must not race another's writes); images everywhere.
  run_on_all_ranks(comm_, [&] {
    timeline::Span span("checkpoint build images");
    if (comm_.rank() == 0) prepare_staging(dir, tag);
    if (!contents.replica) job->shard_image = build_shard_image(contents, shard_arena_);
    if (comm_.rank() == 0) job->index_image = index_image_of(tag, config.mode, contents, index_arena_);
  });
  if (!config.async) {
    run_on_all_ranks(comm_, [&] { job->write(); });
    write_save_manifest(comm_, dir, tag, config.mode, job->shard_digest, job->index_digest);
    commit(dir, tag, job->save_id, config);
    return;
  }
  job_ = std::move(job);
  job_->thread = std::thread([job = job_.get()] {
    timeline::name_this_thread("checkpoint writer");
    try {
      job->write();
    } catch (const std::exception& e) {
      job->error = e.what();
    }
    job->done.store(true, std::memory_order_release);
  });
}

bool CheckpointWriter::poll() {
  if (!job_) return true;
  std::int64_t all_done = job_->done.load(std::memory_order_acquire) ? 1 : 0;
  comm_.all_reduce_scalars(std::span<std::int64_t>(&all_done, 1), ScalarOp::min, "checkpoint written?");
  if (!all_done) return false;
  const std::unique_ptr<Job> job = std::move(job_);  // done, whatever the outcome
  if (job->thread.joinable()) job->thread.join();
  raise_if_any_rank_failed(comm_, job->error);
  write_save_manifest(comm_, job->dir, job->tag, job->config.mode, job->shard_digest, job->index_digest);
  commit(job->dir, job->tag, job->save_id, job->config);
  return true;
}

void CheckpointWriter::wait() {
  if (!job_) return;
  if (job_->thread.joinable()) job_->thread.join();
  poll();
}

void CheckpointWriter::save_shared_file(const std::string& dir, const std::string& tag, const ShardContents& contents,
                                        const CheckpointConfig& config) {
  timeline::Span span("checkpoint shared file");
  run_on_all_ranks(comm_, [&] {
    if (comm_.rank() == 0) prepare_staging(dir, tag);
  });
  const std::filesystem::path staging = staging_directory(dir, tag);
  const std::string shared = (staging / kSharedFileName).string();
  detail::write_shared_file(comm_, shared, contents);
  FileDigest range, index;
  run_on_all_ranks(comm_, [&] {
    // The file was written through MPI-IO, not from one buffer: each rank reads its share of
    // it once for the manifest (one pass over the file in all).
    range = digest_of_rank_range(shared, comm_.rank(), comm_.size());
    if (comm_.rank() == 0)
      index = write_file_durably((staging / kIndexFileName).string(), index_image_of(tag, config.mode, contents, index_arena_));
  });
  write_save_manifest(comm_, dir, tag, config.mode, range, index);
  commit(dir, tag, contents.identity.save_id, config);
}

void CheckpointWriter::commit(const std::string& dir, const std::string& tag, const std::string& save_id,
                              const CheckpointConfig& config) {
  timeline::Span span("checkpoint commit");
  run_on_all_ranks(comm_, [&] {
    if (comm_.rank() == 0) commit_tag(dir, tag);
  });
  parent_save_id_ = save_id;  // committed: the next save continues this one
  run_on_all_ranks(comm_, [&] {
    if (comm_.rank() == 0) apply_retention(dir, tag, config.keep_last);
  });
}

}  // namespace zs::checkpoint
