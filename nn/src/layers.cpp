#include "zeroshard/nn/layers.hpp"

#include <algorithm>
#include <cmath>

#include <omp.h>

#include "eigen_views.hpp"
#include "layer_kernels.hpp"
#include "zeroshard/error.hpp"
#include "zeroshard/nn/compute_threads.hpp"

namespace zs::nn {

using detail::matrix;
using detail::rows_of;

using detail::call;
using detail::require_features;
using detail::with_last;

namespace {
// The products run in blocks of output features so that communication can advance between
// them, and so that the compute threads (compute_threads.hpp) can share them. The blocking
// depends on the sizes only (never on whether anyone polls, nor on the thread count), and each
// block is one single-threaded Eigen product, so results are identical with and without a
// progress hook and with any number of threads.
constexpr std::int64_t kProgressBlocks = 8;
std::int64_t block_of(std::int64_t extent) { return std::max<std::int64_t>(64, (extent + kProgressBlocks - 1) / kProgressBlocks); }

// Runs body(first, count) for the blocks of [0, extent), on the compute threads. Only the
// calling thread (OpenMP's thread 0) polls progress, after each of its blocks: it is the one
// thread that may call MPI (MPI_THREAD_SERIALIZED).
template <class Body>
void for_each_block(std::int64_t extent, const std::function<void()>* progress, const Body& body) {
  const std::int64_t block = block_of(extent), blocks = (extent + block - 1) / block;
#pragma omp parallel for schedule(static) if (blocks > 1 && compute_threads() > 1)
  for (std::int64_t b = 0; b < blocks; ++b) {
    body(b * block, std::min(block, extent - b * block));
    if (omp_get_thread_num() == 0) call(progress);
  }
}

// y = x W^T (+ b) for Linear and TiedLinear: W [out, in], x [rows, in].
void affine_forward(const Tensor& input, const Tensor& weight, const Parameter* bias, std::int64_t in,
                    std::int64_t out, Tensor& output, const std::function<void()>* progress) {
  const std::int64_t rows = rows_of(input);
  output.resize(with_last(input.shape(), out));
  auto y = matrix(output, rows, out);
  const auto x = matrix(input, rows, in);
  const auto w = matrix(weight, out, in);
  for_each_block(out, progress, [&](std::int64_t j, std::int64_t n) {
    y.middleCols(j, n).noalias() = x * w.middleRows(j, n).transpose();
    if (bias) y.middleCols(j, n).rowwise() += Eigen::Map<const Eigen::RowVectorXf>(bias->value.data() + j, n);
  });
}

// Accumulates dW (and db), or writes them when they are stale (claim_gradient: no separate
// clearing pass), and returns dx in `grad_input`, or an empty grad_input when
// `input_requires_grad` is false (nothing reads it: the model's input).
void affine_backward(const Tensor& grad_output, const Tensor& input, Parameter& weight, Parameter* bias,
                     std::int64_t in, std::int64_t out, bool input_requires_grad, Tensor& grad_input,
                     const std::function<void()>* progress) {
  const std::int64_t rows = rows_of(input);
  const auto g = matrix(grad_output, rows, out);
  const auto x = matrix(input, rows, in);
  const auto w = matrix(weight.value, out, in);
  auto dw = matrix(weight.grad, out, in);
  const bool overwrite = claim_gradient(weight) == GradientWrite::overwrite;
  for_each_block(out, progress, [&](std::int64_t j, std::int64_t n) {
    if (overwrite) dw.middleRows(j, n).noalias() = g.middleCols(j, n).transpose() * x;
    else dw.middleRows(j, n).noalias() += g.middleCols(j, n).transpose() * x;
  });
  if (bias) Eigen::Map<Eigen::RowVectorXf>(accumulable_gradient(*bias).data(), out) += g.colwise().sum();
  if (!input_requires_grad) {
    grad_input = Tensor();
    return;
  }
  grad_input.resize(input.shape());
  auto dx = matrix(grad_input, rows, in);
  for_each_block(in, progress, [&](std::int64_t k, std::int64_t n) {
    dx.middleCols(k, n).noalias() = g * w.middleCols(k, n);
  });
}
}  // namespace

// ---- Affine, Linear, TiedLinear ----
Affine::Affine(std::string name, std::int64_t in_features, std::int64_t out_features, bool bias)
    : Module(name),
      bias(name + ".bias", {bias ? out_features : 0}, /*decay=*/false),
      in_(in_features),
      out_(out_features),
      has_bias_(bias) {}

std::vector<Parameter*> Affine::parameters() {
  if (has_bias_) return {weight_, &bias};
  return {weight_};
}

float Affine::init_bound() const { return 1.0f / std::sqrt(static_cast<float>(in_)); }

void Affine::reset_bias(std::mt19937_64& random) {
  std::uniform_real_distribution<float> uniform(-init_bound(), init_bound());
  if (has_bias_)
    for (std::int64_t i = 0; i < bias.value.numel(); ++i) bias.value.data()[i] = uniform(random);
}

const Tensor& Affine::forward(const Tensor& input, const ForwardContext& context) {
  require_features(name(), input, in_);
  input_ = input;  // shares storage: backward needs x
  progress_ = context.progress;
  input_requires_grad_ = context.input_requires_grad;
  affine_forward(input, weight_->value, has_bias_ ? &bias : nullptr, in_, out_, output_, progress_);
  return output_;
}

const Tensor& Affine::backward(const Tensor& grad_output) {
  affine_backward(grad_output, input_, *weight_, has_bias_ ? &bias : nullptr, in_, out_, input_requires_grad_,
                  grad_input_, progress_);
  return grad_input_;
}

Linear::Linear(std::string name, std::int64_t in_features, std::int64_t out_features, bool bias)
    : Affine(name, in_features, out_features, bias), weight(name + ".weight", {out_features, in_features}) {
  weight_ = &weight;
}

Linear& Linear::init_normal(float std) {
  if (!(std > 0.0f))
    throw InvalidArgument(name() + ": init_normal needs a positive standard deviation, not " + std::to_string(std));
  init_std_ = std;
  return *this;
}

void Linear::reset_parameters(std::mt19937_64& random) {
  if (init_std_ > 0.0f) {  // GPT-2's: N(0, std) weight, zero bias
    std::normal_distribution<float> normal(0.0f, init_std_);
    for (std::int64_t i = 0; i < weight.value.numel(); ++i) weight.value.data()[i] = normal(random);
    bias.value.fill(0.0f);
    return;
  }
  std::uniform_real_distribution<float> uniform(-init_bound(), init_bound());
  for (std::int64_t i = 0; i < weight.value.numel(); ++i) weight.value.data()[i] = uniform(random);
  reset_bias(random);
}

namespace {
const Shape& matrix_shape(const std::string& layer, const Parameter& weight) {
  if (weight.shape.size() != 2)
    throw InvalidArgument(layer + ": a tied weight must be a matrix [out, in], not " + to_string(weight.shape));
  return weight.shape;
}
}  // namespace

TiedLinear::TiedLinear(std::string name, Parameter& weight, bool bias)
    : Affine(name, matrix_shape(name, weight)[1], weight.shape[0], bias) {
  weight_ = &weight;
}

// ---- ReLU ----
const Tensor& ReLU::forward(const Tensor& input, const ForwardContext&) {
  output_.resize(input.shape());
  for (std::int64_t i = 0; i < input.numel(); ++i) output_.data()[i] = std::max(0.0f, input.data()[i]);
  return output_;
}

const Tensor& ReLU::backward(const Tensor& grad_output) {
  grad_input_.resize(output_.shape());
  for (std::int64_t i = 0; i < output_.numel(); ++i)
    grad_input_.data()[i] = output_.data()[i] > 0.0f ? grad_output.data()[i] : 0.0f;
  return grad_input_;
}

// ---- GELU ----
const Tensor& GELU::forward(const Tensor& input, const ForwardContext&) {
  input_ = input;
  output_.resize(input.shape());
  for (std::int64_t i = 0; i < input.numel(); ++i) {
    const float x = input.data()[i];
    output_.data()[i] = 0.5f * x * (1.0f + std::erf(x * static_cast<float>(M_SQRT1_2)));
  }
  return output_;
}

const Tensor& GELU::backward(const Tensor& grad_output) {
  grad_input_.resize(input_.shape());
  const float inv_sqrt_2pi = 0.3989422804014327f;
  for (std::int64_t i = 0; i < input_.numel(); ++i) {
    const float x = input_.data()[i];
    const float cdf = 0.5f * (1.0f + std::erf(x * static_cast<float>(M_SQRT1_2)));
    const float pdf = inv_sqrt_2pi * std::exp(-0.5f * x * x);
    grad_input_.data()[i] = grad_output.data()[i] * (cdf + x * pdf);
  }
  return grad_input_;
}

// ---- LayerNorm ----
LayerNorm::LayerNorm(std::string name, std::int64_t features, float eps)
    : Module(name),
      gain(name + ".weight", {features}, /*decay=*/false),
      bias(name + ".bias", {features}, /*decay=*/false),
      features_(features),
      eps_(eps) {}

void LayerNorm::reset_parameters(std::mt19937_64&) {
  gain.value.fill(1.0f);
  bias.value.fill(0.0f);
}

const Tensor& LayerNorm::forward(const Tensor& input, const ForwardContext&) {
  require_features(name(), input, features_);
  const std::int64_t rows = rows_of(input);
  normalized_.resize(input.shape());
  inverse_std_.resize({rows});
  output_.resize(input.shape());
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* x = input.data() + r * features_;
    double mean = 0, variance = 0;
    for (std::int64_t i = 0; i < features_; ++i) mean += x[i];
    mean /= features_;
    for (std::int64_t i = 0; i < features_; ++i) variance += (x[i] - mean) * (x[i] - mean);
    variance /= features_;  // biased, as PyTorch
    const float inv = 1.0f / std::sqrt(static_cast<float>(variance) + eps_);
    inverse_std_.data()[r] = inv;
    float* n = normalized_.data() + r * features_;
    float* y = output_.data() + r * features_;
    for (std::int64_t i = 0; i < features_; ++i) {
      n[i] = (x[i] - static_cast<float>(mean)) * inv;
      y[i] = n[i] * gain.value.data()[i] + bias.value.data()[i];
    }
  }
  return output_;
}

const Tensor& LayerNorm::backward(const Tensor& grad_output) {
  const std::int64_t rows = rows_of(normalized_);
  grad_input_.resize(normalized_.shape());
  accumulable_gradient(gain);
  accumulable_gradient(bias);
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* g = grad_output.data() + r * features_;
    const float* n = normalized_.data() + r * features_;
    float* dx = grad_input_.data() + r * features_;
    double mean_gn = 0, mean_gn_n = 0;  // of (g * gain) and (g * gain * n)
    for (std::int64_t i = 0; i < features_; ++i) {
      gain.grad.data()[i] += g[i] * n[i];
      bias.grad.data()[i] += g[i];
      const double gn = static_cast<double>(g[i]) * gain.value.data()[i];
      mean_gn += gn;
      mean_gn_n += gn * n[i];
    }
    mean_gn /= features_;
    mean_gn_n /= features_;
    const float inv = inverse_std_.data()[r];
    for (std::int64_t i = 0; i < features_; ++i)
      dx[i] = inv * static_cast<float>(g[i] * gain.value.data()[i] - mean_gn - n[i] * mean_gn_n);
  }
  return grad_input_;
}

// ---- Embedding ----
Embedding::Embedding(std::string name, std::int64_t num_embeddings, std::int64_t dim)
    : Module(name), weight(name + ".weight", {num_embeddings, dim}), num_(num_embeddings), dim_(dim) {}

Embedding& Embedding::init_normal(float std) {
  if (!(std > 0.0f))
    throw InvalidArgument(name() + ": init_normal needs a positive standard deviation, not " + std::to_string(std));
  init_std_ = std;
  return *this;
}

void Embedding::reset_parameters(std::mt19937_64& random) {
  std::normal_distribution<float> normal(0.0f, init_std_);
  for (std::int64_t i = 0; i < weight.value.numel(); ++i) weight.value.data()[i] = normal(random);
}

const Tensor& Embedding::forward(const Tensor& input, const ForwardContext&) {
  indices_.resize(input.numel());
  Shape shape = input.shape();
  shape.push_back(dim_);
  output_.resize(shape);
  for (std::int64_t i = 0; i < input.numel(); ++i) {
    const float raw = input.data()[i];
    const auto index = static_cast<std::int64_t>(raw);
    if (raw != static_cast<float>(index) || index < 0 || index >= num_)
      throw InvalidArgument(name() + ": index " + std::to_string(raw) + " at position " + std::to_string(i) +
                            " is not an integer in [0, " + std::to_string(num_) + ")");
    indices_[i] = index;
    std::copy_n(weight.value.data() + index * dim_, dim_, output_.data() + i * dim_);
  }
  return output_;
}

const Tensor& Embedding::backward(const Tensor& grad_output) {
  Tensor& grad = accumulable_gradient(weight);
  for (std::size_t i = 0; i < indices_.size(); ++i) {
    float* row = grad.data() + indices_[i] * dim_;
    const float* g = grad_output.data() + i * dim_;
    for (std::int64_t k = 0; k < dim_; ++k) row[k] += g[k];
  }
  // Indices carry no gradient; an empty tensor tells a preceding module there is none.
  grad_input_.resize({0});
  return grad_input_;
}

// ---- Dropout ----
Dropout::Dropout(std::string name, float p) : Module(std::move(name)), p_(p) {
  if (!(p >= 0.0f && p < 1.0f))
    throw InvalidArgument(this->name() + ": dropout probability " + std::to_string(p) + " must be in [0, 1)");
}

const Tensor& Dropout::forward(const Tensor& input, const ForwardContext& context) {
  active_ = context.training && p_ > 0.0f;
  output_.resize(input.shape());
  if (!active_) {
    std::copy_n(input.data(), input.numel(), output_.data());
    return output_;
  }
  if (!context.random) throw InvalidArgument(name() + ": training-mode dropout needs ForwardContext::random");
  mask_.resize(input.shape());
  detail::DropoutMask draw(p_);
  for (std::int64_t i = 0; i < input.numel(); ++i) {
    mask_.data()[i] = draw(*context.random);
    output_.data()[i] = input.data()[i] * mask_.data()[i];
  }
  return output_;
}

const Tensor& Dropout::backward(const Tensor& grad_output) {
  grad_input_.resize(grad_output.shape());
  for (std::int64_t i = 0; i < grad_output.numel(); ++i)
    grad_input_.data()[i] = active_ ? grad_output.data()[i] * mask_.data()[i] : grad_output.data()[i];
  return grad_input_;
}

// ---- Sequential ----
const Tensor& Sequential::forward(const Tensor& input, const ForwardContext& context) {
  const Tensor* x = &input;
  // Only the first child reads this forward's own input.
  bool input_gradient_needed = context.input_requires_grad;
  for (auto& child : children_) {
    x = &child->forward(*x, context_for_input(context, *child, input_gradient_needed));
    input_gradient_needed = true;
  }
  return *x;
}

const Tensor& Sequential::backward(const Tensor& grad_output) {
  const Tensor* g = &grad_output;
  for (auto it = children_.rbegin(); it != children_.rend(); ++it) g = &(*it)->backward(*g);
  return *g;
}

std::vector<Module*> Sequential::children() {
  std::vector<Module*> out;
  for (auto& child : children_) out.push_back(child.get());
  return out;
}

std::int64_t Sequential::activation_bytes() const {
  std::int64_t total = 0;
  for (const auto& child : children_) total += child->activation_bytes();
  return total;
}

// ---- SoftmaxCrossEntropy ----
float SoftmaxCrossEntropy::forward(const Tensor& logits, const std::vector<std::int32_t>& labels) {
  if (logits.shape().size() != 2 || logits.dim(0) != static_cast<std::int64_t>(labels.size()))
    throw InvalidArgument("SoftmaxCrossEntropy: logits " + to_string(logits.shape()) + " need shape [" +
                          std::to_string(labels.size()) + ", classes]");
  const std::int64_t batch = logits.dim(0), classes = logits.dim(1);
  grad_.resize(logits.shape());
  correct_ = 0;
  double total = 0;
  for (std::int64_t r = 0; r < batch; ++r) {
    const float* z = logits.data() + r * classes;
    const std::int32_t label = labels[r];
    if (label < 0 || label >= classes)
      throw InvalidArgument("SoftmaxCrossEntropy: label " + std::to_string(label) + " outside [0, " +
                            std::to_string(classes) + ")");
    total += detail::softmax_cross_entropy_row(z, classes, label, batch, grad_.data() + r * classes);
    correct_ += (std::max_element(z, z + classes) - z) == label;
  }
  return static_cast<float>(total / batch);
}

}  // namespace zs::nn

// ---- release_activations: what each layer caches for backward ----
namespace zs::nn {

namespace {
// Drops the cached tensors; the output only when the caller does not read it any more.
void drop(std::initializer_list<Tensor*> caches, Tensor& output, bool keep_output) {
  for (Tensor* t : caches) *t = Tensor();
  if (!keep_output) output = Tensor();
}
}  // namespace

void Affine::release_activations(bool keep_output) { drop({&input_, &grad_input_}, output_, keep_output); }
void ReLU::release_activations(bool keep_output) { drop({&grad_input_}, output_, keep_output); }
void GELU::release_activations(bool keep_output) { drop({&input_, &grad_input_}, output_, keep_output); }
void LayerNorm::release_activations(bool keep_output) {
  drop({&normalized_, &inverse_std_, &grad_input_}, output_, keep_output);
}
void Embedding::release_activations(bool keep_output) {
  indices_ = std::vector<std::int64_t>();
  drop({&grad_input_}, output_, keep_output);
}
void Dropout::release_activations(bool keep_output) { drop({&mask_, &grad_input_}, output_, keep_output); }
void Sequential::release_activations(bool keep_output) {
  for (std::size_t i = 0; i < children_.size(); ++i)
    children_[i]->release_activations(keep_output && i + 1 == children_.size());
}

}  // namespace zs::nn
