#include "zeroshard/sharding/fragment_map.hpp"

#include <algorithm>
#include <sstream>

#include "zeroshard/error.hpp"

namespace zs::sharding {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << ']';
  return out.str();
}

void require_same_tensors(const FlatLayout& source, const FlatLayout& target) {
  std::vector<std::string> differences;
  for (const TensorSlot& t : target.tensors()) {
    auto index = source.index_of(t.spec.name);
    if (!index) {
      differences.push_back("'" + t.spec.name + "' is missing from the source");
      continue;
    }
    const TensorSpec& s = source.tensors()[*index].spec;
    if (s.shape != t.spec.shape)
      differences.push_back("'" + t.spec.name + "' has shape " + shape_text(s.shape) + " in the source but " +
                            shape_text(t.spec.shape) + " in the target");
    if (s.dtype != t.spec.dtype)
      differences.push_back("'" + t.spec.name + "' is " + to_string(s.dtype) + " in the source but " +
                            to_string(t.spec.dtype) + " in the target");
  }
  for (const TensorSlot& s : source.tensors())
    if (!target.index_of(s.spec.name)) differences.push_back("'" + s.spec.name + "' is missing from the target");
  if (differences.empty()) return;
  std::string message = "the two layouts hold different tensors:";
  for (const std::string& d : differences) message += "\n  - " + d;
  throw InvalidArgument(message);
}

}  // namespace

std::vector<Fragment> fragment_map(const FlatLayout& layout, int rank) {
  const ShardRange range = layout.shard(rank);
  std::vector<Fragment> fragments;
  for (std::size_t i = 0; i < layout.tensors().size(); ++i) {
    const TensorSlot& slot = layout.tensors()[i];
    const std::int64_t begin = std::max(slot.offset, range.begin);
    const std::int64_t end = std::min(slot.end(), range.end());
    if (begin < end) fragments.push_back({i, begin - slot.offset, begin - range.begin, end - begin});
  }
  return fragments;
}

std::vector<ReshardPiece> split_at_shard_edges(std::int64_t flat_begin, std::int64_t length, std::int64_t shard_numel) {
  std::vector<ReshardPiece> pieces;
  for (std::int64_t done = 0; done < length;) {
    const std::int64_t flat = flat_begin + done;
    const int rank = static_cast<int>(flat / shard_numel);
    const std::int64_t within = flat - rank * shard_numel;
    const std::int64_t piece = std::min(length - done, shard_numel - within);
    pieces.push_back({rank, within, done, piece});
    done += piece;
  }
  return pieces;
}

std::vector<ReshardPiece> reshard_plan(const FlatLayout& source, const FlatLayout& target, int target_rank) {
  require_same_tensors(source, target);
  std::vector<ReshardPiece> pieces;
  const std::int64_t source_shard = source.shard_numel();
  for (const Fragment& f : fragment_map(target, target_rank)) {
    const TensorSlot& in_source = source.find(target.tensors()[f.tensor].spec.name);
    for (ReshardPiece piece : split_at_shard_edges(in_source.offset + f.tensor_offset, f.length, source_shard)) {
      piece.target_offset += f.shard_offset;
      pieces.push_back(piece);
    }
  }
  return pieces;
}

}  // namespace zs::sharding
