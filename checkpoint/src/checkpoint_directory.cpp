#include "zeroshard/checkpoint/checkpoint_directory.hpp"
#include "zeroshard/checkpoint/file_manifest.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "file_size_signal.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/durable_file.hpp"
#include "zeroshard/error.hpp"

namespace zs::checkpoint {

namespace fs = std::filesystem;

namespace {

constexpr const char* kStagingSuffix = ".incomplete";

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::int64_t bytes_under(const fs::path& path) {
  std::int64_t bytes = 0;
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(path, ec))
    if (entry.is_regular_file(ec)) bytes += static_cast<std::int64_t>(entry.file_size(ec));
  return bytes;
}

std::string read_latest(const std::string& dir) {
  std::ifstream in(fs::path(dir) / "latest");
  std::string tag;
  if (!in || !std::getline(in, tag) || tag.empty()) return "";
  return tag;
}

}  // namespace

void validate_tag(const std::string& tag) {
  if (tag.empty() || tag.find('/') != std::string::npos || tag.front() == '.' || tag == "latest" ||
      ends_with(tag, kStagingSuffix) || ends_with(tag, ".tmp"))
    throw InvalidArgument("checkpoint tag '" + tag + "' is not usable: a tag is a plain directory name (no '/', "
                          "not starting with '.', not 'latest', not ending in .incomplete or .tmp), e.g. step_1000");
}

std::string tag_directory(const std::string& dir, const std::string& tag) { return (fs::path(dir) / tag).string(); }

std::string staging_directory(const std::string& dir, const std::string& tag) {
  return (fs::path(dir) / (tag + kStagingSuffix)).string();
}

void prepare_staging(const std::string& dir, const std::string& tag) {
  validate_tag(tag);
  const std::string staging = staging_directory(dir, tag);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw CheckpointError("cannot create checkpoint directory " + dir + ": " + ec.message() + ": choose a writable directory");
  fs::remove_all(staging, ec);
  if (!ec) fs::create_directory(staging, ec);
  if (ec)
    throw CheckpointError("cannot create " + staging + ": " + ec.message() +
                          ": the checkpoint directory must be writable by every rank");
  // Creating a directory is not proof of being able to write files in it (read-only bind
  // mounts, quotas): probe once so the error names the directory, not a shard.
  const std::string probe = (fs::path(staging) / ".write_probe").string();
  const int fd = ::open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0)
    throw CheckpointError("cannot write files in " + staging + ": " + std::strerror(errno) +
                          ": the checkpoint directory must be writable by every rank");
  ::close(fd);
  fs::remove(probe, ec);
}

namespace detail {

namespace {
std::function<void(CommitStep)>& commit_step_hook() {
  static std::function<void(CommitStep)> hook;
  return hook;
}
}  // namespace

void set_commit_step_hook(std::function<void(CommitStep)> hook) { commit_step_hook() = std::move(hook); }

namespace {
bool two_renames_forced = false;
}  // namespace

void force_two_rename_commit(bool force) { two_renames_forced = force; }

}  // namespace detail

namespace {

void reached(CommitStep step) {
  if (detail::commit_step_hook()) detail::commit_step_hook()(step);
}

// Swaps two directory entries in one step (Linux renameat2 RENAME_EXCHANGE: ext4, xfs, btrfs,
// tmpfs, overlayfs). False where the file system cannot (NFS, some FUSE): errno says why.
bool exchange(const fs::path& a, const fs::path& b) {
  if (detail::two_renames_forced) {
    errno = EINVAL;  // as a file system without RENAME_EXCHANGE answers
    return false;
  }
  return ::renameat2(AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE) == 0;
}

}  // namespace

void commit_tag(const std::string& dir, const std::string& tag) {
  const detail::SigxfszAsError sigxfsz;  // latest.tmp, written below
  const fs::path final_path = tag_directory(dir, tag), staging = staging_directory(dir, tag);
  const fs::path replaced = fs::path(dir) / ("." + tag + ".replaced");
  std::error_code ec;
  if (!fs::exists(final_path) && fs::is_directory(replaced))
    fs::rename(replaced, final_path, ec);  // an earlier two-rename commit died half-way: restore
  else
    fs::remove_all(replaced, ec);
  reached(CommitStep::begin);
  // At every instant DIR/latest names a complete checkpoint: DIR/TAG is never missing while
  // latest may name it. A new tag is renamed into place; a tag saved again (the final save
  // reusing the last periodic save's tag) is swapped with its new contents in one atomic
  // exchange, after which the staging name holds the old checkpoint until it is removed.
  fs::path old_contents;  // where the replaced checkpoint is, to remove once latest is written
  if (!fs::exists(final_path)) {
    fs::rename(staging, final_path, ec);
    if (ec) throw CheckpointError("cannot rename " + staging.string() + " to " + final_path.string() + ": " + ec.message());
  } else if (exchange(staging, final_path)) {
    old_contents = staging;
  } else if (errno == EINVAL || errno == ENOSYS || errno == ENOTSUP) {
    // No atomic exchange here: two renames, with a window in which DIR/TAG is missing
    // (docs/checkpoint-format.md, "Commit protocol": resolve_tag then reads DIR/.TAG.replaced).
    fs::rename(final_path, replaced, ec);
    if (ec) throw CheckpointError("cannot move the older " + final_path.string() + " aside: " + ec.message());
    reached(CommitStep::moved_aside);
    fs::rename(staging, final_path, ec);
    if (ec) throw CheckpointError("cannot rename " + staging.string() + " to " + final_path.string() + ": " + ec.message());
    old_contents = replaced;
  } else {
    throw CheckpointError("cannot swap " + staging.string() + " into " + final_path.string() + ": " + std::strerror(errno));
  }
  reached(CommitStep::in_place);
  fsync_path(dir, true);
  const fs::path temporary = fs::path(dir) / "latest.tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << tag << '\n';
    out.flush();
    if (!out) throw CheckpointError("cannot write " + temporary.string() + ": check free space and permissions");
  }
  fsync_path(temporary.string(), false);
  reached(CommitStep::latest_written);
  fs::rename(temporary, fs::path(dir) / "latest", ec);
  if (ec) throw CheckpointError("cannot replace " + (fs::path(dir) / "latest").string() + ": " + ec.message());
  fsync_path(dir, true);
  reached(CommitStep::latest_renamed);
  if (!old_contents.empty()) fs::remove_all(old_contents, ec);
  reached(CommitStep::done);
}

std::string resolve_tag(const std::string& dir, const std::string& tag) {
  std::string chosen = tag;
  if (chosen.empty()) {
    chosen = read_latest(dir);
    if (chosen.empty())
      throw CheckpointError("no checkpoint to load: " + (fs::path(dir) / "latest").string() +
                            " does not exist or is empty (nothing was saved there yet?); name a tag explicitly");
  }
  if (tag.empty()) {
    // What latest says is a file's content, not the user's argument: a damaged latest is a
    // damaged checkpoint directory (CheckpointError), not a usage error.
    try {
      validate_tag(chosen);
    } catch (const InvalidArgument& e) {
      throw CheckpointError((fs::path(dir) / "latest").string() + " names '" +
                            (chosen.size() > 64 ? chosen.substr(0, 64) + "..." : chosen) +
                            "', not a tag (damaged or edited?): " + e.what() +
                            "; list the tags with `zeroshard-ckpt list " + dir + "` and name one, or rewrite latest");
    }
  }
  validate_tag(chosen);
  if (!fs::is_directory(tag_directory(dir, chosen)) && fs::is_directory(fs::path(dir) / ("." + chosen + ".replaced"))) {
    // Only on file systems without an atomic exchange: a save of the same tag died between
    // moving the old checkpoint aside and renaming the new one in. Put the old one back.
    std::error_code ec;
    fs::rename(fs::path(dir) / ("." + chosen + ".replaced"), tag_directory(dir, chosen), ec);
  }
  if (!fs::is_directory(tag_directory(dir, chosen)))
    throw CheckpointError("checkpoint tag '" + chosen + "' does not exist: " + tag_directory(dir, chosen) +
                          " is missing" + (tag.empty() ? " although " + dir + "/latest names it" : std::string()) +
                          "; list the tags with `zeroshard-ckpt list " + dir + "`");
  return chosen;
}

std::vector<TagEntry> list_tags(const std::string& dir) {
  std::vector<TagEntry> tags;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw CheckpointError("checkpoint directory " + dir + " does not exist");
  const std::string latest = read_latest(dir);
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_directory() || entry.path().filename().string().front() == '.') continue;
    TagEntry tag;
    tag.tag = entry.path().filename().string();
    tag.bytes = bytes_under(entry.path());
    tag.is_latest = tag.tag == latest;
    if (ends_with(tag.tag, kStagingSuffix)) {
      tag.problem = "an unfinished save";
    } else {
      try {
        // The index is checked against the manifest before HDF5 opens it: list_tags also runs
        // after every save with retention, over tags that may have been damaged since.
        TagFiles checked(entry.path().string());
        checked.require_intact(kIndexFileName);
        tag.summary = read_index_summary((entry.path() / kIndexFileName).string());
        checked.require_matches_index(tag.summary);
        tag.complete = true;
      } catch (const Error& e) {
        tag.problem = e.what();
      }
    }
    tags.push_back(std::move(tag));
  }
  std::sort(tags.begin(), tags.end(), [](const TagEntry& a, const TagEntry& b) {
    if (a.complete != b.complete) return a.complete;
    return std::tie(a.summary.state.step, a.tag) < std::tie(b.summary.state.step, b.tag);
  });
  if (!latest.empty()) {
    const std::vector<std::string> history = lineage(tags, latest);
    if (!history.empty())
      for (TagEntry& t : tags)
        t.off_latest_lineage = t.complete && !t.summary.identity.save_id.empty() &&
                               std::find(history.begin(), history.end(), t.tag) == history.end();
  }
  return tags;
}

std::vector<std::string> lineage(const std::vector<TagEntry>& tags, const std::string& tag) {
  std::map<std::string, const TagEntry*> by_id;
  for (const TagEntry& t : tags)
    if (t.complete && !t.summary.identity.save_id.empty() && t.summary.tag == t.tag)
      by_id.emplace(t.summary.identity.save_id, &t);
  std::vector<std::string> chain;
  const TagEntry* at = nullptr;
  for (const TagEntry& t : tags)
    if (t.tag == tag && t.complete && !t.summary.identity.save_id.empty() && t.summary.tag == t.tag) at = &t;
  std::set<std::string> seen;  // a cycle cannot be written, but files can be edited
  while (at && seen.insert(at->summary.identity.save_id).second) {
    chain.push_back(at->tag);
    const auto parent = by_id.find(at->summary.identity.parent_save_id);
    at = parent == by_id.end() ? nullptr : parent->second;
  }
  return chain;
}

void apply_retention(const std::string& dir, const std::string& newest, int keep_last) {
  if (keep_last <= 0) return;
  const std::vector<TagEntry> tags = list_tags(dir);
  const std::vector<std::string> chain = lineage(tags, newest);
  for (std::size_t i = static_cast<std::size_t>(keep_last); i < chain.size(); ++i) {
    const auto entry = std::find_if(tags.begin(), tags.end(), [&](const TagEntry& t) { return t.tag == chain[i]; });
    if (entry->is_latest) continue;
    std::error_code ec;
    fs::remove_all(tag_directory(dir, chain[i]), ec);
    if (ec) throw CheckpointError("cannot delete old checkpoint " + tag_directory(dir, chain[i]) + ": " + ec.message());
  }
}

}  // namespace zs::checkpoint
