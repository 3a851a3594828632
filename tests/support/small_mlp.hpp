#pragma once
// The small MLP and deterministic data of the gradient-clipping and mixed-precision tests:
// Linear(in, hidden) -> ReLU -> Linear(hidden, classes) (units {fc1, act}, {fc2} with
// unit_starts {0, 2}); global sample i is the same on every rank.

#include <cstdint>
#include <memory>

#include "zeroshard/nn/layers.hpp"

namespace zs::testing {

inline std::unique_ptr<nn::Sequential> make_small_mlp(std::int64_t in, std::int64_t hidden, std::int64_t classes) {
  auto model = std::make_unique<nn::Sequential>("mlp");
  model->add<nn::Linear>("fc1", in, hidden);
  model->add<nn::ReLU>("act");
  model->add<nn::Linear>("fc2", hidden, classes);
  return model;
}

/// Feature j of global sample i: ((7 i + 3 j) mod 13 - 6) / 4, exact in float32.
inline double small_mlp_feature(std::int64_t i, std::int64_t j) {
  return static_cast<double>((7 * i + 3 * j) % 13 - 6) / 4.0;
}
/// The label of global sample i: (5 i + 2) mod classes.
inline std::int64_t small_mlp_label(std::int64_t i, std::int64_t classes) { return (5 * i + 2) % classes; }

}  // namespace zs::testing
