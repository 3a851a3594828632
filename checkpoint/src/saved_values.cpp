#include "zeroshard/checkpoint/saved_values.hpp"

#include <sstream>

#include "h5_attributes.hpp"
#include "zeroshard/checkpoint/checkpoint_error.hpp"

namespace zs::checkpoint {

std::mt19937_64 parse_rng_state(const std::string& text) {
  std::mt19937_64 random;
  std::istringstream in(text);
  in >> random;
  // The whole text must be the state: a stream that failed, or words left over, is not one.
  std::string rest;
  if (!in || (in >> rest)) {
    const std::string shown = text.size() > 40 ? "'" + text.substr(0, 40) + "...' (" + std::to_string(text.size()) + " bytes)"
                                               : "'" + text + "'";
    throw CheckpointError(detail::field_problem("rng_state", shown,
                                                "a std::mt19937_64 state (312 words and an index, as operator<< writes)"));
  }
  return random;
}

bool is_optimizer_name(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

}  // namespace zs::checkpoint
