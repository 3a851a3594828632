#pragma once
// An independent float64 single-process reference for the engine tests: the layers, loss,
// optimizers and gradient clipping written out from their PyTorch definitions, in double, on
// flat parameter vectors. It shares no code with the runtime (only the standard library), so
// a test that compares the engine with it compares two implementations, never one with
// itself. Verified on its own by tests/unit/test_float64_reference.cpp (gradients against
// central finite differences, optimizers and clipping against closed forms).
//
// Conventions (those of the runtime's modules and of PyTorch):
// - Matrices are row-major; a Linear's weight is [out, in] and y = x W^T + b.
// - A model's parameters are one flat vector in the order the engine's full_parameters()
//   lists them; `Slot`s name the pieces, and weight_decay is false for biases (as
//   zs::nn::Linear sets it) and true for weights and embedding tables.
// - Losses are the mean softmax cross-entropy over the batch; gradients are of that mean.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace zs::testing::reference {

using Vector = std::vector<double>;

// ---------------------------------------------------------------------------------------------
// Layers, as functions of plain arrays.

/// y[rows, out] = x[rows, in] W[out, in]^T (+ b[out] when b is not null).
inline void linear_forward(const double* x, std::int64_t rows, std::int64_t in, const double* w, const double* b,
                           std::int64_t out, double* y) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      double sum = b ? b[o] : 0.0;
      for (std::int64_t i = 0; i < in; ++i) sum += x[r * in + i] * w[o * in + i];
      y[r * out + o] = sum;
    }
}

/// Adds dL/dW (and dL/db when db is not null) for dy = dL/dy; writes dL/dx when dx is not null.
inline void linear_backward(const double* x, std::int64_t rows, std::int64_t in, const double* w, std::int64_t out,
                            const double* dy, double* dw, double* db, double* dx) {
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t o = 0; o < out; ++o) {
      const double g = dy[r * out + o];
      for (std::int64_t i = 0; i < in; ++i) dw[o * in + i] += g * x[r * in + i];
      if (db) db[o] += g;
    }
  if (!dx) return;
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::int64_t i = 0; i < in; ++i) {
      double sum = 0;
      for (std::int64_t o = 0; o < out; ++o) sum += dy[r * out + o] * w[o * in + i];
      dx[r * in + i] = sum;
    }
}

inline void relu_forward(const double* x, std::int64_t n, double* y) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > 0 ? x[i] : 0.0;
}

/// dx = dy where the input was positive, else 0 (the subgradient 0 at 0, as PyTorch).
inline void relu_backward(const double* x, const double* dy, std::int64_t n, double* dx) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = x[i] > 0 ? dy[i] : 0.0;
}

/// y[b, :] = table[tokens[b], :].
inline void embedding_forward(const std::vector<std::int64_t>& tokens, const double* table, std::int64_t vocab,
                              std::int64_t dim, double* y) {
  for (std::size_t b = 0; b < tokens.size(); ++b) {
    if (tokens[b] < 0 || tokens[b] >= vocab) throw std::out_of_range("embedding: token outside the table");
    for (std::int64_t d = 0; d < dim; ++d) y[b * dim + d] = table[tokens[b] * dim + d];
  }
}

/// dtable[tokens[b], :] += dy[b, :].
inline void embedding_backward(const std::vector<std::int64_t>& tokens, std::int64_t dim, const double* dy,
                               double* dtable) {
  for (std::size_t b = 0; b < tokens.size(); ++b)
    for (std::int64_t d = 0; d < dim; ++d) dtable[tokens[b] * dim + d] += dy[b * dim + d];
}

/// Mean over rows of -log softmax(logits[r])[labels[r]]; writes d(mean)/d(logits) when
/// dlogits is not null.
inline double softmax_cross_entropy(const double* logits, std::int64_t rows, std::int64_t classes,
                                    const std::vector<std::int64_t>& labels, double* dlogits) {
  double total = 0;
  for (std::int64_t r = 0; r < rows; ++r) {
    const double* z = logits + r * classes;
    const std::int64_t label = labels[r];
    if (label < 0 || label >= classes) throw std::out_of_range("cross-entropy: label outside the classes");
    double max = z[0];
    for (std::int64_t c = 1; c < classes; ++c) max = std::max(max, z[c]);
    double sum = 0;
    for (std::int64_t c = 0; c < classes; ++c) sum += std::exp(z[c] - max);
    total += std::log(sum) + max - z[label];
    if (dlogits)
      for (std::int64_t c = 0; c < classes; ++c)
        dlogits[r * classes + c] = (std::exp(z[c] - max) / sum - (c == label ? 1.0 : 0.0)) / static_cast<double>(rows);
  }
  return total / static_cast<double>(rows);
}

// ---------------------------------------------------------------------------------------------
// Models on flat parameter vectors.

/// One named tensor inside a flat parameter vector.
struct Slot {
  std::string name;
  std::int64_t offset = 0, numel = 0;
  bool weight_decay = true;
};

/// Per element: whether weight decay applies (the optimizers' mask).
inline std::vector<bool> decay_mask(const std::vector<Slot>& slots) {
  std::int64_t size = 0;
  for (const Slot& s : slots) size = std::max(size, s.offset + s.numel);
  std::vector<bool> mask(static_cast<std::size_t>(size), false);
  for (const Slot& s : slots)
    for (std::int64_t i = s.offset; i < s.offset + s.numel; ++i) mask[static_cast<std::size_t>(i)] = s.weight_decay;
  return mask;
}

/// Linear(in, hidden) -> ReLU -> Linear(hidden, classes) -> mean cross-entropy.
/// Parameters: fc1.weight [hidden, in], fc1.bias [hidden], fc2.weight [classes, hidden],
/// fc2.bias [classes].
struct Mlp {
  std::int64_t in = 0, hidden = 0, classes = 0;

  std::vector<Slot> slots() const {
    std::vector<Slot> s;
    std::int64_t at = 0;
    auto add = [&](const std::string& name, std::int64_t n, bool decay) {
      s.push_back({name, at, n, decay});
      at += n;
    };
    add("fc1.weight", hidden * in, true);
    add("fc1.bias", hidden, false);
    add("fc2.weight", classes * hidden, true);
    add("fc2.bias", classes, false);
    return s;
  }
  std::int64_t size() const { return hidden * in + hidden + classes * hidden + classes; }

  /// fc1's outputs before the ReLU, [rows, hidden] (lets a test keep finite differences away
  /// from the kink).
  Vector preactivations(const Vector& p, const Vector& x) const {
    const std::int64_t rows = static_cast<std::int64_t>(x.size()) / in;
    Vector h(static_cast<std::size_t>(rows * hidden));
    linear_forward(x.data(), rows, in, p.data(), p.data() + hidden * in, hidden, h.data());
    return h;
  }

  /// The mean loss over the rows of x [rows, in]; when grad is not null, *grad = its gradient.
  double loss(const Vector& p, const Vector& x, const std::vector<std::int64_t>& labels, Vector* grad) const {
    check(p);
    const std::int64_t rows = static_cast<std::int64_t>(labels.size());
    if (static_cast<std::int64_t>(x.size()) != rows * in) throw std::invalid_argument("Mlp: x and labels disagree");
    const double *w1 = p.data(), *b1 = w1 + hidden * in, *w2 = b1 + hidden, *b2 = w2 + classes * hidden;
    Vector h = preactivations(p, x), a(h.size()), z(static_cast<std::size_t>(rows * classes));
    relu_forward(h.data(), rows * hidden, a.data());
    linear_forward(a.data(), rows, hidden, w2, b2, classes, z.data());
    Vector dz(z.size());
    const double l = softmax_cross_entropy(z.data(), rows, classes, labels, grad ? dz.data() : nullptr);
    if (!grad) return l;
    grad->assign(p.size(), 0.0);
    double *dw1 = grad->data(), *db1 = dw1 + hidden * in, *dw2 = db1 + hidden, *db2 = dw2 + classes * hidden;
    Vector da(a.size()), dh(h.size());
    linear_backward(a.data(), rows, hidden, w2, classes, dz.data(), dw2, db2, da.data());
    relu_backward(h.data(), da.data(), rows * hidden, dh.data());
    linear_backward(x.data(), rows, in, w1, hidden, dh.data(), dw1, db1, nullptr);
    return l;
  }

 private:
  void check(const Vector& p) const {
    if (static_cast<std::int64_t>(p.size()) != size()) throw std::invalid_argument("Mlp: wrong parameter count");
  }
};

/// A tiny language model whose output head is tied to its token embedding:
/// Embedding(vocab, dim) -> Linear(dim, dim) -> ReLU -> logits = h E^T [rows, vocab] ->
/// mean cross-entropy. Parameters (each once): emb.weight E [vocab, dim], fc.weight [dim, dim],
/// fc.bias [dim]. E's gradient is the sum of its two uses (the lookup and the head).
struct TiedLm {
  std::int64_t vocab = 0, dim = 0;

  std::vector<Slot> slots() const {
    return {{"emb.weight", 0, vocab * dim, true},
            {"fc.weight", vocab * dim, dim * dim, true},
            {"fc.bias", vocab * dim + dim * dim, dim, false}};
  }
  std::int64_t size() const { return vocab * dim + dim * dim + dim; }

  /// fc's outputs before the ReLU, [rows, dim].
  Vector preactivations(const Vector& p, const std::vector<std::int64_t>& tokens) const {
    const std::int64_t rows = static_cast<std::int64_t>(tokens.size());
    Vector e(static_cast<std::size_t>(rows * dim)), h(e.size());
    embedding_forward(tokens, p.data(), vocab, dim, e.data());
    linear_forward(e.data(), rows, dim, p.data() + vocab * dim, p.data() + vocab * dim + dim * dim, dim, h.data());
    return h;
  }

  double loss(const Vector& p, const std::vector<std::int64_t>& tokens, const std::vector<std::int64_t>& labels,
              Vector* grad) const {
    if (static_cast<std::int64_t>(p.size()) != size()) throw std::invalid_argument("TiedLm: wrong parameter count");
    if (tokens.size() != labels.size()) throw std::invalid_argument("TiedLm: tokens and labels disagree");
    const std::int64_t rows = static_cast<std::int64_t>(tokens.size());
    const double *table = p.data(), *w = table + vocab * dim, *b = w + dim * dim;
    Vector e(static_cast<std::size_t>(rows * dim)), h(e.size()), a(e.size()), z(static_cast<std::size_t>(rows * vocab));
    embedding_forward(tokens, table, vocab, dim, e.data());
    linear_forward(e.data(), rows, dim, w, b, dim, h.data());
    relu_forward(h.data(), rows * dim, a.data());
    linear_forward(a.data(), rows, dim, table, nullptr, vocab, z.data());  // the tied head
    Vector dz(z.size());
    const double l = softmax_cross_entropy(z.data(), rows, vocab, labels, grad ? dz.data() : nullptr);
    if (!grad) return l;
    grad->assign(p.size(), 0.0);
    double *dtable = grad->data(), *dw = dtable + vocab * dim, *db = dw + dim * dim;
    Vector da(a.size()), dh(h.size()), de(e.size());
    linear_backward(a.data(), rows, dim, table, vocab, dz.data(), dtable, nullptr, da.data());  // head use
    relu_backward(h.data(), da.data(), rows * dim, dh.data());
    linear_backward(e.data(), rows, dim, w, dim, dh.data(), dw, db, de.data());
    embedding_backward(tokens, dim, de.data(), dtable);  // lookup use, added to the head's
    return l;
  }
};

// ---------------------------------------------------------------------------------------------
// Gradient clipping: torch.nn.utils.clip_grad_norm_(parameters, max_norm, norm_type).

struct ClipResult {
  double norm = 0;       // the total norm before clipping
  bool clipped = false;  // whether the gradients were scaled
  double coefficient = 1;
};

/// The total norm of g (norm_type 2: Euclidean; infinity: max |g|). NaN when any element is
/// NaN (for both types, as torch), infinity when an element is infinite.
inline double gradient_norm(const Vector& g, double norm_type) {
  bool nan = false;
  double result = 0;
  if (std::isinf(norm_type)) {
    for (double v : g) {
      nan |= std::isnan(v);
      result = std::max(result, std::abs(v));
    }
  } else if (norm_type == 2) {
    for (double v : g) {
      nan |= std::isnan(v);
      result += v * v;
    }
    result = std::sqrt(result);
  } else {
    throw std::invalid_argument("gradient_norm: norm_type must be 2 or infinity");
  }
  return nan ? std::numeric_limits<double>::quiet_NaN() : result;
}

/// clip_coef = max_norm / (norm + 1e-6); when max_norm > 0 and clip_coef < 1, g *= clip_coef.
/// max_norm 0 only measures.
inline ClipResult clip_grad_norm(Vector& g, double max_norm, double norm_type) {
  ClipResult r;
  r.norm = gradient_norm(g, norm_type);
  if (max_norm > 0 && std::isfinite(r.norm)) {
    const double coefficient = max_norm / (r.norm + 1e-6);
    if (coefficient < 1) {
      r.clipped = true;
      r.coefficient = coefficient;
      for (double& v : g) v *= coefficient;
    }
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Optimizers (torch.optim.SGD and torch.optim.AdamW, one parameter group with weight decay
// restricted to the elements `decay` marks). Each step() call is one update; the step count
// used for SGD's first momentum step and Adam's bias corrections counts these calls.

struct SgdSettings {
  double momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false;
};

class Sgd {
 public:
  explicit Sgd(SgdSettings settings) : s_(settings) {}
  void step(Vector& p, const Vector& g, const std::vector<bool>& decay, double lr) {
    if (buffer_.empty()) buffer_.assign(p.size(), 0.0);
    ++steps_;
    for (std::size_t i = 0; i < p.size(); ++i) {
      double d = g[i] + (decay[i] ? s_.weight_decay * p[i] : 0.0);
      if (s_.momentum != 0) {
        buffer_[i] = steps_ == 1 ? d : s_.momentum * buffer_[i] + (1 - s_.dampening) * d;
        d = s_.nesterov ? d + s_.momentum * buffer_[i] : buffer_[i];
      }
      p[i] -= lr * d;
    }
  }
  const Vector& momentum_buffer() const { return buffer_; }
  std::int64_t steps() const { return steps_; }

 private:
  SgdSettings s_;
  Vector buffer_;
  std::int64_t steps_ = 0;
};

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0.01;
};

class AdamW {
 public:
  explicit AdamW(AdamWSettings settings) : s_(settings) {}
  void step(Vector& p, const Vector& g, const std::vector<bool>& decay, double lr) {
    if (m_.empty()) m_.assign(p.size(), 0.0), v_.assign(p.size(), 0.0);
    ++steps_;
    const double t = static_cast<double>(steps_);
    const double correction1 = 1 - std::pow(s_.beta1, t), correction2 = 1 - std::pow(s_.beta2, t);
    for (std::size_t i = 0; i < p.size(); ++i) {
      if (decay[i]) p[i] *= 1 - lr * s_.weight_decay;  // decoupled decay first, as torch
      m_[i] = s_.beta1 * m_[i] + (1 - s_.beta1) * g[i];
      v_[i] = s_.beta2 * v_[i] + (1 - s_.beta2) * g[i] * g[i];
      const double denominator = std::sqrt(v_[i]) / std::sqrt(correction2) + s_.eps;
      p[i] -= lr / correction1 * m_[i] / denominator;
    }
  }
  const Vector& exp_avg() const { return m_; }
  const Vector& exp_avg_sq() const { return v_; }
  std::int64_t steps() const { return steps_; }

 private:
  AdamWSettings s_;
  Vector m_, v_;
  std::int64_t steps_ = 0;
};

// ---------------------------------------------------------------------------------------------
// Comparison helper.

/// max over i of |actual[i] - expected[i]| / max(|expected[i]|, floor): the relative error,
/// with `floor` keeping elements near zero from dominating. Infinity when sizes differ or an
/// actual value is not finite.
template <class T>
double worst_relative_error(const std::vector<T>& actual, const Vector& expected, double floor) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double a = static_cast<double>(actual[i]);
    if (!std::isfinite(a)) return std::numeric_limits<double>::infinity();
    worst = std::max(worst, std::abs(a - expected[i]) / std::max(std::abs(expected[i]), floor));
  }
  return worst;
}

}  // namespace zs::testing::reference
