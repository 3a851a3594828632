#pragma once
// The small model and deterministic data the engine and checkpoint tests train on.

#include <cstdint>
#include <memory>
#include <vector>

#include "zeroshard/runtime/engine.hpp"

namespace zs::testing {

// Embedding -> Linear -> GELU -> LayerNorm -> [Dropout] -> Linear: every layer kind with
// parameters, sizes that do not divide by 3 or 4, so shards are padded.
inline std::unique_ptr<nn::Sequential> make_model(float dropout) {
  auto model = std::make_unique<nn::Sequential>("model");
  model->add<nn::Embedding>("emb", 23, 7);
  model->add<nn::Linear>("fc1", 7, 19);
  model->add<nn::GELU>("act");
  model->add<nn::LayerNorm>("norm", 19);
  if (dropout > 0) model->add<nn::Dropout>("drop", dropout);
  model->add<nn::Linear>("fc2", 19, 5);
  return model;
}

// Global sample i: token i % 23, label (7 i + 3) % 5. Deterministic, rank-independent.
inline void batch(std::int64_t first, std::int64_t count, Tensor& tokens, std::vector<std::int32_t>& labels) {
  tokens.resize({count});
  labels.resize(count);
  for (std::int64_t k = 0; k < count; ++k) {
    tokens.data()[k] = static_cast<float>((first + k) % 23);
    labels[k] = static_cast<std::int32_t>((7 * (first + k) + 3) % 5);
  }
}

// Steps [first, first + steps) of one engine, 8 samples each (the same on every rank).
inline void run_steps(Engine& engine, int first, int steps) {
  nn::SoftmaxCrossEntropy loss;
  Tensor tokens;
  std::vector<std::int32_t> labels;
  for (int step = first; step < first + steps; ++step) {
    batch(step * 8, 8, tokens, labels);
    loss.forward(engine.forward(tokens), labels);
    engine.backward(loss.gradient());
    engine.step();
  }
}

}  // namespace zs::testing
