#include "zeroshard/sharding/row_major_boxes.hpp"

#include <algorithm>
#include <functional>
#include <numeric>
#include <string>

#include "zeroshard/error.hpp"

namespace zs::sharding {

std::int64_t Box::numel() const {
  return std::accumulate(count.begin(), count.end(), std::int64_t{1}, std::multiplies<>());
}

namespace {

// Appends boxes covering [begin, end) of the sub-tensor made of dimensions [dim, rank), whose
// element 0 sits at `prefix` in the leading dimensions. `inner[d]` = elements per index of d.
void cover(const std::vector<std::int64_t>& shape, const std::vector<std::int64_t>& inner, std::size_t dim,
           std::vector<std::int64_t>& prefix, std::int64_t begin, std::int64_t end, std::vector<Box>& out) {
  if (begin >= end) return;
  const std::size_t rank = shape.size();
  const std::int64_t step = inner[dim];
  auto box_of = [&](std::int64_t first, std::int64_t rows) {
    Box box;
    box.start = prefix;
    box.start.push_back(first);
    box.count.assign(dim, 1);
    box.count.push_back(rows);
    for (std::size_t d = dim + 1; d < rank; ++d) {
      box.start.push_back(0);
      box.count.push_back(shape[d]);
    }
    return box;
  };
  const std::int64_t first_row = begin / step, last_row = (end - 1) / step;
  if (begin % step == 0 && end % step == 0) {  // whole rows only: one box
    out.push_back(box_of(first_row, last_row - first_row + 1));
    return;
  }
  if (first_row == last_row) {  // inside one row: recurse into it
    prefix.push_back(first_row);
    cover(shape, inner, dim + 1, prefix, begin - first_row * step, end - first_row * step, out);
    prefix.pop_back();
    return;
  }
  // A partial head row, whole middle rows, a partial tail row.
  std::int64_t middle_begin = first_row, middle_end = last_row + 1;
  if (begin % step != 0) {
    prefix.push_back(first_row);
    cover(shape, inner, dim + 1, prefix, begin - first_row * step, step, out);
    prefix.pop_back();
    middle_begin = first_row + 1;
  }
  const bool partial_tail = end % step != 0;
  if (partial_tail) middle_end = last_row;
  if (middle_begin < middle_end) out.push_back(box_of(middle_begin, middle_end - middle_begin));
  if (partial_tail) {
    prefix.push_back(last_row);
    cover(shape, inner, dim + 1, prefix, 0, end - last_row * step, out);
    prefix.pop_back();
  }
}

}  // namespace

std::vector<Box> row_major_boxes(const std::vector<std::int64_t>& shape, std::int64_t begin, std::int64_t length) {
  const std::int64_t total =
      std::accumulate(shape.begin(), shape.end(), std::int64_t{1}, std::multiplies<>());
  if (begin < 0 || length < 0 || begin + length > total)
    throw InvalidArgument("row_major_boxes: elements [" + std::to_string(begin) + ", " +
                          std::to_string(begin + length) + ") are outside a tensor of " + std::to_string(total) +
                          " elements");
  std::vector<Box> out;
  if (length == 0) return out;
  if (shape.empty()) {
    out.push_back(Box{});
    return out;
  }
  std::vector<std::int64_t> inner(shape.size(), 1);
  for (std::size_t d = shape.size() - 1; d > 0; --d) inner[d - 1] = inner[d] * shape[d];
  std::vector<std::int64_t> prefix;
  cover(shape, inner, 0, prefix, begin, begin + length, out);
  return out;
}

}  // namespace zs::sharding
