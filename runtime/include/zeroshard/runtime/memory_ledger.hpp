#pragma once
// Bytes held per category, with high-water marks: what a rank reports as its memory use.
// Owners record allocations and releases of long-lived buffers here (not every temporary), so
// the report shows model-state memory per ZeRO stage next to the formula.

#include <array>
#include <cstdint>
#include <string>

namespace zs {

enum class MemoryCategory : std::uint8_t {
  parameters_full,
  parameters_shard,
  gradients_full,
  gradients_shard,
  optimizer_states,
  buffers,
  activations,
  communication,
  master_parameters,  // mixed precision: the float32 master weights (whole at stage 0, else the shard)
};
inline constexpr std::size_t kMemoryCategories = 9;

std::string to_string(MemoryCategory c);

class MemoryLedger {
 public:
  void allocate(MemoryCategory category, std::int64_t bytes);
  /// Throws InvalidArgument if more is released than the category holds: a bookkeeping bug
  /// must not silently produce a wrong report.
  void release(MemoryCategory category, std::int64_t bytes);

  std::int64_t current(MemoryCategory category) const;
  std::int64_t high_water(MemoryCategory category) const;
  std::int64_t current_total() const { return total_; }
  std::int64_t high_water_total() const { return total_high_water_; }
  /// One line per category ever used with bytes now and at peak (MiB), plus the total.
  std::string report() const;

 private:
  std::array<std::int64_t, kMemoryCategories> current_{};
  std::array<std::int64_t, kMemoryCategories> high_water_{};
  std::int64_t total_ = 0;
  std::int64_t total_high_water_ = 0;
};

}  // namespace zs
