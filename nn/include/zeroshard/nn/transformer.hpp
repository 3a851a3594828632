#pragma once
// The modules of a GPT-style (GPT-2 / nanoGPT) decoder-only transformer, with explicit forward
// and backward as every nn module (docs/custom-modules.md):
//
//   TokenPositionEmbedding  ids [batch, seq] -> [batch, seq, n_embd]   (wte + wpe, dropout)
//   TransformerBlock x n    [batch, seq, n_embd] -> same               (pre-LayerNorm, residual)
//     CausalSelfAttention   [batch, seq, n_embd] -> same               (inside each block)
//   LayerNorm               [batch, seq, n_embd] -> same               (layers.hpp, ln_f)
//   TiedLinear              [batch, seq, n_embd] -> [batch, seq, vocab] (layers.hpp, tied to wte)
//   SequenceCrossEntropy    logits [batch, seq, vocab], targets [batch, seq] -> mean loss
//
// Tensors are host float32, row-major. Every module keeps its output and its input gradient
// as members reused from step to step (no allocation on the hot path once shapes are known);
// forward caches what backward needs (the caches hold the last forward only); backward
// *accumulates* parameter gradients and returns the gradient of the input.
//
// Initialisation: GPT-2's / nanoGPT's. Every Linear weight (c_attn, c_proj, c_fc) ~ N(0, 0.02)
// with zero biases, both embedding tables ~ N(0, 0.02), LayerNorm gain 1 and bias 0 (kInitStd;
// Linear::init_normal, Embedding::init_normal). nanoGPT additionally scales the weights of
// the projections that feed the residual stream (attn.c_proj, mlp_proj) by 1/sqrt(2 n_layer),
// which a block cannot know: a model builder that wants it calls
// `block.attn.c_proj.init_normal(0.02f / std::sqrt(2.0f * n_layer))` (and the same on
// `block.mlp_proj`) before initialize_parameters.
//
// Dropout follows PyTorch's inverted dropout (keep with probability 1 - p, scale by 1/(1-p)):
// active only when ForwardContext::training is true and p > 0, with the masks drawn from
// ForwardContext::random (InvalidArgument if it is null then); identity otherwise. The same
// stream state gives the same masks (the engine's recomputation relies on it).

#include <cstdint>
#include <span>
#include <string>

#include "zeroshard/nn/layers.hpp"

namespace zs::nn {

/// GPT-2's standard deviation for weights and embedding tables.
inline constexpr float kInitStd = 0.02f;

/// Multi-head causal self-attention, GPT-2's `attn`:
///   qkv = c_attn(x)                      [batch, seq, 3 n_embd]: q | k | v, head h at columns
///                                        h*head_dim .. (h+1)*head_dim - 1 of each third
///   att = softmax(q k^T / sqrt(head_dim)) per head, position t attending to positions <= t
///   att = dropout(att)                   (attn_dropout_p, training only)
///   y   = att v, heads concatenated      [batch, seq, n_embd]
///   out = c_proj(y)                      [batch, seq, n_embd]
/// Input and output [batch, seq, n_embd], float32; any seq >= 1 (the sequence limit is the
/// embedding's block_size). head_dim = n_embd / n_head. Output at position t depends on input
/// positions <= t only.
///
/// Parameters (two Linear children, listed by children()): `<name>.c_attn.weight`
/// [3 n_embd, n_embd], `<name>.c_attn.bias` [3 n_embd], `<name>.c_proj.weight`
/// [n_embd, n_embd], `<name>.c_proj.bias` [n_embd]; N(0, 0.02) weights, zero biases.
///
/// Caches for backward: c_attn's input and output (q, k, v), the softmax probabilities
/// [batch, n_head, seq, seq] (zero above the diagonal), the dropout mask of the same shape
/// (training with p > 0 only), and y (c_proj's input). The scores are computed with a
/// numerically stable softmax (the row maximum subtracted). ForwardContext::progress, when
/// set, is called after every (batch row, head) of the attention core in forward and backward
/// (and inside c_attn / c_proj, as Linear does); the work is split the same way with or
/// without the hook, so results do not depend on it.
///
/// Throws InvalidArgument (naming the module): at construction when n_embd or n_head is not
/// positive, n_embd is not divisible by n_head, or attn_dropout_p is outside [0, 1); in
/// forward when the input is not [batch, seq, n_embd], or when dropout is active and
/// ForwardContext::random is null.
class CausalSelfAttention final : public Module {
 public:
  CausalSelfAttention(std::string name, std::int64_t n_embd, std::int64_t n_head, float attn_dropout_p = 0.0f);

  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Module*> children() override { return {&c_attn, &c_proj}; }
  std::int64_t activation_bytes() const override;
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

  std::int64_t n_embd() const { return n_embd_; }
  std::int64_t n_head() const { return n_head_; }
  std::int64_t head_dim() const { return n_embd_ / n_head_; }

  Linear c_attn;  // n_embd -> 3 n_embd, the fused q, k, v projection
  Linear c_proj;  // n_embd -> n_embd, the output projection

 private:
  std::int64_t n_embd_, n_head_;
  float p_;
  bool active_ = false;                                 // dropout active at the last forward
  const std::function<void()>* progress_ = nullptr;  // from the forward context
  std::int64_t batch_ = 0, seq_ = 0;
  Tensor qkv_;                     // c_attn's output (shared storage)
  Tensor probs_, mask_;            // [batch, n_head, seq, seq]
  Tensor heads_;                   // y: [batch, seq, n_embd]
  Tensor grad_qkv_;                // [batch, seq, 3 n_embd]
  Tensor dropped_, grad_scores_;   // [seq, seq] scratch of one head
};

/// One GPT-2 transformer block, pre-LayerNorm with residual connections:
///   x = x + attn_resid_dropout(attn(ln_1(x)))
///   x = x + mlp_dropout(mlp_proj(mlp_gelu(mlp_fc(ln_2(x)))))
/// with mlp_fc n_embd -> 4 n_embd, the exact GELU (as nn::GELU), mlp_proj 4 n_embd -> n_embd.
/// dropout_p is used for the attention probabilities and both residual dropouts (as nanoGPT's
/// single `dropout`). Input and output [batch, seq, n_embd], float32.
///
/// A container: children() lists ln_1, attn, attn_resid_dropout, ln_2, mlp_fc, mlp_gelu,
/// mlp_proj, mlp_dropout, so all_parameters / initialize_parameters find (in this order):
/// `<name>.ln_1.weight`, `<name>.ln_1.bias` [n_embd]; the four of `<name>.attn`
/// (CausalSelfAttention); `<name>.ln_2.weight`, `<name>.ln_2.bias`; `<name>.mlp.c_fc.weight`
/// [4 n_embd, n_embd], `<name>.mlp.c_fc.bias` [4 n_embd], `<name>.mlp.c_proj.weight`
/// [n_embd, 4 n_embd], `<name>.mlp.c_proj.bias` [n_embd].
///
/// Caches: the first residual sum and the output (its own), plus what each child caches.
/// Backward routes the residual gradients: the gradient reaching the first sum is the incoming
/// gradient plus the MLP branch's input gradient; the input gradient is that plus the attention
/// branch's input gradient. ForwardContext::progress is passed to the children and also called
/// between the attention and MLP halves.
///
/// Throws InvalidArgument (naming the block): at construction as CausalSelfAttention (n_embd,
/// n_head, dropout_p); in forward when the input is not [batch, seq, n_embd].
class TransformerBlock final : public Module {
 public:
  TransformerBlock(std::string name, std::int64_t n_embd, std::int64_t n_head, float dropout_p = 0.0f);

  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Module*> children() override;
  std::int64_t activation_bytes() const override;
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

  LayerNorm ln_1;
  CausalSelfAttention attn;
  Dropout attn_resid_dropout;  // GPT-2's attn.resid_dropout, after attn.c_proj
  LayerNorm ln_2;
  Linear mlp_fc;               // <name>.mlp.c_fc
  GELU mlp_gelu;
  Linear mlp_proj;             // <name>.mlp.c_proj
  Dropout mlp_dropout;

 private:
  std::int64_t n_embd_;
  const std::function<void()>* progress_ = nullptr;
  Tensor residual_, output_;             // [batch, seq, n_embd]
  Tensor grad_residual_, grad_input_;    // [batch, seq, n_embd]
};

/// GPT-2's input layer: out[b, t] = wte[ids[b, t]] + wpe[t], then dropout (dropout_p, 0: none;
/// GPT-2's embd_pdrop).
/// Input: token ids [batch, seq] stored as floats (integers in [0, vocab), exact below 2^24),
/// 1 <= seq <= block_size. Output [batch, seq, n_embd], float32.
///
/// Parameters (two Embedding children, plus a parameterless Dropout): `<name>.wte.weight`
/// [vocab, n_embd], the token table, a plain Parameter an LM head ties to with
/// `TiedLinear("lm_head", embedding.wte.weight)`; `<name>.wpe.weight` [block_size, n_embd],
/// learned positions. Both N(0, 0.02).
///
/// Caches the ids (in wte), the positions' rows and the dropout mask. The ids carry no
/// gradient: backward accumulates into both tables (wpe's rows summed over the batch) and
/// returns an empty tensor, as Embedding does.
///
/// Throws InvalidArgument (naming the module and the shapes): at construction when a size is
/// not positive or dropout_p is outside [0, 1); in forward when the input is not 2-D, seq is
/// 0 or longer than block_size, or an id is not an integer in [0, vocab).
class TokenPositionEmbedding final : public Module {
 public:
  TokenPositionEmbedding(std::string name, std::int64_t vocab, std::int64_t block_size, std::int64_t n_embd,
                         float dropout_p = 0.0f);

  const Tensor& forward(const Tensor& input, const ForwardContext& context) override;
  const Tensor& backward(const Tensor& grad_output) override;
  std::vector<Module*> children() override { return {&wte, &wpe, &dropout}; }
  std::int64_t activation_bytes() const override;
  std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const override;
  void release_activations(bool keep_output) override;

  std::int64_t block_size() const { return block_size_; }

  Embedding wte;    // <name>.wte.weight [vocab, n_embd]
  Embedding wpe;    // <name>.wpe.weight [block_size, n_embd]
  Dropout dropout;  // <name>.drop

 private:
  std::int64_t vocab_, block_size_, n_embd_;
  Tensor positions_;   // [seq]: 0 .. seq-1
  Tensor sum_;         // [batch, seq, n_embd] before dropout
  Tensor grad_positions_;  // [seq, n_embd]
};

/// Mean softmax cross-entropy over every position of a sequence batch, PyTorch's
/// F.cross_entropy(logits.view(-1, vocab), targets.view(-1), ignore_index=ignore_index):
/// the mean over positions whose target is not ignore_index.
/// logits [batch, seq, vocab] float32 (any [..., vocab]: every leading index is one position);
/// targets int32 [batch, seq] flattened row-major (one per position), each in [0, vocab) or
/// equal to ignore_index.
/// gradient(): d(loss)/d(logits), the logits' shape: (softmax - one_hot) / count() at counted
/// positions, 0 at ignored ones. When every position is ignored the loss is NaN (0/0, as
/// PyTorch) and the gradient zero.
/// Throws InvalidArgument if the positions and targets disagree in number, or a target is
/// neither in [0, vocab) nor ignore_index.
class SequenceCrossEntropy {
 public:
  explicit SequenceCrossEntropy(std::int32_t ignore_index = -100) : ignore_index_(ignore_index) {}

  /// Returns the mean loss; keeps the gradient, the count and the loss.
  float forward(const Tensor& logits, std::span<const std::int32_t> targets);
  const Tensor& gradient() const { return grad_; }
  /// The last forward's mean loss.
  float loss() const { return loss_; }
  /// The last forward's summed (not averaged) loss over counted positions, in double: a
  /// caller combining micro-batches or ranks weights by count() with it.
  double sum() const { return sum_; }
  /// Positions counted by the last forward (targets not equal to ignore_index).
  std::int64_t count() const { return count_; }
  /// Counted positions whose arg-max logit equals the target.
  std::int64_t correct() const { return correct_; }
  std::int32_t ignore_index() const { return ignore_index_; }

 private:
  std::int32_t ignore_index_;
  Tensor grad_;
  float loss_ = 0.0f;
  double sum_ = 0.0;
  std::int64_t count_ = 0, correct_ = 0;
};

}  // namespace zs::nn
