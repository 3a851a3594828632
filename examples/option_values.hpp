#pragma once
// Numbers given on the examples' command lines, read whole or refused naming the option:
// "--epochs: 'abc' is not a whole number" rather than std::stoi's bare "stoi".

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "zeroshard/error.hpp"

namespace zs::examples {

/// `text` as an integer of type T (the whole text, in T's range). Throws InvalidArgument
/// naming `option` otherwise.
template <class T>
T whole_number(const std::string& option, const std::string& text) {
  long long value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end)
    throw InvalidArgument(option + ": '" + text + "' is not a whole number");
  if (!std::in_range<T>(value))
    throw InvalidArgument(option + ": " + text + " is out of range [" + std::to_string(std::numeric_limits<T>::min()) +
                          ", " + std::to_string(std::numeric_limits<T>::max()) + "]");
  return static_cast<T>(value);
}

/// `text` as a finite number (the whole text). Throws InvalidArgument naming `option` otherwise.
inline double finite_number(const std::string& option, const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || stop != end || !std::isfinite(value))
    throw InvalidArgument(option + ": '" + text + "' is not a finite number");
  return value;
}

}  // namespace zs::examples
