// Property tests of the layout math over random shapes, alignments and world sizes 1..17.
// The reference is a plain element-by-element model: tensor t's element e is encoded as a
// unique value, placed where the layout says, and read back through shards and fragment maps.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <random>

#include "zeroshard/error.hpp"
#include "zeroshard/sharding/flat_layout.hpp"
#include "zeroshard/sharding/fragment_map.hpp"
#include "zeroshard/sharding/row_major_boxes.hpp"

namespace zs::sharding {
namespace {

constexpr double kPadding = -1.0;

std::vector<TensorSpec> random_tensors(std::mt19937& random) {
  std::uniform_int_distribution<int> count(0, 9), rank(0, 3), dim(0, 9);
  std::vector<TensorSpec> specs;
  const int n = count(random);
  for (int t = 0; t < n; ++t) {
    TensorSpec spec{"t" + std::to_string(t), {}, DType::float32};
    const int dims = rank(random);
    for (int d = 0; d < dims; ++d) spec.shape.push_back(dim(random));
    specs.push_back(spec);
  }
  return specs;
}

double code(std::size_t tensor, std::int64_t element) { return tensor * 1e6 + element; }

// The flat buffer a layout describes, built element by element from TensorSlot offsets.
std::vector<double> flat_buffer(const FlatLayout& layout) {
  std::vector<double> flat(layout.padded_numel(), kPadding);
  for (std::size_t t = 0; t < layout.tensors().size(); ++t)
    for (std::int64_t e = 0; e < layout.tensors()[t].numel; ++e) flat[layout.tensors()[t].offset + e] = code(t, e);
  return flat;
}

class LayoutProperties : public ::testing::TestWithParam<int> {};

TEST_P(LayoutProperties, ShardsTileTheBufferAndFragmentsRebuildEveryTensor) {
  std::mt19937 random(GetParam());
  std::uniform_int_distribution<int> world(1, 17), align(1, 8);
  for (int trial = 0; trial < 40; ++trial) {
    const int n = world(random);
    const std::int64_t alignment = align(random);
    const FlatLayout layout = FlatLayout::build(random_tensors(random), n, alignment);
    ASSERT_EQ(layout.padded_numel() % n, 0);
    ASSERT_GE(layout.padded_numel(), layout.numel());
    ASSERT_LT(layout.padded_numel() - layout.numel(), n * alignment);  // padding is minimal
    for (const TensorSlot& slot : layout.tensors()) ASSERT_EQ(slot.offset % alignment, 0);

    // Shards tile [0, padded) exactly: contiguous, in rank order, no gap, no overlap.
    std::int64_t next = 0;
    for (int r = 0; r < n; ++r) {
      ASSERT_EQ(layout.shard(r).begin, next);
      ASSERT_EQ(layout.shard(r).begin % alignment, 0);
      next = layout.shard(r).end();
    }
    ASSERT_EQ(next, layout.padded_numel());

    // Rebuild every tensor from the shards through the fragment maps alone.
    const std::vector<double> flat = flat_buffer(layout);
    std::map<std::size_t, std::vector<int>> owners;  // element -> how many times seen
    for (const TensorSlot& slot : layout.tensors()) (void)slot;
    std::vector<std::vector<int>> seen(layout.tensors().size());
    for (std::size_t t = 0; t < seen.size(); ++t) seen[t].assign(layout.tensors()[t].numel, 0);
    for (int r = 0; r < n; ++r) {
      const ShardRange range = layout.shard(r);
      for (const Fragment& f : fragment_map(layout, r)) {
        ASSERT_GE(f.shard_offset, 0);
        ASSERT_LE(f.shard_offset + f.length, range.size);
        for (std::int64_t k = 0; k < f.length; ++k) {
          ASSERT_EQ(flat[range.begin + f.shard_offset + k], code(f.tensor, f.tensor_offset + k));
          ++seen[f.tensor][f.tensor_offset + k];
        }
      }
    }
    for (const auto& counts : seen)
      for (int c : counts) ASSERT_EQ(c, 1) << "an element owned " << c << " times";
  }
}

// What a checkpoint load at another world size does (CheckpointReader::read): each fragment of
// a target shard is found in the source layout and read from source shards by
// split_at_shard_edges.
TEST_P(LayoutProperties, SplitAtShardEdgesMovesEveryElementBetweenWorldSizes) {
  std::mt19937 random(GetParam() + 100);
  std::uniform_int_distribution<int> world(1, 17), align(1, 8);
  for (int trial = 0; trial < 40; ++trial) {
    const FlatLayout source = FlatLayout::build(random_tensors(random), world(random), align(random));
    const FlatLayout target = source.relayout(world(random), align(random));
    const std::vector<double> source_flat = flat_buffer(source), target_flat = flat_buffer(target);
    for (int r = 0; r < target.world_size(); ++r) {
      std::vector<double> shard(target.shard_numel(), kPadding);
      for (const Fragment& f : fragment_map(target, r)) {
        const TensorSlot& in_source = source.find(target.tensors()[f.tensor].spec.name);
        std::int64_t covered = 0;
        for (const ReshardPiece& p : split_at_shard_edges(in_source.offset + f.tensor_offset, f.length, source.shard_numel())) {
          ASSERT_EQ(p.target_offset, covered);  // pieces are consecutive
          ASSERT_GE(p.source_rank, 0);
          ASSERT_LT(p.source_rank, source.world_size());
          ASSERT_LE(p.source_offset + p.length, source.shard_numel());  // never reads across a shard
          for (std::int64_t k = 0; k < p.length; ++k)
            shard[f.shard_offset + p.target_offset + k] =
                source_flat[p.source_rank * source.shard_numel() + p.source_offset + k];
          covered += p.length;
        }
        ASSERT_EQ(covered, f.length);
      }
      for (std::int64_t k = 0; k < target.shard_numel(); ++k)
        ASSERT_EQ(shard[k], target_flat[target.shard(r).begin + k]) << "rank " << r << " element " << k;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, LayoutProperties, ::testing::Range(1, 6));

TEST(FlatLayout, WorkedExample) {
  // 10 + 3 elements, alignment 4, world 3: offsets 0 and 12, numel 15, padded to 24.
  const FlatLayout layout = FlatLayout::build({{"w", {2, 5}}, {"b", {3}}}, 3, 4);
  EXPECT_EQ(layout.find("b").offset, 12);
  EXPECT_EQ(layout.numel(), 15);
  EXPECT_EQ(layout.padded_numel(), 24);
  EXPECT_EQ(layout.shard_numel(), 8);
  const auto rank1 = fragment_map(layout, 1);  // [8, 16): w[8..10), b[0..3)
  ASSERT_EQ(rank1.size(), 2u);
  EXPECT_EQ(rank1[0], (Fragment{0, 8, 0, 2}));
  EXPECT_EQ(rank1[1], (Fragment{1, 0, 4, 3}));
  EXPECT_TRUE(fragment_map(layout, 2).empty());  // all padding
}

TEST(FlatLayout, RejectsBadInputWithTheName) {
  EXPECT_THROW(FlatLayout::build({{"a", {2}}, {"a", {3}}}, 2), InvalidArgument);
  EXPECT_THROW(FlatLayout::build({{"a", {-2}}}, 2), InvalidArgument);
  EXPECT_THROW(FlatLayout::build({{"a", {2}, DType::float32}, {"b", {2}, DType::bfloat16}}, 2), InvalidArgument);
  EXPECT_THROW(FlatLayout::build({{"a", {2}}}, 0), InvalidArgument);
  EXPECT_THROW(FlatLayout::build({{"a", {2}}}, 2, 0), InvalidArgument);
  EXPECT_THROW(FlatLayout::build({{"a", {2}}}, 2).shard(2), InvalidArgument);
}

// Shapes also come from files (a checkpoint's tensor_shapes): sizes past 2^63-1 are refused
// naming the tensor, never wrapped (issue 14: [4, 4611686018427391040] wrapped to 12,544).
TEST(FlatLayout, RefusesSizesThatOverflowInsteadOfWrapping) {
  const std::int64_t quarter = std::int64_t{4611686018427391040};  // 4 x this wraps to 12,544 x 1
  auto message_of = [](auto&& build) {  // what() of the InvalidArgument thrown
    try {
      build();
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of([&] { return TensorSpec{"fc1.weight", {4, quarter}}.numel(); })
                .find("tensor 'fc1.weight' of shape [4,4611686018427391040] has more than 2^63-1 elements"),
            std::string::npos);
  EXPECT_NE(message_of([&] { return FlatLayout::build({{"w", {4, quarter}}}, 2); }).find("'w'"), std::string::npos);
  // Each tensor fits, their sum does not; nor does the padding to the shard granule.
  const std::int64_t big = std::numeric_limits<std::int64_t>::max() - 10;
  EXPECT_NE(message_of([&] { return FlatLayout::build({{"a", {big}}, {"b", {20}}}, 1); }).find("up to tensor 'b'"),
            std::string::npos);
  EXPECT_NE(message_of([&] { return FlatLayout::build({{"a", {big}}}, 4, 8); }).find("overflows"), std::string::npos);
  EXPECT_NE(message_of([&] { return FlatLayout::build({{"a", {big}}}, 1, 64); }).find("overflows"), std::string::npos);
  // The largest sizes that fit still build.
  EXPECT_EQ(FlatLayout::build({{"a", {big}}}, 1).numel(), big);
}

// Reference: walk every element of each box in row-major order and compute its linear index
// from the shape directly; together the boxes must enumerate exactly begin, begin+1, ...
TEST(RowMajorBoxes, CoverExactlyTheRangeInOrder) {
  std::mt19937 random(11);
  std::uniform_int_distribution<int> rank(0, 4), dim(1, 6);
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::int64_t> shape;
    const int dims = rank(random);
    for (int d = 0; d < dims; ++d) shape.push_back(dim(random));
    std::int64_t total = 1;
    for (auto s : shape) total *= s;
    std::uniform_int_distribution<std::int64_t> pick(0, total);
    std::int64_t a = pick(random), b = pick(random);
    if (a > b) std::swap(a, b);
    const auto boxes = row_major_boxes(shape, a, b - a);
    EXPECT_LE(boxes.size(), static_cast<std::size_t>(std::max(1, 2 * dims - 1)));
    std::int64_t expected = a;
    for (const Box& box : boxes) {
      ASSERT_EQ(box.start.size(), shape.size());
      std::vector<std::int64_t> index(box.start);
      for (std::int64_t e = 0; e < box.numel(); ++e) {
        std::int64_t linear = 0;
        for (std::size_t d = 0; d < shape.size(); ++d) linear = linear * shape[d] + index[d];
        ASSERT_EQ(linear, expected) << "trial " << trial;
        ++expected;
        for (std::size_t d = shape.size(); d-- > 0;) {  // odometer over the box
          if (++index[d] < box.start[d] + box.count[d]) break;
          index[d] = box.start[d];
        }
      }
    }
    EXPECT_EQ(expected, b) << "trial " << trial;
  }
  EXPECT_THROW(row_major_boxes({2, 3}, 4, 3), InvalidArgument);
}

}  // namespace
}  // namespace zs::sharding
