#include "node_shared_memory.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "zeroshard/comm/agreement.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

namespace {

std::string system_error(const std::string& what, const std::string& path, int error) {
  return what + " " + path + ": " + std::strerror(error);
}

// Rank 0's part: a new file, its pages reserved now (so a full tmpfs is an error here, not a
// SIGBUS at the first touch during training).
std::string create_file(const std::string& path, std::int64_t bytes) {
  struct statvfs fs {};
  const std::string directory = path.substr(0, path.rfind('/'));
  if (statvfs(directory.c_str(), &fs) == 0) {
    const auto available = static_cast<std::int64_t>(fs.f_bavail) * static_cast<std::int64_t>(fs.f_frsize);
    if (available < bytes)
      return directory + " has " + std::to_string(available >> 20) + " MiB free, node-shared parameters need " +
             std::to_string(bytes >> 20) + " MiB: enlarge it (Docker: --shm-size; a tmpfs mount's size=) or set " +
             "zero_optimization.node_shared_parameters = false";
  }
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return system_error("cannot create", path, errno);
  const int reserved = posix_fallocate(fd, 0, bytes);
  close(fd);
  if (reserved != 0) {
    unlink(path.c_str());
    return system_error("cannot reserve " + std::to_string(bytes >> 20) + " MiB in", path, reserved) +
           " (enlarge the tmpfs, or set zero_optimization.node_shared_parameters = false)";
  }
  return {};
}

}  // namespace

NodeSharedMemory::NodeSharedMemory(Communicator& node, std::int64_t bytes, const std::string& directory)
    : bytes_(bytes) {
  // Rank 0 names the file (its pid and a random tag: several engines and jobs per node never
  // collide) and tells the others.
  std::int64_t tag[2] = {static_cast<std::int64_t>(getpid()), static_cast<std::int64_t>(std::random_device{}() >> 1)};
  node.broadcast(HostBuffer{tag, 2, DType::float64}, 0);  // moved as bytes: 2 x 8 of them
  const std::string path =
      directory + "/zeroshard-" + std::to_string(tag[0]) + "-" + std::to_string(tag[1]) + ".params";
  std::string error = node.rank() == 0 ? create_file(path, bytes) : std::string();
  if (auto text = failure_on_any_rank(node, error, "node shared memory: create"))
    throw InvalidArgument("zero_optimization.node_shared_parameters: " + *text);

  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    error = system_error("cannot open", path, errno);
  } else {
    void* mapped = mmap(nullptr, static_cast<std::size_t>(bytes), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mapped == MAP_FAILED) error = system_error("cannot map " + std::to_string(bytes >> 20) + " MiB of", path, errno);
    else data_ = static_cast<std::byte*>(mapped);
  }
  // Every rank has opened it (or failed): the name can go, the mappings stay.
  const std::optional<std::string> failure = failure_on_any_rank(node, error, "node shared memory: map");
  if (node.rank() == 0) unlink(path.c_str());
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
