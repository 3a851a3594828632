#include "node_segment.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <utility>

#include "zeroshard/comm/flight_recorder.hpp"

namespace zs::detail {

NodeSegment::NodeSegment(MPI_Comm comm, std::size_t bytes, const char* purpose) {
  int rank = 0;
  MPI_Comm node = MPI_COMM_NULL;
  if (MPI_Comm_rank(comm, &rank) != MPI_SUCCESS ||
      MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node) != MPI_SUCCESS)
    return;
  int node_rank = 0;
  MPI_Comm_rank(node, &node_rank);
  // The file exists under its name only while it is empty: rank 0 creates it, every rank
  // opens it, rank 0 unlinks the name, and only then are the pages reserved. A rank that
  // dies at any point leaves at most an empty file in /dev/shm, never the reserved memory.
  char name[96] = {};
  if (node_rank == 0) {
    static std::atomic<unsigned> counter{0};
    std::snprintf(name, sizeof name, "/zeroshard-%s-%d-%u-%lld", purpose, static_cast<int>(getpid()),
                  counter.fetch_add(1), static_cast<long long>(monotonic_ns() % 1000000007));
    const int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) name[0] = '\0';  // tells the node: no segment
    else close(fd);
  }
  MPI_Bcast(name, sizeof name, MPI_CHAR, 0, node);
  const int fd = name[0] != '\0' ? shm_open(name, O_RDWR, 0600) : -1;
  MPI_Barrier(node);  // every rank of the node has opened it (or given up): unlink the name
  int reserved = 0;
  if (node_rank == 0 && name[0] != '\0') {
    shm_unlink(name);
    // Reserved now, not when first touched: a full tmpfs (Docker's 64 MiB /dev/shm) then
    // fails here, and every rank falls back, instead of a SIGBUS in the middle of a collective.
    reserved = fd >= 0 && ftruncate(fd, static_cast<off_t>(bytes)) == 0 &&
               posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0;
  }
  MPI_Bcast(&reserved, 1, MPI_INT, 0, node);
  if (fd >= 0) {
    if (reserved) {
      void* at = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);  // zero-filled
      if (at != MAP_FAILED) {
        data_ = at;
        bytes_ = bytes;
      }
    }
    close(fd);
  }
  MPI_Comm_free(&node);
}

NodeSegment::~NodeSegment() {
  if (data_) munmap(data_, bytes_);
}

NodeSegment::NodeSegment(NodeSegment&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

NodeSegment& NodeSegment::operator=(NodeSegment&& other) noexcept {
  if (this != &other) {
    if (data_) munmap(data_, bytes_);
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
  }
  return *this;
}

}  // namespace zs::detail
