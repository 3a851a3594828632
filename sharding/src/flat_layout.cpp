#include "zeroshard/sharding/flat_layout.hpp"

#include <set>

#include "zeroshard/error.hpp"

namespace zs::sharding {

namespace {
std::int64_t round_up(std::int64_t value, std::int64_t multiple) {
  return (value + multiple - 1) / multiple * multiple;
}
}  // namespace

std::int64_t TensorSpec::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

FlatLayout FlatLayout::build(std::vector<TensorSpec> tensors, int world_size, std::int64_t alignment) {
  if (world_size < 1)
    throw InvalidArgument("FlatLayout: world size " + std::to_string(world_size) + " must be >= 1");
  if (alignment < 1)
    throw InvalidArgument("FlatLayout: alignment " + std::to_string(alignment) +
                          " must be >= 1 element");
  FlatLayout layout;
  layout.world_size_ = world_size;
  layout.alignment_ = alignment;
  if (!tensors.empty()) layout.dtype_ = tensors.front().dtype;
  std::set<std::string> names;
  std::int64_t offset = 0;
  for (TensorSpec& spec : tensors) {
    if (spec.name.empty()) throw InvalidArgument("FlatLayout: a tensor has an empty name; name every tensor");
    if (!names.insert(spec.name).second)
      throw InvalidArgument("FlatLayout: tensor name '" + spec.name + "' appears twice; names must be unique");
    for (std::int64_t d : spec.shape)
      if (d < 0)
        throw InvalidArgument("FlatLayout: tensor '" + spec.name + "' has negative dimension " + std::to_string(d));
    if (spec.dtype != layout.dtype_)
      throw InvalidArgument("FlatLayout: tensor '" + spec.name + "' is " + to_string(spec.dtype) + " but '" +
                            tensors.front().name + "' is " + to_string(layout.dtype_) +
                            "; one flat buffer holds one dtype: put them in separate layouts");
    offset = round_up(offset, alignment);
    const std::int64_t numel = spec.numel();
    layout.slots_.push_back({std::move(spec), offset, numel});
    offset += numel;
  }
  layout.numel_ = offset;
  layout.shard_numel_ = round_up(offset, static_cast<std::int64_t>(world_size) * alignment) / world_size;
  return layout;
}

ShardRange FlatLayout::shard(int rank) const {
  if (rank < 0 || rank >= world_size_)
    throw InvalidArgument("FlatLayout::shard: rank " + std::to_string(rank) + " is outside world size " +
                          std::to_string(world_size_));
  return {rank * shard_numel_, shard_numel_};
}

std::optional<std::size_t> FlatLayout::index_of(std::string_view name) const {
  for (std::size_t i = 0; i < slots_.size(); ++i)
    if (slots_[i].spec.name == name) return i;
  return std::nullopt;
}

const TensorSlot& FlatLayout::find(std::string_view name) const {
  if (auto index = index_of(name)) return slots_[*index];
  throw InvalidArgument("FlatLayout: no tensor named '" + std::string(name) + "'");
}

FlatLayout FlatLayout::relayout(int world_size, std::int64_t alignment) const {
  std::vector<TensorSpec> specs;
  for (const TensorSlot& slot : slots_) specs.push_back(slot.spec);
  return build(std::move(specs), world_size, alignment);
}

}  // namespace zs::sharding
