#include "zeroshard/sharding/bucket_planner.hpp"

#include <algorithm>

#include "zeroshard/error.hpp"

namespace zs::sharding {

std::vector<Bucket> plan_buckets(const FlatLayout& layout, std::span<const std::size_t> order,
                                 std::int64_t max_bytes) {
  const auto element = static_cast<std::int64_t>(size_of(layout.dtype()));
  const std::int64_t capacity = max_bytes / element;
  if (capacity < 1)
    throw InvalidArgument("plan_buckets: bucket size " + std::to_string(max_bytes) +
                          " bytes holds no " + to_string(layout.dtype()) + " element; use at least " +
                          std::to_string(element) + " bytes");
  std::vector<bool> seen(layout.tensors().size(), false);
  std::vector<Bucket> buckets;
  Bucket current;
  auto close = [&] {
    if (current.numel > 0) buckets.push_back(std::move(current));
    current = Bucket{};
  };
  for (std::size_t index : order) {
    if (index >= layout.tensors().size())
      throw InvalidArgument("plan_buckets: tensor index " + std::to_string(index) + " is out of range (" +
                            std::to_string(layout.tensors().size()) + " tensors)");
    if (seen[index])
      throw InvalidArgument("plan_buckets: tensor '" + layout.tensors()[index].spec.name +
                            "' appears twice in the order");
    seen[index] = true;
    const std::int64_t numel = layout.tensors()[index].numel;
    if (current.numel + numel > capacity) close();  // keep whole tensors together when they fit
    std::int64_t placed = 0;
    while (placed < numel) {
      const std::int64_t length = std::min(numel - placed, capacity - current.numel);
      current.pieces.push_back({index, placed, length});
      current.numel += length;
      placed += length;
      if (current.numel == capacity) close();
    }
  }
  close();
  return buckets;
}

std::vector<std::size_t> reverse_layout_order(const FlatLayout& layout) {
  std::vector<std::size_t> order(layout.tensors().size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = order.size() - 1 - i;
  return order;
}

}  // namespace zs::sharding
