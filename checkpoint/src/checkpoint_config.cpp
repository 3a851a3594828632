#include "zeroshard/checkpoint/checkpoint_config.hpp"

#include "zeroshard/error.hpp"

namespace zs::checkpoint {

std::string to_string(CheckpointMode mode) {
  return mode == CheckpointMode::shared_file ? "shared_file" : "per_rank";
}

CheckpointMode parse_checkpoint_mode(const std::string& text) {
  if (text == "per_rank") return CheckpointMode::per_rank;
  if (text == "shared_file") return CheckpointMode::shared_file;
  throw InvalidArgument("checkpoint.mode = '" + text + "' is not a mode: use per_rank or shared_file");
}

bool parallel_hdf5_available() {
#ifdef ZS_HDF5_PARALLEL
  return true;
#else
  return false;
#endif
}

void CheckpointConfig::validate() const {
  if (keep_last < 0)
    throw InvalidArgument("checkpoint.keep_last = " + std::to_string(keep_last) + " must be >= 0 (0 keeps every tag)");
  if (mode != CheckpointMode::shared_file) return;
  if (!parallel_hdf5_available())
    throw InvalidArgument("checkpoint.mode = shared_file needs HDF5 built with MPI-IO, and this ZeroShard was built "
                          "against serial HDF5: use checkpoint.mode = per_rank, or rebuild against parallel HDF5 "
                          "(Debian: libhdf5-openmpi-dev, then cmake -DHDF5_PREFER_PARALLEL=ON)");
  if (async)
    throw InvalidArgument("checkpoint.async = true needs checkpoint.mode = per_rank: a shared file is written with "
                          "collective MPI-IO, which a background thread cannot join while training runs MPI "
                          "collectives; turn one of the two off");
}

}  // namespace zs::checkpoint
