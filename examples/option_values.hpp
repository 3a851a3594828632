#pragma once
// The examples' command lines: options as "--name value" or "--name=value", "--KEY=VALUE"
// configuration overrides, and numbers read whole or refused naming the option
// ("--epochs: 'abc' is not a whole number" rather than std::stoi's bare "stoi").

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>

#include "zeroshard/error.hpp"

namespace zs::examples {

/// Walks argv[1..argc): `for (CommandLine args(argc, argv); args.next();)`, then name(),
/// value() (consumes the next argument unless written "--name=value"), or
/// configuration_override() for "--KEY=VALUE" of a configuration key.
class CommandLine {
 public:
  CommandLine(int argc, char** argv) : argc_(argc), argv_(argv) {}
  bool next() {
    if (++index_ >= argc_) return false;
    arg_ = argv_[index_];
    return true;
  }
  /// The option's name: the argument up to any '='.
  std::string name() const { return arg_.substr(0, arg_.find('=')); }
  /// The option's value; throws InvalidArgument if the command line ends without one.
  std::string value() {
    const auto equals = arg_.find('=');
    if (equals != std::string::npos) return arg_.substr(equals + 1);
    if (index_ + 1 >= argc_) throw InvalidArgument(arg_ + " needs a value (see --help)");
    return argv_[++index_];
  }
  /// "KEY=VALUE" for an argument "--KEY=VALUE"; throws InvalidArgument naming any other
  /// argument (an option this program does not have).
  std::string configuration_override() const {
    if (arg_.rfind("--", 0) != 0 || arg_.find('=') == std::string::npos)
      throw InvalidArgument("unknown argument '" + arg_ + "' (see --help)");
    return arg_.substr(2);
  }

 private:
  int argc_;
  char** argv_;
  int index_ = 0;
  std::string arg_;
};

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
