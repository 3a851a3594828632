#pragma once
// Internal: Eigen views of row-major tensors (no copies).

#include <Eigen/Core>

#include "zeroshard/nn/tensor.hpp"

namespace zs::nn::detail {

using MatrixRowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixView = Eigen::Map<MatrixRowMajor>;
using ConstMatrixView = Eigen::Map<const MatrixRowMajor>;

inline MatrixView matrix(Tensor& t, std::int64_t rows, std::int64_t cols) { return MatrixView(t.data(), rows, cols); }
inline ConstMatrixView matrix(const Tensor& t, std::int64_t rows, std::int64_t cols) {
  return ConstMatrixView(t.data(), rows, cols);
}
/// Rows = product of all but the last dimension.
inline std::int64_t rows_of(const Tensor& t) { return t.shape().empty() ? 1 : t.numel() / t.shape().back(); }

}  // namespace zs::nn::detail
