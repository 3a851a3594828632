#pragma once
// A compute tensor: a shape and a pointer that either owns its storage or views storage that
// belongs to someone else (a flat parameter or gradient buffer of the engine). Row-major.
// Cheap to copy: copies share the storage. Compute tensors are float32 on the host today;
// dtype() and device() are the API through which device and 16-bit tensors will arrive.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "zeroshard/aligned_vector.hpp"
#include "zeroshard/dtype.hpp"

namespace zs {

enum class Device : std::uint8_t { host };

using Shape = std::vector<std::int64_t>;

std::int64_t numel_of(const Shape& shape);
std::string to_string(const Shape& shape);

class Tensor {
 public:
  Tensor() = default;
  /// Owning, zero-filled.
  explicit Tensor(Shape shape);
  /// Non-owning view of `data` (must outlive every use of the view).
  static Tensor view(float* data, Shape shape);

  float* data() noexcept { return data_; }
  const float* data() const noexcept { return data_; }
  DType dtype() const noexcept { return DType::float32; }
  Device device() const noexcept { return Device::host; }
  const Shape& shape() const noexcept { return shape_; }
  std::int64_t dim(std::size_t i) const { return shape_.at(i); }
  std::int64_t numel() const noexcept { return numel_; }
  bool empty() const noexcept { return numel_ == 0; }

  /// Reuses the storage when the element count does not grow (no allocation on the hot path
  /// once a batch shape has been seen); throws on a view that would have to grow.
  void resize(const Shape& shape);
  void fill(float value);

 private:
  std::shared_ptr<AlignedFloats> storage_;
  float* data_ = nullptr;
  Shape shape_;
  std::int64_t numel_ = 0;
};

}  // namespace zs
