#pragma once
// A fresh directory under /tmp that every rank of MPI_COMM_WORLD shares (rank 0 names it),
// removed by rank 0 after a barrier. Collective: construction and destruction.

#include <mpi.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "mpi_test.hpp"

namespace zs::testing {

class SharedTempDir {
 public:
  SharedTempDir() {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    std::string name;
    if (rank == 0) {
      char pattern[] = "/tmp/zs_test_XXXXXX";
      name = mkdtemp(pattern);
    }
    long long length = static_cast<long long>(name.size());
    MPI_Bcast(&length, 1, MPI_LONG_LONG, 0, MPI_COMM_WORLD);
    name.resize(static_cast<std::size_t>(length));
    MPI_Bcast(name.data(), static_cast<int>(length), MPI_CHAR, 0, MPI_COMM_WORLD);
    path_ = name;
  }
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank != 0) return;
    std::error_code ignored;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, ignored);
    std::filesystem::remove_all(path_, ignored);
  }
  SharedTempDir(const SharedTempDir&) = delete;
  SharedTempDir& operator=(const SharedTempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

/// A multi-rank test fixture with a fresh shared directory `dir_` per test, removed after it.
class SharedTempDirTest : public MpiTest {
 protected:
  void SetUp() override {
    temp_ = std::make_unique<SharedTempDir>();
    dir_ = temp_->path();
  }
  void TearDown() override {
    temp_.reset();
    MpiTest::TearDown();
  }
  std::unique_ptr<SharedTempDir> temp_;
  std::string dir_;
};

}  // namespace zs::testing
