#pragma once
// The example's forward with control flow (--block-repeats, --layer-drop): one weight-shared
// block applied several times (ALBERT-style depth without more parameters), each repeat after
// the first skipped in training with probability p (LayerDrop). A ForwardProgram over the
// engine's units: docs/architecture.md, "Unit order".

#include <cstdint>
#include <random>
#include <string>

#include "zeroshard/error.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs::examples {

class BlockRepeats {
 public:
  /// `block_child`: the Sequential child holding the shared block; it must form a unit alone.
  BlockRepeats(const Engine& engine, std::size_t block_child, int repeats, double layer_drop, std::uint64_t seed)
      : block_(engine.unit_of_child(block_child)), units_(engine.unit_count()), repeats_(repeats),
        layer_drop_(layer_drop), seed_(seed) {
    if (engine.unit_of_child(block_child - 1) == block_ || engine.unit_of_child(block_child + 1) == block_)
      throw InvalidArgument("--block-repeats needs the shared block in a unit of its own: leave "
                            "zero_optimization.auto_wrap_min_params at 0");
    if (!(layer_drop >= 0 && layer_drop < 1)) throw InvalidArgument("--layer-drop must be in [0, 1)");
  }

  /// The program for the micro-step `micro_step` (in training) or for evaluation: the same on
  /// every rank, and after a resume, because the skips are drawn from (seed, micro-step).
  ForwardProgram program(std::int64_t micro_step, bool training) const {
    return [this, micro_step, training](UnitRunner& units, const Tensor& input) -> const Tensor& {
      std::mt19937_64 random(seed_ ^ (0xD1B54A32D192ED03ull * static_cast<std::uint64_t>(micro_step + 1)));
      std::bernoulli_distribution skip(training ? layer_drop_ : 0.0);
      const Tensor* x = &input;
      for (std::size_t u = 0; u < units_; ++u) {
        if (u != block_) {
          x = &units.run(u, *x);
          continue;
        }
        for (int r = 0; r < repeats_; ++r)
          if (r == 0 || !skip(random)) x = &units.run(u, *x);
      }
      return *x;
    };
  }

 private:
  std::size_t block_, units_;
  int repeats_;
  double layer_drop_;
  std::uint64_t seed_;
};

}  // namespace zs::examples
