#pragma once
// Numbers as the examples and tools print them: in metrics JSON lines and in messages.

#include <cmath>
#include <sstream>
#include <string>

namespace zs::examples {

/// A number as a user would write it, at the stream's default precision ("7.5e+09", "-1").
inline std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

/// A JSON number; JSON has no NaN or infinity, so a non-finite value (a skipped step's norm)
/// is written as null.
inline std::string json_number(double value) { return std::isfinite(value) ? number_text(value) : "null"; }

}  // namespace zs::examples
