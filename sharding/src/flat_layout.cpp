#include "zeroshard/sharding/flat_layout.hpp"

#include <set>

#include "zeroshard/error.hpp"

namespace zs::sharding {

namespace {

// Sizes come from files and users too (a checkpoint's tensor_shapes): every product and sum
// is checked, so a shape like [4, 2^62] is refused instead of wrapping to a small number.
[[noreturn]] void overflowed(const std::string& what, std::int64_t a, const char* op, std::int64_t b) {
  throw InvalidArgument(what + " has more than 2^63-1 elements (" + std::to_string(a) + op + std::to_string(b) +
                        " overflows)");
}

std::int64_t checked_multiply(std::int64_t a, std::int64_t b, const std::string& what) {
  std::int64_t result = 0;
  if (__builtin_mul_overflow(a, b, &result)) overflowed(what, a, " x ", b);
  return result;
}

std::int64_t checked_add(std::int64_t a, std::int64_t b, const std::string& what) {
  std::int64_t result = 0;
  if (__builtin_add_overflow(a, b, &result)) overflowed(what, a, " + ", b);
  return result;
}

std::int64_t round_up(std::int64_t value, std::int64_t multiple, const std::string& what) {
  return checked_add(value, multiple - 1, what) / multiple * multiple;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text;
  for (std::size_t i = 0; i < shape.size(); ++i) text += (i ? "," : "") + std::to_string(shape[i]);
  return text;
}

}  // namespace

std::int64_t TensorSpec::numel() const {
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    if (d < 0)
      throw InvalidArgument("tensor '" + name + "' has negative dimension " + std::to_string(d) + " in shape [" +
                            shape_text(shape) + "]");
    n = checked_multiply(n, d, "tensor '" + name + "' of shape [" + shape_text(shape) + "]");
  }
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
    const std::string what = "the flat buffer up to tensor '" + spec.name + "'";
    offset = round_up(offset, alignment, what);
    const std::int64_t numel = spec.numel();
    const std::int64_t end = checked_add(offset, numel, what);
    layout.slots_.push_back({std::move(spec), offset, numel});
    offset = end;
  }
  layout.numel_ = offset;
  const std::int64_t granule = checked_multiply(world_size, alignment, "the shard granule (world size x alignment)");
  layout.shard_numel_ = round_up(offset, granule, "the padded flat buffer") / world_size;
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
