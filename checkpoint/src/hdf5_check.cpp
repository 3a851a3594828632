#include "zeroshard/checkpoint/hdf5_check.hpp"

#include <unistd.h>

namespace zs {

void checkpoint::disable_hdf5_error_printing() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

namespace detail {

namespace {
herr_t append_frame(unsigned depth, const H5E_error2_t* frame, void* text) {
  auto& message = *static_cast<std::string*>(text);
  message += "\n    #" + std::to_string(depth) + " " + (frame->func_name ? frame->func_name : "?") + ": " +
             (frame->desc ? frame->desc : "");
  return 0;
}

std::string host_name() {
  char host[256] = "unknown-host";
  gethostname(host, sizeof host - 1);
  return host;
}
}  // namespace

void throw_hdf5_error(const char* call, const std::source_location& loc) {
  std::string message = std::string(call) + " failed at " + where(loc) + " on " + host_name() + "; HDF5 says:";
  const std::size_t before = message.size();
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, append_frame, &message);
  if (message.size() == before) message += " (no error stack)";
  H5Eclear2(H5E_DEFAULT);
  throw Hdf5Error(message);
}

}  // namespace detail
}  // namespace zs
