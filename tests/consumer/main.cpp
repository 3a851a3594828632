// Links against the installed library and checks one all-reduce and one layout end to end.
#include <cstdio>
#include <vector>

#include <zeroshard/comm/communicator.hpp>
#include <zeroshard/comm/mpi_environment.hpp>
#include <zeroshard/sharding/flat_layout.hpp>

int main(int argc, char** argv) {
  zs::MpiEnvironment mpi(&argc, &argv);
  zs::Communicator comm;
  std::vector<float> data(10, 1.0f);
  comm.all_reduce(std::span<float>(data)).wait();
  const auto layout = zs::sharding::FlatLayout::build({{"w", {3, 3}}}, comm.size());
  const bool ok = data[9] == static_cast<float>(comm.size()) && layout.padded_numel() % comm.size() == 0;
  if (comm.rank() == 0) std::printf("consumer: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
