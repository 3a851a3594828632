#include "zeroshard/checkpoint/durable_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "file_size_signal.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"
#include "zeroshard/checkpoint/checksum.hpp"

namespace zs::checkpoint {

namespace {

constexpr std::size_t kChunk = std::size_t{64} << 20;  // bytes per write() / read() call

std::string io_failure(const std::string& path, const std::string& doing, int error) {
  return "cannot " + doing + " " + path + ": " + std::strerror(error) +
         (error == ENOSPC || error == EFBIG || error == EDQUOT
              ? " (disk full or file size limit: free space or save elsewhere)"
              : "") +
         "; the previous checkpoint is untouched";
}

[[noreturn]] void fail(const std::string& path, const std::string& doing, int error) {
  ::unlink(path.c_str());
  throw CheckpointError(io_failure(path, doing, error));
}

}  // namespace

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    const int error = errno;
    if (fd >= 0) ::close(fd);
    throw CheckpointError("cannot fsync " + path + ": " + std::strerror(error));
  }
  ::close(fd);
}

bool reserve_file_space(const std::string& path, std::int64_t bytes) {
  const detail::SigxfszAsError sigxfsz;  // past the file size limit: EFBIG, not a dead rank
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw CheckpointError(io_failure(path, "open", errno));
  int result;
  do {
    result = ::fallocate(fd, 0, 0, static_cast<off_t>(bytes));
  } while (result != 0 && errno == EINTR);
  const int error = result == 0 ? 0 : errno;
  ::close(fd);
  if (error == EOPNOTSUPP || error == ENOSYS) return false;
  if (error != 0) throw CheckpointError(io_failure(path, "reserve " + std::to_string(bytes) + " bytes for", error));
  return true;
}

FileDigest write_file_durably(const std::string& path, std::span<const char> bytes) {
  // Past the file size limit: EFBIG, "File too large", not a rank killed by SIGXFSZ (also on
  // the async writer thread).
  const detail::SigxfszAsError sigxfsz;
  const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    throw CheckpointError("cannot create " + path + ": " + std::strerror(error) +
                          "; the previous checkpoint is untouched");
  }
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, std::min(kChunk, bytes.size() - done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int error = n < 0 ? errno : ENOSPC;
      ::close(fd);
      fail(path, "write", error);
    }
    done += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    const int error = errno;
    ::close(fd);
    fail(path, "fsync", error);
  }
  if (::close(fd) != 0) fail(path, "close", errno);

  // Read back what the file system holds and compare with what was meant.
  const int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail(path, "reopen", errno);
  std::vector<char> chunk(std::min(kChunk, std::max<std::size_t>(bytes.size(), 1)));
  std::uint32_t crc = 0;
  std::size_t read_total = 0;
  for (;;) {
    const ssize_t n = ::read(in, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int error = errno;
      ::close(in);
      fail(path, "read back", error);
    }
    if (n == 0) break;
    crc = crc32_of_bytes(std::span<const char>(chunk.data(), static_cast<std::size_t>(n)), crc);
    read_total += static_cast<std::size_t>(n);
  }
  ::close(in);
  const std::uint32_t expected = crc32_of_bytes(bytes);
  if (read_total != bytes.size() || crc != expected) {
    ::unlink(path.c_str());
    throw CheckpointError("checkpoint file " + path + " did not read back as written (" + std::to_string(read_total) +
                          " of " + std::to_string(bytes.size()) + " bytes, checksum " +
                          (crc == expected ? "equal" : "different") +
                          "): the storage is failing; the previous checkpoint is untouched");
  }
  return {static_cast<std::int64_t>(read_total), crc};
}

}  // namespace zs::checkpoint
