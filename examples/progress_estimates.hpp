#pragma once
// What the examples' progress line adds to loss and throughput: an ETA (steps left x a
// smoothed step time) and MFU, model FLOPs utilisation: the model's FLOPs per optimizer step
// over the time of a step and the job's peak FLOP/s (PaLM, appendix B; docs/performance.md,
// "ETA and MFU").
//
// Peak FLOP/s on CPUs, as detected (a --peak-tflops option overrides it):
//   sum over nodes of  cores x clock x float32 FLOPs per core per cycle,
// cores: std::thread::hardware_concurrency() on each node (whatever number of ranks share
// them); clock: /proc/cpuinfo's "cpu MHz" of the first core (the kernel's current reading,
// usually the base clock); FLOPs per cycle: of the vector ISA this build compiles for
// (CMake's ZS_SIMD; OpenBLAS picks its kernels for the CPU it runs on, which for a NATIVE build
// is the same ISA): SSE2 (the x86-64 baseline) 4 lanes x (1 multiply + 1 add) = 8, AVX 16,
// AVX2 + FMA 2 FMA pipes x 8 lanes x 2 = 32, AVX-512 64. An upper bound in the usual sense of
// a peak: turbo clocks above the reading would raise it, memory-bound kernels never reach it.

#include <cstdint>
#include <string>

#include "zeroshard/comm/communicator.hpp"
#include "zeroshard/runtime/engine.hpp"

namespace zs::examples {

struct PeakFlops {
  double flops_per_second = 0;  // the whole job's, all ranks together
  std::string how;              // how it was obtained, for the first lines of output
};

/// Collective over `comm`. `peak_tflops_option` > 0: that value (TFLOP/s for the whole job);
/// otherwise detected as above (one node leader per node contributes its node's cores).
PeakFlops job_peak_flops(const Communicator& comm, double peak_tflops_option);

/// An exponentially smoothed time per optimizer step, seconds (weight 0.3 for each new window),
/// and the ETA it gives.
class EtaEstimate {
 public:
  void add_window(double seconds, std::int64_t steps);
  double seconds_per_step() const { return seconds_per_step_; }
  /// Seconds for `steps_left` more steps; 0 before the first window.
  double eta_seconds(std::int64_t steps_left) const { return seconds_per_step_ * static_cast<double>(steps_left); }

 private:
  double seconds_per_step_ = 0;
};

/// Why the last step was skipped, for a progress line: the non-finite gradient norm, and
/// with fp16 the loss scale the next steps use (backed off after overflows).
std::string skipped_step_reason(const Engine& engine);

/// For a progress line under fp16: " loss-scale S skipped N" (the scale the next step uses and
/// the steps skipped so far); empty otherwise, where the scale is always 1.
std::string loss_scale_text(const Engine& engine);

/// The end-of-run line: the planner's prediction (the plan made at the first training forward)
/// against `training_peak`, the ledger's high-water mark after training steps, and the ledger's
/// peak now (after evaluation batches of another shape). Empty without a plan.
std::string planned_against_measured(const Engine& engine, std::int64_t training_peak);

/// "1:05" (minutes:seconds) or "2h03m".
std::string format_duration(double seconds);

/// Model FLOPs of one training sample (forward + backward) of a model whose FLOPs are its
/// matrix products: 6 x parameters (2 forward, 4 backward per multiply-add), the MLP's count.
inline double mlp_flops_per_sample(std::int64_t parameters) { return 6.0 * static_cast<double>(parameters); }

/// Per token of a GPT: 6 N + 12 L H Q T (PaLM, appendix B; nanoGPT's estimate_mfu): N the
/// parameters without the position table (the token table counts: it is also the LM head's
/// product), L layers, H Q = n_embd, T the context length of the batch (attention's
/// score and value products, which have no parameters).
inline double gpt_flops_per_token(std::int64_t parameters_without_positions, int layers, std::int64_t n_embd,
                                  std::int64_t context) {
  return 6.0 * static_cast<double>(parameters_without_positions) +
         12.0 * layers * static_cast<double>(n_embd) * static_cast<double>(context);
}

}  // namespace zs::examples
