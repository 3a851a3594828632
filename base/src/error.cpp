#include "zeroshard/error.hpp"

#include <string_view>

namespace zs {

std::string where(const std::source_location& loc) {
  std::string_view path = loc.file_name();
  // Keep messages short and stable across build trees: drop everything before the folder
  // that names a ZeroShard library.
  for (std::string_view top : {"/base/", "/comm/", "/sharding/", "/checkpoint/", "/runtime/",
                               "/examples/", "/tests/", "/bench/"}) {
    if (auto pos = path.rfind(top); pos != std::string_view::npos) {
      path.remove_prefix(pos + 1);
      break;
    }
  }
  return std::string(path) + ":" + std::to_string(loc.line());
}

}  // namespace zs
