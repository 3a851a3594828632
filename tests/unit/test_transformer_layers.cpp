// The GPT modules of nn/transformer.hpp (and LayerNorm / TiedLinear on [batch, seq, features]):
// backward against central finite differences (a scalar loss accumulated in float64,
// Richardson-extrapolated), attention's forward against a naive float64 reference, causality,
// dropout (identity in eval, reproducible in training), accumulation of gradients over two
// backward calls, shape errors, and the cross-entropy with an ignore index by hand.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "zeroshard/error.hpp"
#include "zeroshard/nn/layers.hpp"
#include "zeroshard/nn/transformer.hpp"

namespace zs::nn {
namespace {

// The tiny configuration of every check: odd sequence length, two heads.
constexpr std::int64_t kBatch = 2, kSeq = 5, kEmbd = 8, kHeads = 2, kVocab = 11, kBlockSize = 7;

ForwardContext eval_context() { return {.training = false, .random = nullptr}; }

Tensor random_tensor(Shape shape, unsigned seed, float std = 1.0f) {
  Tensor x(std::move(shape));
  std::mt19937_64 random(seed);
  std::normal_distribution<float> normal(0, std);
  for (std::int64_t i = 0; i < x.numel(); ++i) x.data()[i] = normal(random);
  return x;
}

Tensor random_ids(Shape shape, unsigned seed, std::int64_t vocab = kVocab) {
  Tensor ids(std::move(shape));
  std::mt19937_64 random(seed);
  std::uniform_int_distribution<std::int64_t> pick(0, vocab - 1);
  for (std::int64_t i = 0; i < ids.numel(); ++i) ids.data()[i] = static_cast<float>(pick(random));
  return ids;
}

Tensor copy_of(const Tensor& t) {
  Tensor out(t.shape());
  std::copy_n(t.data(), t.numel(), out.data());
  return out;
}

// Each parameter once (a tied weight is listed by two modules).
std::vector<Parameter*> unique_parameters(Module& m) {
  std::vector<Parameter*> out;
  std::set<Parameter*> seen;
  for (Parameter* p : all_parameters(m))
    if (seen.insert(p).second) out.push_back(p);
  return out;
}

void allocate_unique(Module& m) {
  for (Parameter* p : unique_parameters(m)) {
    p->value = Tensor(p->shape);
    p->grad = Tensor(p->shape);
  }
}

// Values far from GPT-2's small init so that every path carries an O(1) gradient: N(0, std)
// everywhere, 1 + N(0, std) for norm gains.
void randomize_parameters(Module& m, unsigned seed, float std = 0.4f) {
  std::mt19937_64 random(seed);
  std::normal_distribution<float> normal(0, std);
  for (Parameter* p : unique_parameters(m)) {
    const bool gain = p->shape.size() == 1 && !p->weight_decay && p->name.find("ln") != std::string::npos &&
                      p->name.ends_with(".weight");
    for (std::int64_t i = 0; i < p->value.numel(); ++i) p->value.data()[i] = (gain ? 1.0f : 0.0f) + normal(random);
  }
}

void zero_gradients(Module& m) {
  for (Parameter* p : unique_parameters(m)) p->grad.fill(0.0f);
}

// d loss / d slot by central differences of a loss evaluated in double, Richardson-extrapolated
// over steps h and h/2 (cancels the h^2 term).
double numeric_derivative(float& slot, const std::function<double()>& loss, float h = 1e-2f) {
  const float saved = slot;
  auto central = [&](float step) {
    const float up = saved + step, down = saved - step;
    slot = up;
    const double plus = loss();
    slot = down;
    const double minus = loss();
    slot = saved;
    return (plus - minus) / (static_cast<double>(up) - static_cast<double>(down));
  };
  const double coarse = central(h), fine = central(h / 2);
  return (4 * fine - coarse) / 3;
}

constexpr double kAbsTolerance = 2e-3, kRelTolerance = 2e-3;

void expect_close(double analytic, double numeric, const std::string& what) {
  EXPECT_LE(std::abs(analytic - numeric), kAbsTolerance + kRelTolerance * std::abs(numeric))
      << what << ": analytic " << analytic << " vs numeric " << numeric;
}

struct CheckOptions {
  bool input_has_gradient = true;
  // Training mode with dropout: every forward draws its masks from a stream seeded with this
  // (the same masks each time), so the check covers backward through them. 0: eval mode.
  std::uint64_t dropout_seed = 0;
};

// Checks d(probe)/d(input) and d(probe)/d(each parameter) for the probe loss
// L = sum_i c_i y_i (c fixed, random) accumulated in float64. Parameters must be set.
void check_gradients(Module& m, Tensor x, CheckOptions options = {}) {
  std::mt19937_64 stream;
  auto context = [&] {
    if (!options.dropout_seed) return eval_context();
    stream.seed(options.dropout_seed);
    return ForwardContext{.training = true, .random = &stream};
  };
  const Tensor& y = m.forward(x, context());
  std::mt19937_64 random(3);
  std::uniform_real_distribution<float> uniform(-1, 1);
  std::vector<float> c(y.numel());
  for (float& v : c) v = uniform(random);
  Tensor grad_output(y.shape());
  std::copy(c.begin(), c.end(), grad_output.data());
  zero_gradients(m);
  const Tensor grad_input = copy_of(m.backward(grad_output));

  auto probe = [&] {
    const Tensor& out = m.forward(x, context());
    double total = 0;
    for (std::int64_t i = 0; i < out.numel(); ++i) total += static_cast<double>(c[i]) * out.data()[i];
    return total;
  };
  if (options.input_has_gradient) {
    ASSERT_EQ(grad_input.shape(), x.shape()) << m.name();
    for (std::int64_t i = 0; i < x.numel(); ++i)
      expect_close(grad_input.data()[i], numeric_derivative(x.data()[i], probe), m.name() + " input " + std::to_string(i));
  } else {
    EXPECT_TRUE(grad_input.empty()) << m.name() << ": ids carry no gradient";
  }
  for (Parameter* p : unique_parameters(m))
    for (std::int64_t i = 0; i < p->value.numel(); ++i)
      expect_close(p->grad.data()[i], numeric_derivative(p->value.data()[i], probe), p->name + " " + std::to_string(i));
}

template <class M>
void setup(M& m, unsigned seed) {
  allocate_unique(m);
  randomize_parameters(m, seed);
}

// ---- LayerNorm and TiedLinear on [batch, seq, features] ----

TEST(TransformerLayers, LayerNormNormalisesTheLastDimensionOfSequences) {
  LayerNorm ln("ln", kEmbd);
  setup(ln, 1);
  const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 2, 3.0f);
  const Tensor& y = ln.forward(x, eval_context());
  ASSERT_EQ(y.shape(), (Shape{kBatch, kSeq, kEmbd}));
  for (std::int64_t row = 0; row < kBatch * kSeq; ++row) {
    const float* xr = x.data() + row * kEmbd;
    double mean = 0, variance = 0;
    for (int i = 0; i < kEmbd; ++i) mean += xr[i];
    mean /= kEmbd;
    for (int i = 0; i < kEmbd; ++i) variance += (xr[i] - mean) * (xr[i] - mean);
    variance /= kEmbd;
    for (int i = 0; i < kEmbd; ++i) {
      const double want = (xr[i] - mean) / std::sqrt(variance + 1e-5) * ln.gain.value.data()[i] + ln.bias.value.data()[i];
      EXPECT_NEAR(y.data()[row * kEmbd + i], want, 1e-5) << "row " << row << " feature " << i;
    }
  }
  check_gradients(ln, random_tensor({kBatch, kSeq, kEmbd}, 3));
  EXPECT_THROW(ln.forward(random_tensor({kBatch, kSeq, kEmbd + 1}, 4), eval_context()), InvalidArgument);
}

TEST(TransformerLayers, TiedLinearMapsSequencesToLogits) {
  Embedding table("wte", kVocab, kEmbd);
  TiedLinear head("lm_head", table.weight);
  TiedLinear head_with_bias("lm_head_b", table.weight, /*bias=*/true);
  for (TiedLinear* h : {&head, &head_with_bias}) {
    setup(*h, 5);
    const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 6);
    const Tensor& y = h->forward(x, eval_context());
    ASSERT_EQ(y.shape(), (Shape{kBatch, kSeq, kVocab}));
    for (std::int64_t row = 0; row < kBatch * kSeq; ++row)
      for (std::int64_t v = 0; v < kVocab; ++v) {
        double want = h == &head_with_bias ? h->bias.value.data()[v] : 0.0;
        for (std::int64_t i = 0; i < kEmbd; ++i)
          want += static_cast<double>(x.data()[row * kEmbd + i]) * table.weight.value.data()[v * kEmbd + i];
        EXPECT_NEAR(y.data()[row * kVocab + v], want, 1e-5);
      }
    check_gradients(*h, x);
  }
}

// ---- CausalSelfAttention ----

// Naive float64 attention with explicit loops over b, t, h, j, d, from the module's parameters.
std::vector<double> reference_attention(CausalSelfAttention& m, const Tensor& x) {
  const std::int64_t B = x.dim(0), T = x.dim(1), C = m.n_embd(), H = m.n_head(), D = C / H;
  const float* wa = m.c_attn.weight.value.data();
  const float* ba = m.c_attn.bias.value.data();
  const float* wp = m.c_proj.weight.value.data();
  const float* bp = m.c_proj.bias.value.data();
  std::vector<double> qkv(B * T * 3 * C), y(B * T * C), out(B * T * C);
  for (std::int64_t r = 0; r < B * T; ++r)
    for (std::int64_t o = 0; o < 3 * C; ++o) {
      double s = ba[o];
      for (std::int64_t i = 0; i < C; ++i) s += static_cast<double>(wa[o * C + i]) * x.data()[r * C + i];
      qkv[r * 3 * C + o] = s;
    }
  auto q = [&](std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d) { return qkv[(b * T + t) * 3 * C + h * D + d]; };
  auto k = [&](std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d) { return qkv[(b * T + t) * 3 * C + C + h * D + d]; };
  auto v = [&](std::int64_t b, std::int64_t t, std::int64_t h, std::int64_t d) { return qkv[(b * T + t) * 3 * C + 2 * C + h * D + d]; };
  for (std::int64_t b = 0; b < B; ++b)
    for (std::int64_t h = 0; h < H; ++h)
      for (std::int64_t t = 0; t < T; ++t) {
        std::vector<double> score(T, -std::numeric_limits<double>::infinity());
        for (std::int64_t j = 0; j <= t; ++j) {  // causal mask: j > t stays -inf
          double s = 0;
          for (std::int64_t d = 0; d < D; ++d) s += q(b, t, h, d) * k(b, j, h, d);
          score[j] = s / std::sqrt(static_cast<double>(D));
        }
        const double max = *std::max_element(score.begin(), score.end());
        double sum = 0;
        for (std::int64_t j = 0; j < T; ++j) sum += std::exp(score[j] - max);
        for (std::int64_t d = 0; d < D; ++d) {
          double s = 0;
          for (std::int64_t j = 0; j < T; ++j) s += std::exp(score[j] - max) / sum * v(b, j, h, d);
          y[(b * T + t) * C + h * D + d] = s;
        }
      }
  for (std::int64_t r = 0; r < B * T; ++r)
    for (std::int64_t o = 0; o < C; ++o) {
      double s = bp[o];
      for (std::int64_t i = 0; i < C; ++i) s += static_cast<double>(wp[o * C + i]) * y[r * C + i];
      out[r * C + o] = s;
    }
  return out;
}

TEST(TransformerLayers, AttentionMatchesFloat64Reference) {
  for (const auto& [seq, heads] : std::vector<std::pair<std::int64_t, std::int64_t>>{{1, 2}, {2, 2}, {5, 2}, {7, 4}, {9, 1}, {6, 8}}) {
    CausalSelfAttention m("attn", kEmbd, heads);
    setup(m, 7);
    const Tensor x = random_tensor({kBatch, seq, kEmbd}, 8);
    const Tensor& y = m.forward(x, eval_context());
    ASSERT_EQ(y.shape(), (Shape{kBatch, seq, kEmbd}));
    const std::vector<double> want = reference_attention(m, x);
    for (std::int64_t i = 0; i < y.numel(); ++i)
      ASSERT_NEAR(y.data()[i], want[i], 1e-5 * std::max(1.0, std::abs(want[i]))) << "seq " << seq << " heads " << heads << " element " << i;
  }
}

TEST(TransformerLayers, AttentionIsCausal) {
  for (std::int64_t seq : {kSeq, std::int64_t{8}}) {
    CausalSelfAttention m("attn", kEmbd, kHeads);
    setup(m, 9);
    Tensor x = random_tensor({kBatch, seq, kEmbd}, 10);
    const Tensor before = copy_of(m.forward(x, eval_context()));
    for (std::int64_t changed = 0; changed < seq; ++changed) {
      Tensor perturbed = copy_of(x);
      for (std::int64_t b = 0; b < kBatch; ++b)
        for (std::int64_t i = 0; i < kEmbd; ++i) perturbed.data()[(b * seq + changed) * kEmbd + i] += 1.5f;
      const Tensor& after = m.forward(perturbed, eval_context());
      for (std::int64_t b = 0; b < kBatch; ++b)
        for (std::int64_t t = 0; t < seq; ++t) {
          bool differs = false;
          for (std::int64_t i = 0; i < kEmbd; ++i) {
            const std::int64_t at = (b * seq + t) * kEmbd + i;
            if (t < changed) ASSERT_EQ(after.data()[at], before.data()[at]) << "position " << t << " saw position " << changed;
            differs = differs || after.data()[at] != before.data()[at];
          }
          if (t >= changed) EXPECT_TRUE(differs) << "position " << t << " ignores position " << changed;
        }
    }
  }
}

TEST(TransformerLayers, AttentionGradients) {
  CausalSelfAttention m("attn", kEmbd, kHeads);
  setup(m, 11);
  check_gradients(m, random_tensor({kBatch, kSeq, kEmbd}, 12));
}

TEST(TransformerLayers, AttentionGradientsThroughDropoutMasks) {
  CausalSelfAttention m("attn", kEmbd, kHeads, 0.3f);
  setup(m, 13);
  check_gradients(m, random_tensor({kBatch, kSeq, kEmbd}, 14), {.dropout_seed = 99});
}

TEST(TransformerLayers, AttentionProgressHookLeavesResultsUnchanged) {
  CausalSelfAttention m("attn", kEmbd, kHeads);
  setup(m, 15);
  const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 16);
  const Tensor grad = random_tensor({kBatch, kSeq, kEmbd}, 17);
  const Tensor plain = copy_of(m.forward(x, eval_context()));
  const Tensor plain_grad = copy_of(m.backward(grad));
  int calls = 0;
  const std::function<void()> hook = [&] { ++calls; };
  const Tensor hooked = copy_of(m.forward(x, {.training = false, .random = nullptr, .progress = &hook}));
  const int forward_calls = calls;
  const Tensor hooked_grad = copy_of(m.backward(grad));
  EXPECT_GE(forward_calls, kBatch * kHeads);
  EXPECT_GE(calls - forward_calls, kBatch * kHeads);
  for (std::int64_t i = 0; i < plain.numel(); ++i) {
    ASSERT_EQ(plain.data()[i], hooked.data()[i]);
    ASSERT_EQ(plain_grad.data()[i], hooked_grad.data()[i]);
  }
}

// ---- Dropout in the new modules: identity in eval, reproducible from the stream in training ----

template <class Make>
void check_dropout(Make make, const Tensor& x) {
  auto with_dropout = make(0.3f);
  auto without = make(0.0f);
  allocate_unique(*with_dropout);
  allocate_unique(*without);
  initialize_parameters(*with_dropout, 21);
  initialize_parameters(*without, 21);
  const Tensor reference = copy_of(without->forward(x, eval_context()));
  const Tensor eval = copy_of(with_dropout->forward(x, eval_context()));
  for (std::int64_t i = 0; i < eval.numel(); ++i) ASSERT_EQ(eval.data()[i], reference.data()[i]) << with_dropout->name();

  std::mt19937_64 first(5), second(5), other(6);
  const Tensor a = copy_of(with_dropout->forward(x, {.training = true, .random = &first}));
  const Tensor b = copy_of(with_dropout->forward(x, {.training = true, .random = &second}));
  const Tensor c = copy_of(with_dropout->forward(x, {.training = true, .random = &other}));
  EXPECT_EQ(first(), second()) << "the same number of draws";
  bool differs_from_eval = false, differs_across_seeds = false;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    ASSERT_EQ(a.data()[i], b.data()[i]) << with_dropout->name() << ": same stream, same masks";
    differs_from_eval = differs_from_eval || a.data()[i] != eval.data()[i];
    differs_across_seeds = differs_across_seeds || a.data()[i] != c.data()[i];
  }
  EXPECT_TRUE(differs_from_eval) << with_dropout->name();
  EXPECT_TRUE(differs_across_seeds) << with_dropout->name();
  // p = 0 draws nothing in training: training and eval agree exactly.
  std::mt19937_64 unused(7);
  const Tensor& train_without = without->forward(x, {.training = true, .random = &unused});
  for (std::int64_t i = 0; i < train_without.numel(); ++i) ASSERT_EQ(train_without.data()[i], reference.data()[i]);
  EXPECT_EQ(unused(), std::mt19937_64(7)());
  // Training-mode dropout with no stream is refused.
  EXPECT_THROW(with_dropout->forward(x, {.training = true, .random = nullptr}), InvalidArgument);
}

TEST(TransformerLayers, DropoutIsIdentityInEvalAndReproducibleInTraining) {
  const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 22);
  check_dropout([](float p) { return std::make_unique<CausalSelfAttention>("attn", kEmbd, kHeads, p); }, x);
  check_dropout([](float p) { return std::make_unique<TransformerBlock>("h.0", kEmbd, kHeads, p); }, x);
  check_dropout([](float p) { return std::make_unique<TokenPositionEmbedding>("emb", kVocab, kBlockSize, kEmbd, p); },
                random_ids({kBatch, kSeq}, 23));
}

// ---- TransformerBlock ----

TEST(TransformerLayers, BlockGradients) {
  TransformerBlock m("h.0", kEmbd, kHeads);
  setup(m, 31);
  check_gradients(m, random_tensor({kBatch, kSeq, kEmbd}, 32));
}

TEST(TransformerLayers, BlockGradientsThroughDropoutMasks) {
  TransformerBlock m("h.0", kEmbd, kHeads, 0.2f);
  setup(m, 33);
  check_gradients(m, random_tensor({kBatch, kSeq, kEmbd}, 34), {.dropout_seed = 77});
}

TEST(TransformerLayers, BlockIsTwoResidualBranchesOverItsChildren) {
  TransformerBlock m("h.0", kEmbd, kHeads);
  setup(m, 35);
  const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 36);
  const Tensor y = copy_of(m.forward(x, eval_context()));
  // The same children run one by one: x1 = x + attn(ln_1(x)); y = x1 + c_proj(gelu(c_fc(ln_2(x1)))).
  const ForwardContext context = eval_context();
  const Tensor a = copy_of(m.attn.forward(m.ln_1.forward(x, context), context));
  Tensor x1(x.shape());
  for (std::int64_t i = 0; i < x.numel(); ++i) x1.data()[i] = x.data()[i] + a.data()[i];
  const Tensor& mlp = m.mlp_proj.forward(m.mlp_gelu.forward(m.mlp_fc.forward(m.ln_2.forward(x1, context), context), context), context);
  for (std::int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y.data()[i], x1.data()[i] + mlp.data()[i]);
}

TEST(TransformerLayers, BlockIsCausal) {
  TransformerBlock m("h.0", kEmbd, kHeads);
  setup(m, 37);
  Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 38);
  const Tensor before = copy_of(m.forward(x, eval_context()));
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t i = 0; i < kEmbd; ++i) x.data()[(b * kSeq + 3) * kEmbd + i] -= 2.0f;
  const Tensor& after = m.forward(x, eval_context());
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t t = 0; t < 3; ++t)
      for (std::int64_t i = 0; i < kEmbd; ++i)
        ASSERT_EQ(after.data()[(b * kSeq + t) * kEmbd + i], before.data()[(b * kSeq + t) * kEmbd + i]);
}

// ---- TokenPositionEmbedding ----

TEST(TransformerLayers, EmbeddingAddsTokenAndPositionRows) {
  TokenPositionEmbedding m("emb", kVocab, kBlockSize, kEmbd);
  setup(m, 41);
  const Tensor ids = random_ids({kBatch, kSeq}, 42);
  const Tensor& y = m.forward(ids, eval_context());
  ASSERT_EQ(y.shape(), (Shape{kBatch, kSeq, kEmbd}));
  for (std::int64_t b = 0; b < kBatch; ++b)
    for (std::int64_t t = 0; t < kSeq; ++t) {
      const auto id = static_cast<std::int64_t>(ids.data()[b * kSeq + t]);
      for (std::int64_t i = 0; i < kEmbd; ++i)
        ASSERT_EQ(y.data()[(b * kSeq + t) * kEmbd + i],
                  m.wte.weight.value.data()[id * kEmbd + i] + m.wpe.weight.value.data()[t * kEmbd + i]);
    }
  check_gradients(m, ids, {.input_has_gradient = false});
  // The full block size, then a shorter sequence again (buffers reused).
  EXPECT_EQ(m.forward(random_ids({1, kBlockSize}, 43), eval_context()).shape(), (Shape{1, kBlockSize, kEmbd}));
  EXPECT_EQ(m.forward(random_ids({3, 2}, 44), eval_context()).shape(), (Shape{3, 2, kEmbd}));
}

TEST(TransformerLayers, EmbeddingRejectsLongSequencesBadIdsAndShapes) {
  TokenPositionEmbedding m("emb", kVocab, kBlockSize, kEmbd);
  allocate_unique(m);
  initialize_parameters(m, 1);
  try {
    m.forward(random_ids({kBatch, kBlockSize + 1}, 45), eval_context());
    FAIL() << "a sequence longer than block_size was accepted";
  } catch (const InvalidArgument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("emb"), std::string::npos) << what;
    EXPECT_NE(what.find("[2,8]"), std::string::npos) << what;
    EXPECT_NE(what.find("block_size 7"), std::string::npos) << what;
  }
  Tensor ids = random_ids({kBatch, kSeq}, 46);
  ids.data()[3] = kVocab;
  EXPECT_THROW(m.forward(ids, eval_context()), InvalidArgument);
  ids.data()[3] = 1.5f;
  EXPECT_THROW(m.forward(ids, eval_context()), InvalidArgument);
  EXPECT_THROW(m.forward(random_ids({kBatch * kSeq}, 47), eval_context()), InvalidArgument);
  EXPECT_THROW(m.forward(random_ids({kBatch, kSeq, 1}, 48), eval_context()), InvalidArgument);
  EXPECT_THROW(TokenPositionEmbedding("bad", kVocab, 0, kEmbd), InvalidArgument);
  EXPECT_THROW(TokenPositionEmbedding("bad", kVocab, kBlockSize, kEmbd, 1.0f), InvalidArgument);
}

// ---- Shapes and construction errors ----

TEST(TransformerLayers, AttentionAndBlockRejectBadShapes) {
  CausalSelfAttention attn("h.3.attn", kEmbd, kHeads);
  TransformerBlock block("h.3", kEmbd, kHeads);
  setup(attn, 1);
  setup(block, 2);
  for (Module* m : std::initializer_list<Module*>{&attn, &block}) {
    try {
      m->forward(random_tensor({kBatch, kSeq, kEmbd + 2}, 3), eval_context());
      FAIL() << m->name() << " accepted 10 features";
    } catch (const InvalidArgument& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(m->name()), std::string::npos) << what;
      EXPECT_NE(what.find("[2,5,10]"), std::string::npos) << what;
      EXPECT_NE(what.find("[batch, seq, 8]"), std::string::npos) << what;
    }
    EXPECT_THROW(m->forward(random_tensor({kBatch * kSeq, kEmbd}, 4), eval_context()), InvalidArgument);
  }
  EXPECT_THROW(CausalSelfAttention("a", 10, 3), InvalidArgument);
  EXPECT_THROW(CausalSelfAttention("a", kEmbd, 0), InvalidArgument);
  EXPECT_THROW(CausalSelfAttention("a", kEmbd, kHeads, -0.1f), InvalidArgument);
  EXPECT_THROW(TransformerBlock("b", kEmbd, 3), InvalidArgument);
  EXPECT_THROW(TransformerBlock("b", kEmbd, kHeads, 1.0f), InvalidArgument);
}

// ---- Parameters: names, order, initialisation ----

std::vector<std::string> names_of(Module& m) {
  std::vector<std::string> out;
  for (Parameter* p : all_parameters(m)) out.push_back(p->name);
  return out;
}

TEST(TransformerLayers, ParameterNamesAndShapes) {
  CausalSelfAttention attn("attn", kEmbd, kHeads);
  EXPECT_EQ(names_of(attn), (std::vector<std::string>{"attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                                                      "attn.c_proj.bias"}));
  EXPECT_EQ(attn.c_attn.weight.shape, (Shape{3 * kEmbd, kEmbd}));
  EXPECT_EQ(attn.c_proj.weight.shape, (Shape{kEmbd, kEmbd}));
  TransformerBlock block("h.0", kEmbd, kHeads);
  EXPECT_EQ(names_of(block),
            (std::vector<std::string>{"h.0.ln_1.weight", "h.0.ln_1.bias", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias",
                                      "h.0.attn.c_proj.weight", "h.0.attn.c_proj.bias", "h.0.ln_2.weight", "h.0.ln_2.bias",
                                      "h.0.mlp.c_fc.weight", "h.0.mlp.c_fc.bias", "h.0.mlp.c_proj.weight",
                                      "h.0.mlp.c_proj.bias"}));
  EXPECT_EQ(block.mlp_fc.weight.shape, (Shape{4 * kEmbd, kEmbd}));
  EXPECT_EQ(block.mlp_proj.weight.shape, (Shape{kEmbd, 4 * kEmbd}));
  TokenPositionEmbedding emb("transformer", kVocab, kBlockSize, kEmbd);
  EXPECT_EQ(names_of(emb), (std::vector<std::string>{"transformer.wte.weight", "transformer.wpe.weight"}));
  EXPECT_EQ(emb.wte.weight.shape, (Shape{kVocab, kEmbd}));
  EXPECT_EQ(emb.wpe.weight.shape, (Shape{kBlockSize, kEmbd}));
  for (Parameter* p : all_parameters(block))
    EXPECT_EQ(p->weight_decay, p->name.ends_with("c_attn.weight") || p->name.ends_with("c_proj.weight") ||
                                   p->name.ends_with("c_fc.weight"))
        << p->name;
}

TEST(TransformerLayers, InitialisationIsGpt2s) {
  constexpr std::int64_t embd = 64;
  TransformerBlock block("h.0", embd, 4);
  TokenPositionEmbedding emb("emb", 256, 128, embd);
  for (Module* m : std::initializer_list<Module*>{&block, &emb}) {
    m->allocate_parameters();
    initialize_parameters(*m, 1234);
    for (Parameter* p : all_parameters(*m)) {
      double sum = 0, squares = 0;
      for (std::int64_t i = 0; i < p->value.numel(); ++i) {
        sum += p->value.data()[i];
        squares += static_cast<double>(p->value.data()[i]) * p->value.data()[i];
      }
      const double mean = sum / p->numel(), std = std::sqrt(squares / p->numel() - mean * mean);
      if (p->shape.size() == 2) {  // Linear weights and embedding tables: N(0, 0.02)
        EXPECT_NEAR(std, kInitStd, 0.1 * kInitStd) << p->name;
        EXPECT_NEAR(mean, 0.0, 0.1 * kInitStd) << p->name;
      } else if (p->name.find(".ln_") != std::string::npos && p->name.ends_with(".weight")) {
        EXPECT_EQ(mean, 1.0) << p->name;
        EXPECT_EQ(std, 0.0) << p->name;
      } else {  // biases
        EXPECT_EQ(squares, 0.0) << p->name;
      }
    }
  }
  // The same seed gives the same values (every rank initialises identically).
  TransformerBlock again("h.0", embd, 4);
  again.allocate_parameters();
  initialize_parameters(again, 1234);
  const auto a = all_parameters(block), b = all_parameters(again);
  for (std::size_t k = 0; k < a.size(); ++k)
    ASSERT_TRUE(std::equal(a[k]->value.data(), a[k]->value.data() + a[k]->numel(), b[k]->value.data())) << a[k]->name;
  // Linear's own default stays PyTorch's unless init_normal is called.
  Linear plain("fc", 64, 64);
  plain.allocate_parameters();
  initialize_parameters(plain, 1);
  EXPECT_GT(*std::max_element(plain.bias.value.data(), plain.bias.value.data() + 64), 0.0f);
  EXPECT_THROW(plain.init_normal(0.0f), InvalidArgument);
}

// ---- Backward accumulates ----

// backward twice after one forward: parameter gradients double, the input gradient repeats.
void check_accumulates(Module& m, const Tensor& x, bool input_has_gradient = true) {
  const Tensor& y = m.forward(x, eval_context());
  const Tensor grad = random_tensor(y.shape(), 51);
  zero_gradients(m);
  const Tensor first_input = copy_of(m.backward(grad));
  std::map<Parameter*, Tensor> once;
  for (Parameter* p : unique_parameters(m)) once[p] = copy_of(p->grad);
  const Tensor& second_input = m.backward(grad);
  ASSERT_EQ(second_input.numel(), first_input.numel());
  if (input_has_gradient)
    for (std::int64_t i = 0; i < first_input.numel(); ++i) ASSERT_EQ(second_input.data()[i], first_input.data()[i]);
  for (auto& [p, g] : once) {
    double norm = 0;
    for (std::int64_t i = 0; i < g.numel(); ++i) norm += std::abs(g.data()[i]);
    EXPECT_GT(norm, 0.0) << p->name;
    for (std::int64_t i = 0; i < g.numel(); ++i)
      ASSERT_NEAR(p->grad.data()[i], 2.0 * g.data()[i], 1e-5 * (1 + std::abs(g.data()[i]))) << p->name << " " << i;
  }
}

TEST(TransformerLayers, BackwardAccumulatesParameterGradients) {
  const Tensor x = random_tensor({kBatch, kSeq, kEmbd}, 52);
  CausalSelfAttention attn("attn", kEmbd, kHeads);
  setup(attn, 53);
  check_accumulates(attn, x);
  TransformerBlock block("h.0", kEmbd, kHeads);
  setup(block, 54);
  check_accumulates(block, x);
  TokenPositionEmbedding emb("emb", kVocab, kBlockSize, kEmbd);
  setup(emb, 55);
  check_accumulates(emb, random_ids({kBatch, kSeq}, 56), /*input_has_gradient=*/false);
  LayerNorm ln("ln", kEmbd);
  setup(ln, 57);
  check_accumulates(ln, x);
  TiedLinear head("lm_head", emb.wte.weight);
  check_accumulates(head, x);
}

// ---- SequenceCrossEntropy ----

TEST(TransformerLayers, SequenceCrossEntropyWithIgnoreIndexMatchesHandComputation) {
  // batch 2, seq 2, vocab 3; position (0, 1) ignored.
  Tensor logits({2, 2, 3});
  const float z[] = {1, 2, 3, /*ignored*/ 9, -9, 0, 0, 0, 0, 2, -1, 0.5f};
  std::copy(z, z + 12, logits.data());
  const std::vector<std::int32_t> targets = {2, -100, 0, 1};
  SequenceCrossEntropy loss;
  loss.forward(logits, std::vector<std::int32_t>{2, 1, 0, 1});  // the buffers then hold values everywhere
  const float value = loss.forward(logits, targets);
  auto log_sum_exp = [](double a, double b, double c) { return std::log(std::exp(a) + std::exp(b) + std::exp(c)); };
  const double l0 = log_sum_exp(1, 2, 3) - 3, l2 = log_sum_exp(0, 0, 0) - 0, l3 = log_sum_exp(2, -1, 0.5) - (-1);
  EXPECT_NEAR(value, (l0 + l2 + l3) / 3, 1e-6);
  EXPECT_EQ(loss.loss(), value);
  EXPECT_NEAR(loss.sum(), l0 + l2 + l3, 1e-6);
  EXPECT_EQ(loss.count(), 3);
  EXPECT_EQ(loss.correct(), 2);  // position 0 right, position 2 a tie resolved to class 0 (right), 3 wrong
  const Tensor& g = loss.gradient();
  ASSERT_EQ(g.shape(), logits.shape());
  const double e3 = std::exp(log_sum_exp(1, 2, 3));
  EXPECT_NEAR(g.data()[0], std::exp(1.0) / e3 / 3, 1e-7);
  EXPECT_NEAR(g.data()[2], (std::exp(3.0) / e3 - 1) / 3, 1e-7);
  for (int c = 3; c < 6; ++c) EXPECT_EQ(g.data()[c], 0.0f) << "ignored position";
  EXPECT_NEAR(g.data()[6], (1.0 / 3 - 1) / 3, 1e-7);
  EXPECT_NEAR(g.data()[7], (1.0 / 3) / 3, 1e-7);
  const double e4 = std::exp(log_sum_exp(2, -1, 0.5));
  EXPECT_NEAR(g.data()[10], (std::exp(-1.0) / e4 - 1) / 3, 1e-7);

  // Another ignore index; nothing ignored: SoftmaxCrossEntropy's value and gradient.
  SequenceCrossEntropy custom(/*ignore_index=*/-1);
  EXPECT_EQ(custom.ignore_index(), -1);
  SoftmaxCrossEntropy flat;
  Tensor flat_logits = copy_of(logits);
  flat_logits.resize({4, 3});
  const std::vector<std::int32_t> all = {2, 1, 0, 1};
  EXPECT_FLOAT_EQ(custom.forward(logits, all), flat.forward(flat_logits, all));
  EXPECT_EQ(custom.count(), 4);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(custom.gradient().data()[i], flat.gradient().data()[i]);
  // -100 is a class outside [0, 3) once the ignore index is -1.
  EXPECT_THROW(custom.forward(logits, targets), InvalidArgument);
}

TEST(TransformerLayers, SequenceCrossEntropyEdgeCases) {
  SequenceCrossEntropy loss;
  Tensor logits = random_tensor({1, 3, 4}, 61);
  EXPECT_TRUE(std::isnan(loss.forward(logits, std::vector<std::int32_t>{-100, -100, -100})));  // 0/0, as PyTorch
  EXPECT_EQ(loss.count(), 0);
  for (std::int64_t i = 0; i < loss.gradient().numel(); ++i) EXPECT_EQ(loss.gradient().data()[i], 0.0f);
  EXPECT_THROW(loss.forward(logits, std::vector<std::int32_t>{0, 1}), InvalidArgument);     // count mismatch
  EXPECT_THROW(loss.forward(logits, std::vector<std::int32_t>{0, 4, 1}), InvalidArgument);  // outside [0, vocab)
  EXPECT_THROW(loss.forward(logits, std::vector<std::int32_t>{0, -2, 1}), InvalidArgument);
}

// ---- A whole tiny GPT: embedding, block, final norm, tied head, loss ----

TEST(TransformerLayers, TinyGptGradientsWithTiedHead) {
  Sequential gpt("gpt");
  auto& emb = gpt.add<TokenPositionEmbedding>("transformer", kVocab, kBlockSize, kEmbd);
  gpt.add<TransformerBlock>("transformer.h.0", kEmbd, kHeads);
  gpt.add<TransformerBlock>("transformer.h.1", kEmbd, kHeads);
  gpt.add<LayerNorm>("transformer.ln_f", kEmbd);
  gpt.add<TiedLinear>("lm_head", emb.wte.weight);
  setup(gpt, 71);
  const std::vector<Parameter*> params = unique_parameters(gpt);
  EXPECT_EQ(params.size(), all_parameters(gpt).size() - 1) << "the tied table is listed twice, one parameter";

  const Tensor ids = random_ids({kBatch, kSeq}, 72);
  std::vector<std::int32_t> targets(kBatch * kSeq);
  for (std::int64_t i = 0; i < kBatch * kSeq; ++i) targets[i] = static_cast<std::int32_t>(ids.data()[(i + 1) % (kBatch * kSeq)]);
  targets[4] = -100;  // the last position of the first row has no next token
  SequenceCrossEntropy loss;
  loss.forward(gpt.forward(ids, eval_context()), targets);
  zero_gradients(gpt);
  EXPECT_TRUE(gpt.backward(loss.gradient()).empty());
  auto value = [&] {
    loss.forward(gpt.forward(ids, eval_context()), targets);
    return loss.sum() / loss.count();
  };
  for (Parameter* p : params)
    for (std::int64_t i = 0; i < p->value.numel(); ++i)
      expect_close(p->grad.data()[i], numeric_derivative(p->value.data()[i], value), p->name + " " + std::to_string(i));
}

}  // namespace
}  // namespace zs::nn
