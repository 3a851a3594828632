#pragma once
// Internal: one phase of a training step ("forward" of "unit 3", "optimizer step"), seen two
// ways: as this rank's activity, which the other ranks of its node read in a hang report
// (Communicator::set_activity), and, while the profiler records, as a timeline span.
// Costs a few stores when the profiler is off: no allocation, no clock read.

#include <cstring>
#include <string_view>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/timeline.hpp"

namespace zs::detail {

class Phase {
 public:
  /// `name` must be a static string; `label` (a unit's name) may be empty.
  Phase(const Communicator& comm, const char* name, std::string_view label = {}) noexcept
      : comm_(comm), span_(name, label) {
    char text[48];
    comm_.set_activity(compose(text, "", name, label));
    name_ = name;
    label_ = label;
  }
  ~Phase() {
    char text[48];
    comm_.set_activity(compose(text, "after ", name_, label_));
  }
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;

 private:
  // "<prefix><name> <label>", truncated to fit.
  static std::string_view compose(char (&text)[48], const char* prefix, const char* name, std::string_view label) {
    std::size_t n = 0;
    auto add = [&](std::string_view part) {
      const std::size_t k = std::min(part.size(), sizeof text - n);
      std::memcpy(text + n, part.data(), k);
      n += k;
    };
    add(prefix);
    add(name);
    if (!label.empty()) {
      add(" ");
      add(label);
    }
    return {text, n};
  }

  const Communicator& comm_;
  timeline::Span span_;
  const char* name_ = "";
  std::string_view label_;
};

}  // namespace zs::detail
