// The engine's warning when compute threads x ranks on a node exceed its CPUs
// (runtime/src/engine/compute_threads.hpp): given with the remedies it names, and not given
// once the user applied one (OMP_WAIT_POLICY=passive, as OpenMP reads it: any case).
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>
#include <thread>

#include "engine/compute_threads.hpp"

namespace zs {
namespace {

// Sets an environment variable for one test and restores what was there.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
  ~ScopedEnvironment() {
    if (old_) ::setenv(name_, old_->c_str(), 1);
    else ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

int node_cpus() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

TEST(OversubscriptionWarning, NamesTheCountsAndTheRemedies) {
  ScopedEnvironment ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  ScopedEnvironment policy("OMP_WAIT_POLICY", nullptr);
  const std::string warning = oversubscription_warning(node_cpus());
  EXPECT_NE(warning.find(std::to_string(node_cpus()) + " compute threads per rank x 2 ranks"), std::string::npos)
      << warning;
  EXPECT_NE(warning.find("compute.threads = 0"), std::string::npos) << warning;
  EXPECT_NE(warning.find("OMP_WAIT_POLICY=passive"), std::string::npos) << warning;
  EXPECT_EQ(warning.rfind("zeroshard: ", 0), 0u) << "the prefix of every engine warning: " << warning;
}

TEST(OversubscriptionWarning, SilentWithinTheNodesCpusOrWithoutALauncher) {
  ScopedEnvironment policy("OMP_WAIT_POLICY", nullptr);
  {
    ScopedEnvironment ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
    EXPECT_EQ(oversubscription_warning(node_cpus()), "");
    EXPECT_EQ(oversubscription_warning(1), "");
  }
  ScopedEnvironment open_mpi("OMPI_COMM_WORLD_LOCAL_SIZE", nullptr);
  ScopedEnvironment mpich("MPI_LOCALNRANKS", nullptr);
  EXPECT_EQ(oversubscription_warning(node_cpus() * 4), "") << "no launcher variable: the rank count is unknown";
}

TEST(OversubscriptionWarning, SilentOnceWaitingThreadsSleep) {
  ScopedEnvironment ranks("OMPI_COMM_WORLD_LOCAL_SIZE", "2");
  for (const char* value : {"passive", "PASSIVE", "Passive"}) {
    ScopedEnvironment policy("OMP_WAIT_POLICY", value);
    EXPECT_EQ(oversubscription_warning(node_cpus()), "") << "OMP_WAIT_POLICY=" << value;
  }
  ScopedEnvironment active("OMP_WAIT_POLICY", "active");
  EXPECT_NE(oversubscription_warning(node_cpus()), "") << "OMP_WAIT_POLICY=active spins: still warned";
}

}  // namespace
}  // namespace zs
