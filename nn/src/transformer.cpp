#include "zeroshard/nn/transformer.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "eigen_views.hpp"
#include "layer_kernels.hpp"
#include "zeroshard/error.hpp"

namespace zs::nn {

using detail::call;
using detail::matrix;

namespace {

using Strided = Eigen::Map<detail::MatrixRowMajor, 0, Eigen::OuterStride<>>;
using ConstStrided = Eigen::Map<const detail::MatrixRowMajor, 0, Eigen::OuterStride<>>;

// Throws unless `input` is [batch, seq, features] with batch, seq >= 1.
void require_sequence(const std::string& module, const Tensor& input, std::int64_t features) {
  const Shape& s = input.shape();
  if (s.size() != 3 || s[0] < 1 || s[1] < 1 || s[2] != features)
    throw InvalidArgument(module + ": input of shape " + to_string(s) + " must be [batch, seq, " +
                          std::to_string(features) + "] (n_embd " + std::to_string(features) + ")");
}

std::int64_t checked_head_count(const std::string& module, std::int64_t n_embd, std::int64_t n_head) {
  if (n_embd < 1 || n_head < 1 || n_embd % n_head != 0)
    throw InvalidArgument(module + ": n_embd " + std::to_string(n_embd) + " must be a positive multiple of n_head " +
                          std::to_string(n_head));
  return n_head;
}

float checked_probability(const std::string& module, float p) {
  if (!(p >= 0.0f && p < 1.0f))
    throw InvalidArgument(module + ": dropout probability " + std::to_string(p) + " must be in [0, 1)");
  return p;
}

// out = a + b, element by element (same element count).
void add(const Tensor& a, const Tensor& b, Tensor& out) {
  out.resize(a.shape());
  const float* x = a.data();
  const float* y = b.data();
  float* z = out.data();
  for (std::int64_t i = 0; i < a.numel(); ++i) z[i] = x[i] + y[i];
}

}  // namespace

// ---- CausalSelfAttention ----
CausalSelfAttention::CausalSelfAttention(std::string name, std::int64_t n_embd, std::int64_t n_head,
                                         float attn_dropout_p)
    : Module(name),
      c_attn(name + ".c_attn", n_embd, 3 * n_embd),
      c_proj(name + ".c_proj", n_embd, n_embd),
      n_embd_(n_embd),
      n_head_(checked_head_count(name, n_embd, n_head)),
      p_(checked_probability(name, attn_dropout_p)) {
  c_attn.init_normal(kInitStd);
  c_proj.init_normal(kInitStd);
}

std::int64_t CausalSelfAttention::activation_bytes() const {
  return c_attn.activation_bytes() + c_proj.activation_bytes() +
         (probs_.numel() + (active_ ? mask_.numel() : 0)) * static_cast<std::int64_t>(sizeof(float));
}

const Tensor& CausalSelfAttention::forward(const Tensor& input, const ForwardContext& context) {
  require_sequence(name(), input, n_embd_);
  active_ = context.training && p_ > 0.0f;
  if (active_ && !context.random)
    throw InvalidArgument(name() + ": training-mode attention dropout needs ForwardContext::random");
  progress_ = context.progress;
  const std::int64_t B = input.dim(0), T = input.dim(1), C = n_embd_, H = n_head_, D = C / H;
  batch_ = B;
  seq_ = T;
  qkv_ = c_attn.forward(input, context);  // shares c_attn's output storage
  probs_.resize({B, H, T, T});
  heads_.resize({B, T, C});
  if (active_) {
    mask_.resize({B, H, T, T});
    dropped_.resize({T, T});
  }
  detail::DropoutMask draw(active_ ? p_ : 0.0f);
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (std::int64_t b = 0; b < B; ++b) {
    const float* qkv = qkv_.data() + b * T * 3 * C;
    for (std::int64_t h = 0; h < H; ++h) {
      const ConstStrided q(qkv + h * D, T, D, Eigen::OuterStride<>(3 * C));
      const ConstStrided k(qkv + C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      const ConstStrided v(qkv + 2 * C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      float* probs = probs_.data() + (b * H + h) * T * T;
      detail::MatrixView p(probs, T, T);
      p.noalias() = q * k.transpose();
      // Row t: a stable softmax of scale * scores over positions j <= t; zero beyond.
      for (std::int64_t t = 0; t < T; ++t) {
        float* row = probs + t * T;
        const float max = *std::max_element(row, row + t + 1);
        float sum = 0.0f;
        for (std::int64_t j = 0; j <= t; ++j) {
          row[j] = std::exp((row[j] - max) * scale);
          sum += row[j];
        }
        const float inverse = 1.0f / sum;
        for (std::int64_t j = 0; j <= t; ++j) row[j] *= inverse;
        std::fill(row + t + 1, row + T, 0.0f);
      }
      Strided y(heads_.data() + b * T * C + h * D, T, D, Eigen::OuterStride<>(C));
      if (active_) {
        // One draw per attended (t, j <= t), in order of b, h, t, j.
        float* mask = mask_.data() + (b * H + h) * T * T;
        for (std::int64_t t = 0; t < T; ++t) {
          for (std::int64_t j = 0; j <= t; ++j) mask[t * T + j] = draw(*context.random);
          std::fill(mask + t * T + t + 1, mask + (t + 1) * T, 0.0f);
        }
        auto dropped = matrix(dropped_, T, T);
        dropped = p.cwiseProduct(detail::ConstMatrixView(mask, T, T));
        y.noalias() = dropped.triangularView<Eigen::Lower>() * v;
      } else {
        y.noalias() = p.triangularView<Eigen::Lower>() * v;
      }
      call(progress_);
    }
  }
  return c_proj.forward(heads_, context);
}

const Tensor& CausalSelfAttention::backward(const Tensor& grad_output) {
  const std::int64_t B = batch_, T = seq_, C = n_embd_, H = n_head_, D = C / H;
  const Tensor& grad_heads = c_proj.backward(grad_output);  // [B, T, C], accumulates c_proj's
  grad_qkv_.resize({B, T, 3 * C});
  grad_scores_.resize({T, T});
  const float scale = 1.0f / std::sqrt(static_cast<float>(D));
  for (std::int64_t b = 0; b < B; ++b) {
    const float* qkv = qkv_.data() + b * T * 3 * C;
    float* dqkv = grad_qkv_.data() + b * T * 3 * C;
    for (std::int64_t h = 0; h < H; ++h) {
      const ConstStrided q(qkv + h * D, T, D, Eigen::OuterStride<>(3 * C));
      const ConstStrided k(qkv + C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      const ConstStrided v(qkv + 2 * C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      Strided dq(dqkv + h * D, T, D, Eigen::OuterStride<>(3 * C));
      Strided dk(dqkv + C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      Strided dv(dqkv + 2 * C + h * D, T, D, Eigen::OuterStride<>(3 * C));
      const ConstStrided dy(grad_heads.data() + b * T * C + h * D, T, D, Eigen::OuterStride<>(C));
      const float* probs = probs_.data() + (b * H + h) * T * T;
      const detail::ConstMatrixView p(probs, T, T);
      auto ds = matrix(grad_scores_, T, T);
      ds.noalias() = dy * v.transpose();  // d(dropped probabilities)
      if (active_) {
        const detail::ConstMatrixView mask(mask_.data() + (b * H + h) * T * T, T, T);
        auto dropped = matrix(dropped_, T, T);
        dropped = p.cwiseProduct(mask);
        dv.noalias() = dropped.triangularView<Eigen::Lower>().transpose() * dy;
        ds = ds.cwiseProduct(mask);  // d(probabilities)
      } else {
        dv.noalias() = p.triangularView<Eigen::Lower>().transpose() * dy;
      }
      // Softmax backward per row, times the score scale: ds = p * (dp - sum_j dp_j p_j) * scale.
      for (std::int64_t t = 0; t < T; ++t) {
        float* row = grad_scores_.data() + t * T;
        const float* pr = probs + t * T;
        float dot = 0.0f;
        for (std::int64_t j = 0; j <= t; ++j) dot += row[j] * pr[j];
        for (std::int64_t j = 0; j <= t; ++j) row[j] = pr[j] * (row[j] - dot) * scale;
        std::fill(row + t + 1, row + T, 0.0f);
      }
      dq.noalias() = ds.triangularView<Eigen::Lower>() * k;
      dk.noalias() = ds.triangularView<Eigen::Lower>().transpose() * q;
      call(progress_);
    }
  }
  return c_attn.backward(grad_qkv_);
}

// ---- TransformerBlock ----
TransformerBlock::TransformerBlock(std::string name, std::int64_t n_embd, std::int64_t n_head, float dropout_p)
    : Module(name),
      ln_1(name + ".ln_1", n_embd),
      attn(name + ".attn", n_embd, n_head, dropout_p),
      attn_resid_dropout(name + ".attn.resid_dropout", dropout_p),
      ln_2(name + ".ln_2", n_embd),
      mlp_fc(name + ".mlp.c_fc", n_embd, 4 * n_embd),
      mlp_gelu(name + ".mlp.gelu"),
      mlp_proj(name + ".mlp.c_proj", 4 * n_embd, n_embd),
      mlp_dropout(name + ".mlp.dropout", dropout_p),
      n_embd_(n_embd) {
  mlp_fc.init_normal(kInitStd);
  mlp_proj.init_normal(kInitStd);
}

std::vector<Module*> TransformerBlock::children() {
  return {&ln_1, &attn, &attn_resid_dropout, &ln_2, &mlp_fc, &mlp_gelu, &mlp_proj, &mlp_dropout};
}

std::int64_t TransformerBlock::activation_bytes() const {
  std::int64_t total = (residual_.numel() + output_.numel()) * static_cast<std::int64_t>(sizeof(float));
  for (const Module* child : std::initializer_list<const Module*>{&ln_1, &attn, &attn_resid_dropout, &ln_2, &mlp_fc,
                                                                  &mlp_gelu, &mlp_proj, &mlp_dropout})
    total += child->activation_bytes();
  return total;
}

const Tensor& TransformerBlock::forward(const Tensor& input, const ForwardContext& context) {
  require_sequence(name(), input, n_embd_);
  progress_ = context.progress;
  const Tensor* a = &ln_1.forward(input, context);
  a = &attn.forward(*a, context);
  a = &attn_resid_dropout.forward(*a, context);
  add(input, *a, residual_);
  call(progress_);
  const Tensor* m = &ln_2.forward(residual_, context);
  m = &mlp_fc.forward(*m, context);
  m = &mlp_gelu.forward(*m, context);
  m = &mlp_proj.forward(*m, context);
  m = &mlp_dropout.forward(*m, context);
  add(residual_, *m, output_);
  return output_;
}

const Tensor& TransformerBlock::backward(const Tensor& grad_output) {
  const Tensor* m = &mlp_dropout.backward(grad_output);
  m = &mlp_proj.backward(*m);
  m = &mlp_gelu.backward(*m);
  m = &mlp_fc.backward(*m);
  m = &ln_2.backward(*m);
  add(grad_output, *m, grad_residual_);  // the residual path plus the MLP branch
  call(progress_);
  const Tensor* a = &attn_resid_dropout.backward(grad_residual_);
  a = &attn.backward(*a);
  a = &ln_1.backward(*a);
  add(grad_residual_, *a, grad_input_);  // the residual path plus the attention branch
  return grad_input_;
}

// ---- TokenPositionEmbedding ----
namespace {
std::int64_t checked_size(const std::string& module, const char* what, std::int64_t value) {
  if (value < 1) throw InvalidArgument(module + ": " + what + " " + std::to_string(value) + " must be positive");
  return value;
}
}  // namespace

TokenPositionEmbedding::TokenPositionEmbedding(std::string name, std::int64_t vocab, std::int64_t block_size,
                                               std::int64_t n_embd, float dropout_p)
    : Module(name),
      wte(name + ".wte", checked_size(name, "vocab", vocab), checked_size(name, "n_embd", n_embd)),
      wpe(name + ".wpe", checked_size(name, "block_size", block_size), n_embd),
      dropout(name + ".drop", dropout_p),
      vocab_(vocab),
      block_size_(block_size),
      n_embd_(n_embd) {
  wte.init_normal(kInitStd);
  wpe.init_normal(kInitStd);
}

std::int64_t TokenPositionEmbedding::activation_bytes() const {
  return wte.activation_bytes() + wpe.activation_bytes() + dropout.activation_bytes() +
         sum_.numel() * static_cast<std::int64_t>(sizeof(float));
}

const Tensor& TokenPositionEmbedding::forward(const Tensor& input, const ForwardContext& context) {
  const Shape& s = input.shape();
  if (s.size() != 2 || s[0] < 1 || s[1] < 1 || s[1] > block_size_)
    throw InvalidArgument(name() + ": token ids of shape " + to_string(s) +
                          " must be [batch, seq] with 1 <= seq <= block_size " + std::to_string(block_size_) +
                          " (vocab " + std::to_string(vocab_) + ")");
  const std::int64_t B = s[0], T = s[1], C = n_embd_;
  if (positions_.numel() != T) {
    positions_.resize({T});
    for (std::int64_t t = 0; t < T; ++t) positions_.data()[t] = static_cast<float>(t);
  }
  const Tensor& tokens = wte.forward(input, context);         // [B, T, C]; checks the ids
  const Tensor& positions = wpe.forward(positions_, context);  // [T, C]
  sum_.resize({B, T, C});
  for (std::int64_t b = 0; b < B; ++b) {
    const float* x = tokens.data() + b * T * C;
    float* y = sum_.data() + b * T * C;
    for (std::int64_t i = 0; i < T * C; ++i) y[i] = x[i] + positions.data()[i];
  }
  return dropout.forward(sum_, context);
}

const Tensor& TokenPositionEmbedding::backward(const Tensor& grad_output) {
  const Tensor& g = dropout.backward(grad_output);
  const std::int64_t B = sum_.dim(0), T = sum_.dim(1), C = n_embd_;
  grad_positions_.resize({T, C});
  grad_positions_.fill(0.0f);
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t i = 0; i < T * C; ++i) grad_positions_.data()[i] += g.data()[b * T * C + i];
  wpe.backward(grad_positions_);
  return wte.backward(g);  // accumulates the token rows; empty: ids carry no gradient
}

// ---- SequenceCrossEntropy ----
float SequenceCrossEntropy::forward(const Tensor& logits, std::span<const std::int32_t> targets) {
  const std::int64_t classes = logits.shape().empty() ? 0 : logits.shape().back();
  const std::int64_t rows = classes > 0 ? logits.numel() / classes : 0;
  if (logits.shape().size() < 2 || classes < 1 || rows != static_cast<std::int64_t>(targets.size()))
    throw InvalidArgument("SequenceCrossEntropy: logits " + to_string(logits.shape()) +
                          " need shape [batch, seq, vocab] with batch * seq = " + std::to_string(targets.size()) +
                          " (the number of targets)");
  count_ = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const std::int32_t target = targets[r];
    if (target == ignore_index_) continue;
    if (target < 0 || target >= classes)
      throw InvalidArgument("SequenceCrossEntropy: target " + std::to_string(target) + " at position " +
                            std::to_string(r) + " is outside [0, " + std::to_string(classes) +
                            ") and is not the ignore index " + std::to_string(ignore_index_));
    ++count_;
  }
  grad_.resize(logits.shape());
  correct_ = 0;
  sum_ = 0.0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* z = logits.data() + r * classes;
    float* g = grad_.data() + r * classes;
    const std::int32_t target = targets[r];
    if (target == ignore_index_) {
      std::fill(g, g + classes, 0.0f);
      continue;
    }
    sum_ += detail::softmax_cross_entropy_row(z, classes, target, count_, g);
    correct_ += (std::max_element(z, z + classes) - z) == target;
  }
  loss_ = count_ > 0 ? static_cast<float>(sum_ / count_) : std::numeric_limits<float>::quiet_NaN();
  return loss_;
}

// ---- release_activations (activation checkpointing) ----
void CausalSelfAttention::release_activations(bool keep_output) {
  c_attn.release_activations(false);
  for (Tensor* t : {&qkv_, &probs_, &mask_, &heads_, &grad_qkv_, &dropped_, &grad_scores_}) *t = Tensor();
  c_proj.release_activations(keep_output);  // its output is the attention's
}

void TransformerBlock::release_activations(bool keep_output) {
  for (Module* child : children()) child->release_activations(false);
  for (Tensor* t : {&residual_, &grad_residual_, &grad_input_}) *t = Tensor();
  if (!keep_output) output_ = Tensor();
}

void TokenPositionEmbedding::release_activations(bool keep_output) {
  wte.release_activations(false);
  wpe.release_activations(false);
  grad_positions_ = Tensor();
  if (!keep_output) sum_ = Tensor();
  dropout.release_activations(keep_output);
}

}  // namespace zs::nn
