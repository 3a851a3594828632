// main() for every test binary that runs under mpirun.
#include <gtest/gtest.h>
#include <mpi.h>

#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "mpi_test.hpp"
#include "zeroshard/comm/mpi_environment.hpp"

namespace zs::testing {

namespace {
// The failure messages of the test running now on this rank.
std::string current_failures;

class FailureRecorder : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo&) override { current_failures.clear(); }
  void OnTestPartResult(const ::testing::TestPartResult& result) override {
    if (result.failed())
      current_failures += std::string(result.file_name() ? result.file_name() : "?") + ":" +
                          std::to_string(result.line_number()) + ": " + result.summary() + "\n";
  }
};
}  // namespace

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

int world_size() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

void MpiTest::TearDown() {
  const int rank = world_rank(), size = world_size();
  int failed_here = HasFailure() ? 1 : 0;
  std::vector<int> failed(size);
  MPI_Allgather(&failed_here, 1, MPI_INT, failed.data(), 1, MPI_INT, MPI_COMM_WORLD);
  // Rank 0 collects the other ranks' messages; it is the only rank that prints.
  int length = failed_here ? static_cast<int>(current_failures.size()) : 0;
  std::vector<int> lengths(size);
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  std::vector<int> offsets(size, 0);
  int total = 0;
  for (int r = 0; r < size; ++r) offsets[r] = total, total += lengths[r];
  std::string all(static_cast<std::size_t>(total), '\0');
  MPI_Gatherv(current_failures.data(), length, MPI_CHAR, all.data(), lengths.data(), offsets.data(),
              MPI_CHAR, 0, MPI_COMM_WORLD);
  std::string others;
  for (int r = 0; r < size; ++r) {
    if (!failed[r] || r == rank) continue;
    others += "rank " + std::to_string(r) + " failed";
    if (rank == 0) others += ":\n" + all.substr(offsets[r], lengths[r]);
    else others += "; ";
  }
  if (!others.empty()) ADD_FAILURE() << "this test failed on other ranks: " << others;
}

}  // namespace zs::testing

int main(int argc, char** argv) {
  try {
    zs::MpiEnvironment mpi(&argc, &argv);
    ::testing::InitGoogleTest(&argc, argv);
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    if (zs::testing::world_rank() != 0) delete listeners.Release(listeners.default_result_printer());
    listeners.Append(new zs::testing::FailureRecorder);
    int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
    // Every rank exits with the same status: nonzero if any rank saw a failure.
    MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return failed;
  } catch (const std::exception& e) {
    std::cerr << "test harness: " << e.what() << std::endl;
    MPI_Abort(MPI_COMM_WORLD, 2);
    return 2;
  }
}
