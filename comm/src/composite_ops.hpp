#pragma once
// Internal: collectives built from others.

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "comm_context.hpp"
#include "pending_op.hpp"
#include "scratch_pool.hpp"
#include "zeroshard/dtype.hpp"

namespace zs::detail {

/// Runs stages one after another; each stage is built only when the previous one completed,
/// because it reads what that one wrote. A later stage must use point-to-point messages with
/// tags drawn up front (a ring), never an MPI collective: posting an MPI collective at a
/// rank-dependent moment would break MPI's same-order rule.
class SequenceOp final : public PendingOp {
 public:
  using StageFactory = std::function<std::unique_ptr<PendingOp>()>;
  /// `first` is already posted (at issue time: it may be an MPI collective, which must be
  /// posted in issue order); each of `later` is built when the stage before it completes.
  SequenceOp(std::string description, std::unique_ptr<PendingOp> first,
             std::vector<StageFactory> later);
  bool progress() override;
  void abandon() noexcept override;
  /// The composite, then the stage running now (its state is what a hang report needs).
  std::string describe() const override {
    return current_ ? description_ + ", now: " + current_->describe() : description_;
  }
  void outstanding_requests(std::vector<MPI_Request*>& out) override {
    if (current_) current_->outstanding_requests(out);
  }
  bool polled() const override { return current_ && current_->polled(); }

 private:
  std::string description_;
  std::vector<StageFactory> stages_;
  std::size_t next_stage_ = 0;
  std::unique_ptr<PendingOp> current_;
};

/// Reduces 16-bit floats in float32: the input is widened once into scratch, the float32
/// collective runs there, and the result is rounded once (to nearest even) into the output.
/// `build_inner(scratch)` creates the float32 collective over the widened buffer.
class WidenedOp final : public PendingOp {
 public:
  using InnerFactory = std::function<std::unique_ptr<PendingOp>(float* widened)>;
  WidenedOp(CommContext& ctx, DType dtype, const void* input, std::int64_t input_count,
            void* output, std::int64_t output_offset, std::int64_t output_count,
            const InnerFactory& build_inner);
  bool progress() override;
  void abandon() noexcept override;
  std::string describe() const override;
  void outstanding_requests(std::vector<MPI_Request*>& out) override { inner_->outstanding_requests(out); }
  bool polled() const override { return inner_->polled(); }

 private:
  DType dtype_;
  void* output_;
  std::int64_t output_offset_;  // where the output starts inside the widened buffer
  std::int64_t output_count_;
  ScratchBuffer widened_;
  std::unique_ptr<PendingOp> inner_;
};


}  // namespace zs::detail
