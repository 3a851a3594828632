#include "node_shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

std::string system_error(const std::string& what, const std::string& path, int error) {
  return what + " " + path + ": " + std::strerror(error);
}

std::string mib(std::int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f MiB", static_cast<double>(bytes) / (1 << 20));
  return text;
}

const std::string kFix = "enlarge it (Docker: --shm-size; a tmpfs mount's size=) or set "
                         "zero_optimization.node_shared_parameters = false";

// Rank 0's first part: a new, empty file (nothing to lose if a rank dies before the unlink).
std::string create_file(const std::string& path, std::int64_t bytes, int& fd) {
  struct statvfs fs {};
  const std::string directory = path.substr(0, path.rfind('/'));
  if (statvfs(directory.c_str(), &fs) == 0) {
    const auto available = static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
    if (available < bytes)
      return directory + " has " + mib(available) + " free, node-shared parameters need " + mib(bytes) + ": " + kFix;
  }
  fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return system_error("cannot create", path, errno);
  return {};
}

}  // namespace

NodeSharedMemory::NodeSharedMemory(Communicator& node, std::int64_t bytes, const std::string& directory)
    : bytes_(bytes) {
  // Ranks whose models lay out differently would map past the end of rank 0's file (SIGBUS).
  if (!range_across_ranks(std::span<const std::int64_t>(&bytes, 1), node)[0].agreed())
    throw InvalidArgument("zero_optimization.node_shared_parameters: the ranks of a shard group need different "
                          "amounts of shared memory (this rank: " + std::to_string(bytes) +
                          " bytes): build the same model with the same unit split on every rank");
  // Rank 0 names the file (its pid and a random tag: several engines and jobs per node never
  // collide) and tells the others.
  std::int64_t tag[2] = {static_cast<std::int64_t>(getpid()), static_cast<std::int64_t>(std::random_device{}() >> 1)};
  node.broadcast(HostBuffer{tag, 2, DType::float64}, 0);  // moved as bytes: 2 x 8 of them
  const std::string path =
      directory + "/zeroshard-" + std::to_string(tag[0]) + "-" + std::to_string(tag[1]) + ".params";
  int fd = -1;
  std::string error = node.rank() == 0 ? create_file(path, bytes, fd) : std::string();
  if (auto text = failure_on_any_rank(node, error, "node shared memory: create")) {
    if (fd >= 0) {
      close(fd);
      unlink(path.c_str());
    }
    throw InvalidArgument("zero_optimization.node_shared_parameters: " + *text);
  }
  if (node.rank() != 0) {
    fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) error = system_error("cannot open", path, errno);
  }
  // Every rank holds the file open (or failed): the name goes before any memory is reserved,
  // so a rank that dies from here on leaves nothing in the directory.
  std::optional<std::string> failure = failure_on_any_rank(node, error, "node shared memory: open");
  if (node.rank() == 0) unlink(path.c_str());
  // Rank 0 reserves the pages (zero-filled) through its descriptor: a full tmpfs is an error
  // here, not a SIGBUS at the first touch during training.
  if (!failure && node.rank() == 0) {
    if (const int reserved = posix_fallocate(fd, 0, bytes); reserved != 0)
      error = system_error("cannot reserve " + mib(bytes) + " in", path, reserved) + ": " + kFix;
  }
  if (!failure) failure = failure_on_any_rank(node, error, "node shared memory: reserve");
  if (!failure) {
    void* mapped = mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) error = system_error("cannot map " + mib(bytes) + " of", path, errno);
    else data_ = static_cast<std::byte*>(mapped);
    failure = failure_on_any_rank(node, error, "node shared memory: map");
  }
  if (fd >= 0) close(fd);  // the mapping keeps the memory
  if (failure) {
    if (data_) munmap(data_, static_cast<std::size_t>(bytes_));
    data_ = nullptr;
    throw InvalidArgument("zero_optimization.node_shared_parameters: " + *failure);
  }
}

NodeSharedMemory::~NodeSharedMemory() {
  if (data_) munmap(data_, static_cast<std::size_t>(bytes_));
}

}  // namespace zs::detail
