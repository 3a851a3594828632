#include "zeroshard/nn/tensor.hpp"

#include <algorithm>

#include "zeroshard/error.hpp"

namespace zs {

std::int64_t numel_of(const Shape& shape) {
  std::int64_t n = 1;
  for (std::int64_t d : shape) n *= d;
  return n;
}

std::string to_string(const Shape& shape) {
  std::string text = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) text += ',';
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

Tensor::Tensor(Shape shape)
    : storage_(std::make_shared<AlignedFloats>(numel_of(shape), 0.0f)),
      data_(storage_->data()),
      shape_(std::move(shape)),
      numel_(numel_of(shape_)) {}

Tensor Tensor::view(float* data, Shape shape) {
  Tensor t;
  t.data_ = data;
  t.numel_ = numel_of(shape);
  t.shape_ = std::move(shape);
  return t;
}

void Tensor::resize(const Shape& shape) {
  const std::int64_t wanted = numel_of(shape);
  const bool is_view = !storage_ && data_ != nullptr;
  if (is_view) {
    if (wanted > numel_)
      throw InvalidArgument("Tensor::resize: a view of " + std::to_string(numel_) + " elements cannot grow to " +
                            to_string(shape));
  } else if (!storage_ || static_cast<std::int64_t>(storage_->size()) < wanted) {
    if (!storage_) storage_ = std::make_shared<AlignedFloats>();
    storage_->resize(wanted);
    data_ = storage_->data();
  }
  shape_ = shape;
  numel_ = wanted;
}

void Tensor::fill(float value) { std::fill(data_, data_ + numel_, value); }

}  // namespace zs
