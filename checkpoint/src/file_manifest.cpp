#include "zeroshard/checkpoint/file_manifest.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checksum.hpp"
#include "zeroshard/checkpoint/durable_file.hpp"

namespace zs::checkpoint {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kReadChunk = std::size_t{16} << 20;  // bytes per read(): large sequential reads
constexpr std::int64_t kMaxManifestBytes = std::int64_t{1} << 30;
constexpr const char* kHeader =
    "# ZeroShard checkpoint manifest 1: CRC-32 (zlib's, as Python's zlib.crc32), size in bytes, file";

std::string how_to_recover(const std::string& tag_dir) {
  const fs::path dir = fs::path(tag_dir).parent_path();
  return "Load another checkpoint (the previous one `latest` named, or any tag `zeroshard-ckpt list " + dir.string() +
         "` shows), or restore the file from an intact copy of the same save";
}

}  // namespace

FileDigest digest_of_file(const std::string& path, std::int64_t offset, std::int64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CheckpointError("cannot open checkpoint file " + path + ": " + std::strerror(errno));
  // The whole file is read once, front to back: tell the kernel so it reads ahead.
  ::posix_fadvise(fd, offset, bytes < 0 ? 0 : bytes, POSIX_FADV_SEQUENTIAL);
  std::vector<char> chunk(kReadChunk);
  FileDigest digest;
  std::int64_t at = offset;
  while (bytes < 0 || digest.bytes < bytes) {
    const std::size_t want =
        bytes < 0 ? chunk.size() : static_cast<std::size_t>(std::min<std::int64_t>(chunk.size(), bytes - digest.bytes));
    const ssize_t n = ::pread(fd, chunk.data(), want, static_cast<off_t>(at));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(fd);
      throw CheckpointError("cannot read checkpoint file " + path + ": " + std::strerror(error));
    }
    if (n == 0) break;
    digest.crc32 = crc32_of_bytes(std::span<const char>(chunk.data(), static_cast<std::size_t>(n)), digest.crc32);
    digest.bytes += n;
    at += n;
  }
  ::close(fd);
  if (bytes >= 0 && digest.bytes != bytes)
    throw CheckpointError("checkpoint file " + path + " ends at byte " + std::to_string(offset + digest.bytes) +
                          ", before byte " + std::to_string(offset + bytes) + " (truncated while being read?)");
  return digest;
}

FileDigest concatenated(const FileDigest& first, const FileDigest& second) {
  return {first.bytes + second.bytes,
          static_cast<std::uint32_t>(crc32_combine(first.crc32, second.crc32, static_cast<z_off_t>(second.bytes)))};
}

std::string crc32_text(std::uint32_t crc) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", crc);
  return text;
}

std::string manifest_text(const Manifest& manifest) {
  std::string text = std::string(kHeader) + "\n";
  for (const auto& [name, digest] : manifest) {
    char crc[9];
    std::snprintf(crc, sizeof crc, "%08x", digest.crc32);
    text += std::string(crc) + " " + std::to_string(digest.bytes) + " " + name + "\n";
  }
  return text;
}

Manifest parse_manifest(const std::string& text, const std::string& path) {
  Manifest manifest;
  std::size_t at = 0;
  int line_number = 0;
  auto refuse = [&](const std::string& line, const std::string& problem) {
    throw CheckpointError("checkpoint manifest " + path + ", line " + std::to_string(line_number) + " ('" +
                          (line.size() > 80 ? line.substr(0, 80) + "..." : line) + "'): " + problem +
                          " (damaged or edited?). " + how_to_recover(fs::path(path).parent_path().string()));
  };
  while (at < text.size()) {
    const std::size_t end = text.find('\n', at);
    if (end == std::string::npos) {
      ++line_number;
      refuse(text.substr(at), "the last line does not end with a newline (truncated?)");
    }
    const std::string line = text.substr(at, end - at);
    at = end + 1;
    if (++line_number == 1) {
      if (line != kHeader) refuse(line, "expected the header '" + std::string(kHeader) + "'");
      continue;
    }
    // "%08x %d name": exactly three fields separated by single spaces.
    const std::size_t space1 = line.find(' '), space2 = space1 == std::string::npos ? space1 : line.find(' ', space1 + 1);
    if (space2 == std::string::npos) refuse(line, "expected 'CRC32 BYTES FILE'");
    const std::string crc = line.substr(0, space1), size = line.substr(space1 + 1, space2 - space1 - 1),
                      name = line.substr(space2 + 1);
    FileDigest digest;
    const bool crc_ok = crc.size() == 8 && std::all_of(crc.begin(), crc.end(), [](char c) {
                          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                        }) && std::from_chars(crc.data(), crc.data() + 8, digest.crc32, 16).ec == std::errc();
    if (!crc_ok) refuse(line, "the CRC-32 '" + crc + "' is not 8 lowercase hex digits");
    const auto parsed = std::from_chars(size.data(), size.data() + size.size(), digest.bytes);
    if (size.empty() || size.size() > 19 || size.front() == '-' || parsed.ec != std::errc() ||
        parsed.ptr != size.data() + size.size())
      refuse(line, "the size '" + size + "' is not a byte count in [0, 2^63-1]");
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
        name.find('\0') != std::string::npos || name.find(' ') != std::string::npos)
      refuse(line, "'" + name + "' is not a file of the tag directory");
    if (!manifest.emplace(name, digest).second) refuse(line, "'" + name + "' is listed twice");
  }
  if (line_number == 0) refuse("", "the manifest is empty");
  return manifest;
}

std::optional<Manifest> read_manifest(const std::string& tag_dir) {
  const std::string path = (fs::path(tag_dir) / kManifestFileName).string();
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0) {
    if (errno == ENOENT) return std::nullopt;
    throw CheckpointError("cannot read checkpoint manifest " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(info.st_mode))
    throw CheckpointError("checkpoint manifest " + path + " is not a regular file. " + how_to_recover(tag_dir));
  if (info.st_size > kMaxManifestBytes)
    throw CheckpointError("checkpoint manifest " + path + " is " + std::to_string(info.st_size) +
                          " bytes, more than a manifest of any world size (1 GiB): damaged or not a manifest. " +
                          how_to_recover(tag_dir));
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw CheckpointError("cannot open checkpoint manifest " + path + ": " + std::strerror(errno));
  std::string text(static_cast<std::size_t>(info.st_size), '\0');
  std::size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::read(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  ::close(fd);
  text.resize(done);
  return parse_manifest(text, path);
}

Manifest manifest_of_files(const std::string& tag_dir, const std::vector<std::string>& names) {
  Manifest manifest;
  for (const std::string& name : names) manifest[name] = digest_of_file((fs::path(tag_dir) / name).string());
  return manifest;
}

void write_manifest(const std::string& tag_dir, const Manifest& manifest) {
  const std::string path = (fs::path(tag_dir) / kManifestFileName).string(), temporary = path + ".tmp";
  std::error_code ec;
  fs::remove(temporary, ec);
  const std::string text = manifest_text(manifest);
  write_file_durably(temporary, std::span<const char>(text.data(), text.size()));
  fs::rename(temporary, path, ec);
  if (ec) throw CheckpointError("cannot rename " + temporary + " to " + path + ": " + ec.message());
  fsync_path(tag_dir, /*directory=*/true);
}

TagFiles::TagFiles(std::string tag_dir) : tag_dir_(std::move(tag_dir)), manifest_(read_manifest(tag_dir_)) {}

void TagFiles::require_intact(const std::string& name) {
  if (!manifest_ || std::find(verified_.begin(), verified_.end(), name) != verified_.end()) return;
  const std::string path = (fs::path(tag_dir_) / name).string();
  const std::string manifest_path = (fs::path(tag_dir_) / kManifestFileName).string();
  const auto expected = manifest_->find(name);
  if (expected == manifest_->end())
    throw CheckpointError("checkpoint file " + path + " is not listed in " + manifest_path +
                          " (the manifest belongs to another save, or was edited): it was not opened. " +
                          how_to_recover(tag_dir_));
  struct stat info {};
  const bool present = ::stat(path.c_str(), &info) == 0;
  if (!present || !S_ISREG(info.st_mode))
    throw CheckpointError("checkpoint file " + path + (present ? " is not a regular file" : " is missing") +
                          ", although " + manifest_path + " lists it (" + std::to_string(expected->second.bytes) +
                          " bytes): the checkpoint is incomplete. " + how_to_recover(tag_dir_));
  if (info.st_size != expected->second.bytes)
    throw CheckpointError("checkpoint file " + path + " is corrupt: it is " + std::to_string(info.st_size) +
                          " bytes, " + manifest_path + " says " + std::to_string(expected->second.bytes) +
                          " (truncated, or written to after the save); it was not opened. " + how_to_recover(tag_dir_));
  const FileDigest found = digest_of_file(path);
  if (found != expected->second)
    throw CheckpointError("checkpoint file " + path + " is corrupt: checksum mismatch, its CRC-32 is " +
                          crc32_text(found.crc32) + " (" + std::to_string(found.bytes) + " bytes), " + manifest_path +
                          " expects " + crc32_text(expected->second.crc32) +
                          " (bytes changed after the save: a disk, copy or transfer error, or an edit); it was not "
                          "opened. " + how_to_recover(tag_dir_));
  verified_.push_back(name);
}

void TagFiles::require_matches_index(const IndexSummary& index) const {
  const std::string manifest_path = (fs::path(tag_dir_) / kManifestFileName).string();
  if (!manifest_) {
    if (index.wrote_manifest)
      throw CheckpointError("checkpoint manifest " + manifest_path + " is missing, but " +
                            (fs::path(tag_dir_) / kIndexFileName).string() +
                            " says its save wrote one (deleted?): the data files cannot be checked before they are "
                            "opened. " + how_to_recover(tag_dir_));
    return;
  }
  std::vector<std::string> expected{kIndexFileName};
  for (const std::string& name : index.shard_files)
    if (std::find(expected.begin(), expected.end(), name) == expected.end()) expected.push_back(name);
  for (const std::string& name : expected)
    if (!manifest_->count(name))
      throw CheckpointError("checkpoint manifest " + manifest_path + " does not list " + name +
                            ", a file of the save (the manifest belongs to another save, or was edited). " +
                            how_to_recover(tag_dir_));
  for (const auto& [name, digest] : *manifest_)
    if (std::find(expected.begin(), expected.end(), name) == expected.end())
      throw CheckpointError("checkpoint manifest " + manifest_path + " lists " + name +
                            ", which is not a file of the save its index describes (the manifest belongs to another "
                            "save, or was edited). " + how_to_recover(tag_dir_));
}

std::string TagFiles::unchecked_warning() const {
  if (manifest_) return "";
  return "checkpoint " + tag_dir_ + " has no " + kManifestFileName +
         " (saved by a ZeroShard from before manifests): its files are opened without the whole-file check, and a "
         "corrupted file may crash HDF5 instead of being refused. Run `zeroshard-ckpt seal " +
         fs::path(tag_dir_).parent_path().string() + " " + fs::path(tag_dir_).filename().string() +
         "` once to verify it and add one";
}

}  // namespace zs::checkpoint
