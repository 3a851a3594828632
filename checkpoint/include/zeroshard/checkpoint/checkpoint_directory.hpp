#pragma once
// The checkpoint directory: DIR/TAG/ per checkpoint, DIR/latest naming the last complete one.
//
// A save writes into DIR/TAG.incomplete/; only when every rank has written and verified its
// shard is that directory renamed to DIR/TAG and DIR/latest replaced (write latest.tmp, fsync,
// rename, fsync the directory). A save that dies half-way leaves DIR/TAG.incomplete behind and
// DIR/latest still naming the previous, intact checkpoint.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "zeroshard/checkpoint/index_file.hpp"

namespace zs::checkpoint {

/// Throws InvalidArgument naming the problem: empty, contains '/', starts with '.', is
/// "latest", or ends in ".incomplete".
void validate_tag(const std::string& tag);
std::string tag_directory(const std::string& dir, const std::string& tag);
std::string staging_directory(const std::string& dir, const std::string& tag);

/// Creates DIR (with parents) and an empty DIR/TAG.incomplete (removing a leftover one).
/// Throws CheckpointError naming the directory that cannot be created.
void prepare_staging(const std::string& dir, const std::string& tag);
/// Renames DIR/TAG.incomplete to DIR/TAG, then points DIR/latest at it atomically (write
/// latest.tmp, fsync, rename, fsync the directory). An older DIR/TAG (a tag saved again) is
/// swapped with the new one in one atomic exchange (renameat2 RENAME_EXCHANGE) and removed
/// after latest is written: at every instant DIR/latest names a complete checkpoint. Where the
/// file system cannot exchange (NFS) the old one is moved to DIR/.TAG.replaced first, and a
/// death before the new one is in place is repaired by resolve_tag. Throws CheckpointError.
/// docs/checkpoint-format.md, "Commit protocol".
void commit_tag(const std::string& dir, const std::string& tag);

/// The steps of commit_tag, for tests that simulate a death at each (detail::set_commit_step_hook).
enum class CommitStep { begin, moved_aside, in_place, latest_written, latest_renamed, done };
namespace detail {
/// Test hook: called by commit_tag as it reaches each step (a hook that throws or _exit()s
/// there simulates a death). Empty: none. Not thread-safe; tests only.
void set_commit_step_hook(std::function<void(CommitStep)> hook);
/// Test knob: commit_tag behaves as on a file system without RENAME_EXCHANGE (two renames).
void force_two_rename_commit(bool force);
}  // namespace detail

/// `tag` itself if not empty, else the tag DIR/latest names. Throws CheckpointError if
/// there is no DIR/latest, or the tag's directory does not exist. Where a commit without
/// atomic exchange died with DIR/TAG moved to DIR/.TAG.replaced, renames it back first.
std::string resolve_tag(const std::string& dir, const std::string& tag);

struct TagEntry {
  std::string tag;
  bool complete = false;       // has a readable index (not a *.incomplete directory)
  bool is_latest = false;
  /// Complete, with a save id, as is the tag `latest` names, but neither that tag nor a save it
  /// continues: a branch abandoned by a rollback, or another run's save. Retention leaves it.
  bool off_latest_lineage = false;
  IndexSummary summary;        // when complete
  std::int64_t bytes = 0;      // on disk
  std::string problem;         // why it is not complete
};
/// Every tag directory under DIR, oldest step first.
std::vector<TagEntry> list_tags(const std::string& dir);

/// `tag` and the saves it continues, newest first (save order), as far as `tags` holds them:
/// follows parent_save_id to save_id among complete tags whose index names the directory's
/// own tag (a copied or renamed tag directory is never part of a lineage). Empty if `tag` is
/// not such a tag or has no save id.
std::vector<std::string> lineage(const std::vector<TagEntry>& tags, const std::string& tag);

/// Retention after a save of `newest` with keep_last = K (0 keeps everything): of newest's
/// lineage (the run that writes: its saves and those it continues, back through restarts),
/// the newest K in save order stay and the older ones are deleted, never the tag DIR/latest
/// names. Tags off that lineage are never deleted: an abandoned branch (saves after the
/// checkpoint a run rolled back to), another run's saves, checkpoints without a save id.
/// docs/checkpoint-format.md, "Retention".
void apply_retention(const std::string& dir, const std::string& newest, int keep_last);

}  // namespace zs::checkpoint
