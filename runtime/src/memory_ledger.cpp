#include "zeroshard/runtime/memory_ledger.hpp"

#include <algorithm>
#include <cstdio>

#include "zeroshard/error.hpp"

namespace zs {

std::string to_string(MemoryCategory c) {
  static constexpr const char* kNames[kMemoryCategories] = {
      "parameters (full)", "parameters (shard)", "gradients (full)", "gradients (shard)",
      "optimizer states",  "buffers",            "activations",      "communication",
      "master parameters"};
  return kNames[static_cast<std::size_t>(c)];
}

void MemoryLedger::allocate(MemoryCategory category, std::int64_t bytes) {
  if (bytes < 0) throw InvalidArgument("MemoryLedger::allocate: negative size " + std::to_string(bytes));
  auto i = static_cast<std::size_t>(category);
  current_[i] += bytes;
  high_water_[i] = std::max(high_water_[i], current_[i]);
  total_ += bytes;
  total_high_water_ = std::max(total_high_water_, total_);
}

void MemoryLedger::release(MemoryCategory category, std::int64_t bytes) {
  auto i = static_cast<std::size_t>(category);
  if (bytes < 0 || bytes > current_[i])
    throw InvalidArgument("MemoryLedger::release: releasing " + std::to_string(bytes) + " bytes of " +
                          to_string(category) + " which holds " + std::to_string(current_[i]));
  current_[i] -= bytes;
  total_ -= bytes;
}

std::int64_t MemoryLedger::current(MemoryCategory category) const {
  return current_[static_cast<std::size_t>(category)];
}

std::int64_t MemoryLedger::high_water(MemoryCategory category) const {
  return high_water_[static_cast<std::size_t>(category)];
}

std::string MemoryLedger::report() const {
  std::string text;
  char line[128];
  auto mib = [](std::int64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); };
  for (std::size_t i = 0; i < kMemoryCategories; ++i) {
    if (high_water_[i] == 0) continue;  // never used by this run (master parameters in float32)
    std::snprintf(line, sizeof line, "  %-20s %10.2f MiB (peak %10.2f MiB)\n",
                  to_string(static_cast<MemoryCategory>(i)).c_str(), mib(current_[i]), mib(high_water_[i]));
    text += line;
  }
  std::snprintf(line, sizeof line, "  %-20s %10.2f MiB (peak %10.2f MiB)\n", "total", mib(total_),
                mib(total_high_water_));
  return text + line;
}

}  // namespace zs
