#pragma once
// Collective checkpoint saves: synchronous, or asynchronous (written by a background thread
// while training continues, committed at a later collective call).
//
// Steps of one save (docs/checkpoint-format.md):
//   1. rank 0 creates DIR/TAG.incomplete/; every rank builds its shard file in memory (HDF5
//      core driver), rank 0 the index too (everyone learns whether all that worked);
//   2. every rank writes its file in one sequential pass, fsyncs it, reads it back and
//      compares checksums; rank 0 also writes index.h5;
//   3. when every rank reports success, rank 0 renames the directory to DIR/TAG, replaces
//      DIR/latest atomically and applies retention along the save's lineage.
// In shared-file mode (config.mode) step 2 is one collective parallel-HDF5 write of
// shared.h5 (write_shared_file), fsynced and read back by every rank; steps 1 and 3 are the same.
// Any failure raises CheckpointError on every rank and leaves DIR/latest as it was.
//
// Async: step 1 runs on the training thread (building the images is the snapshot: the time a
// step is blocked), step 2 on a background thread that makes only POSIX file calls, never
// HDF5 (not thread-safe) or MPI calls (ZeroShard asks for MPI_THREAD_SERIALIZED); step 3
// runs at the first poll() after every rank is done. The files are built in memory kept for
// the next save (ImageArena): after the first save a rank holds one more copy of its shard.

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "zeroshard/checkpoint/checkpoint_config.hpp"
#include "zeroshard/checkpoint/image_arena.hpp"
#include "zeroshard/checkpoint/shard_contents.hpp"
#include "zeroshard/comm/communicator.hpp"

namespace zs::checkpoint {

class CheckpointWriter {
 public:
  explicit CheckpointWriter(Communicator& comm);
  /// Joins a background write still running; a save that was not committed by wait() or
  /// poll() is not committed (DIR/latest keeps naming the previous checkpoint).
  ~CheckpointWriter();
  CheckpointWriter(const CheckpointWriter&) = delete;
  CheckpointWriter& operator=(const CheckpointWriter&) = delete;

  /// Collective. Waits for a pending save first. Synchronous: returns once DIR/TAG is
  /// committed. Async (config.async): returns after step 1 (the files built in memory are the
  /// snapshot; `contents` may change right after). The files get a fresh save id and, as
  /// parent, the id of the last save this writer committed or of the checkpoint named to
  /// continue_from() since (contents.identity is replaced).
  /// Retention (config.keep_last) then follows that lineage (apply_retention).
  void save(const std::string& dir, const std::string& tag, const ShardContents& contents,
            const CheckpointConfig& config);
  /// Later saves continue the checkpoint whose save id this is (CheckpointReader::identity()
  /// of a checkpoint just loaded; empty: of none). Engine::load calls it on every rank.
  void continue_from(const std::string& save_id) { parent_save_id_ = save_id; }
  /// Collective, cheap (one small all-reduce): commits a pending async save if every rank
  /// has finished writing it. True if nothing is pending any more.
  bool poll();
  /// Collective: blocks until a pending async save is written and committed.
  void wait();
  bool pending() const { return job_ != nullptr; }

 private:
  struct Job;
  // Shared-file mode: one collective write (always synchronous), then the index and commit.
  void save_shared_file(const std::string& dir, const std::string& tag, const ShardContents& contents,
                        const CheckpointConfig& config);
  void commit(const std::string& dir, const std::string& tag, const std::string& save_id,
              const CheckpointConfig& config);

  Communicator& comm_;
  std::unique_ptr<Job> job_;
  std::string parent_save_id_;  // what the next save continues (the same on every rank)
  // Reused by every save (a pending one finishes before the next builds its files).
  ImageArena shard_arena_, index_arena_;
};

}  // namespace zs::checkpoint
