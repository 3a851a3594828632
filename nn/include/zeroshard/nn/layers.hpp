#pragma once
// The built-in layers. Inputs are row-major [batch, features] (Embedding: [batch] of indices
// stored as floats, exact below 2^24). Each layer keeps its output and its input gradient as
// members, reused from step to step: no allocation on the hot path once shapes are known.

#include <memory>

#include "zeroshard/nn/module.hpp"

namespace zs::nn {

/// y = x W^T (+ b) over the last dimension, W: [out, in]: the arithmetic Linear and
/// TiedLinear share (they differ only in who owns W). Input any shape [..., in] ([batch, in],
/// [batch, seq, in], ...), output [..., out]: every leading index is one row. Caches the input
/// (shared storage) for backward. Throws InvalidArgument if the last dimension is not `in`.
/// The products run in blocks of features with progress polled between them
/// (ForwardContext::progress).
class Affine : public Module {
 public:
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Parameter*> parameters() override;
  bool writes_stale_gradients() const override { return true; }
  std::int64_t activation_bytes() const override { return (input_.numel() + output_.numel()) * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

  Parameter bias;  // [out] when the layer has a bias, else empty; no weight decay

 protected:
  Affine(std::string name, std::int64_t in_features, std::int64_t out_features, bool bias);
  /// PyTorch's nn.Linear default: U(-1/sqrt(in), 1/sqrt(in)).
  void reset_bias(std::mt19937_64& random);
  float init_bound() const;
  /// The [out, in] matrix the layer multiplies by; set by the derived class's constructor
  /// (its own member, or a borrowed parameter that must outlive the layer).
  Parameter* weight_ = nullptr;

 private:
  std::int64_t in_, out_;
  bool has_bias_;
  const std::function<void()>* progress_ = nullptr;  // from the forward context
  bool input_requires_grad_ = true;                   // from the forward context
  Tensor input_, output_, grad_input_;
};

/// y = x W^T + b, W: [out, in]. PyTorch's default initialisation: U(-1/sqrt(in), 1/sqrt(in)),
/// weight then bias; or GPT-2's after init_normal(std).
class Linear final : public Affine {
 public:
  Linear(std::string name, std::int64_t in_features, std::int64_t out_features, bool bias = true);
  void reset_parameters(std::mt19937_64& random) override;
  /// From now on reset_parameters draws the weight from N(0, std) and zeroes the bias
  /// (GPT-2's / nanoGPT's initialisation, std 0.02 there). Throws InvalidArgument unless std > 0.
  Linear& init_normal(float std);

  Parameter weight;

 private:
  float init_std_ = 0.0f;  // 0: PyTorch's default
};

/// y = x W^T (+ b) with W a Parameter owned by another module, [out, in]: an LM head tied to
/// the token embedding passes the Embedding's [vocab, dim] table and maps [..., dim] to
/// [..., vocab] logits ([batch, seq, n_embd] to [batch, seq, vocab] in a GPT; Press & Wolf,
/// 2017; GPT-2). parameters() lists the borrowed weight
/// (and its own bias, if any), so the engine knows it is used here; the engine keeps it as one
/// parameter owned by the first unit that lists it, and its gradient sums both uses. It never
/// initialises the borrowed weight. Throws InvalidArgument if the weight is not a matrix.
class TiedLinear final : public Affine {
 public:
  TiedLinear(std::string name, Parameter& weight, bool bias = false);
  void reset_parameters(std::mt19937_64& random) override { reset_bias(random); }
};

class ReLU final : public Module {
 public:
  explicit ReLU(std::string name) : Module(std::move(name)) {}
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::int64_t activation_bytes() const override { return output_.numel() * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

 private:
  Tensor output_, grad_input_;
};

/// The exact GELU, x * Phi(x), as PyTorch's default (approximate='none').
class GELU final : public Module {
 public:
  explicit GELU(std::string name) : Module(std::move(name)) {}
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::int64_t activation_bytes() const override { return (input_.numel() + output_.numel()) * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

 private:
  Tensor input_, output_, grad_input_;
};

/// Normalises the last dimension; gain 1 and bias 0 at start, eps 1e-5 (PyTorch defaults).
/// Input: any shape [..., features] (e.g. [batch, features] or [batch, seq, features]), each
/// row of `features` normalised on its own; output the same shape. Caches the normalised input
/// and 1/std per row. Throws InvalidArgument if the last dimension is not `features`.
class LayerNorm final : public Module {
 public:
  LayerNorm(std::string name, std::int64_t features, float eps = 1e-5f);
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Parameter*> parameters() override { return {&gain, &bias}; }
  bool writes_stale_gradients() const override { return true; }
  std::int64_t activation_bytes() const override { return (normalized_.numel() + output_.numel()) * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;
  void reset_parameters(std::mt19937_64& random) override;

  Parameter gain;
  Parameter bias;

 private:
  std::int64_t features_;
  float eps_;
  Tensor normalized_, inverse_std_, output_, grad_input_;
};

/// Rows of a [num_embeddings, dim] table, initialised N(0, 1) as PyTorch does (N(0, std) after
/// init_normal(std), GPT-2's 0.02). Input: indices of any shape S stored as floats; output
/// S + [dim]. The input carries no gradient (indices): backward returns an empty tensor.
class Embedding final : public Module {
 public:
  Embedding(std::string name, std::int64_t num_embeddings, std::int64_t dim);
  /// reset_parameters then draws from N(0, std). Throws InvalidArgument unless std > 0.
  Embedding& init_normal(float std);
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Parameter*> parameters() override { return {&weight}; }
  bool writes_stale_gradients() const override { return true; }
  std::int64_t activation_bytes() const override { return output_.numel() * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;
  void reset_parameters(std::mt19937_64& random) override;

  Parameter weight;

 private:
  std::int64_t num_, dim_;
  float init_std_ = 1.0f;
  std::vector<std::int64_t> indices_;
  Tensor output_, grad_input_;
};

/// Zeroes each element with probability p in training and scales the rest by 1/(1-p).
class Dropout final : public Module {
 public:
  Dropout(std::string name, float p);
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::int64_t activation_bytes() const override { return (mask_.numel() + output_.numel()) * 4; }
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

 private:
  float p_;
  bool active_ = false;
  Tensor mask_, output_, grad_input_;
};

/// Runs children in order. The engine shards a Sequential's children in units.
class Sequential final : public Module {
 public:
  explicit Sequential(std::string name) : Module(std::move(name)) {}
  template <class M, class... Args>
  M& add(Args&&... args) {
    auto owned = std::make_unique<M>(std::forward<Args>(args)...);
    M& ref = *owned;
    children_.push_back(std::move(owned));
    return ref;
  }
  void add_module(std::unique_ptr<Module> module) { children_.push_back(std::move(module)); }
  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Module*> children() override;
  std::int64_t activation_bytes() const override;
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;
  std::size_t size() const { return children_.size(); }
  Module& at(std::size_t i) { return *children_.at(i); }

 private:
  std::vector<std::unique_ptr<Module>> children_;
};

/// Mean softmax cross-entropy over a batch of logits [batch, classes] and integer labels.
class SoftmaxCrossEntropy {
 public:
  /// Returns the mean loss; keeps d(loss)/d(logits) for gradient().
  float forward(const Tensor& logits, const std::vector<std::int32_t>& labels);
  const Tensor& gradient() const { return grad_; }
  /// Count of rows whose arg-max equals the label, from the last forward.
  std::int64_t correct() const { return correct_; }

 private:
  Tensor grad_;
  std::int64_t correct_ = 0;
};


}  // namespace zs::nn
