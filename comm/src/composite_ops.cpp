#include "composite_ops.hpp"

#include "zeroshard/dtype_convert.hpp"
#include "zeroshard/error.hpp"

namespace zs::detail {

SequenceOp::SequenceOp(std::string description, std::unique_ptr<PendingOp> first,
                       std::vector<StageFactory> later)
    : description_(std::move(description)), stages_(std::move(later)), current_(std::move(first)) {}

bool SequenceOp::progress() {
  while (true) {
    if (!current_) {
      if (next_stage_ == stages_.size()) return true;
      current_ = stages_[next_stage_++]();
    }
    if (!current_->progress()) return false;
    current_.reset();
  }
}

void SequenceOp::abandon() noexcept {
  if (current_) current_->abandon();
}

WidenedOp::WidenedOp(CommContext& ctx, DType dtype, const void* input, std::int64_t input_count,
                     void* output, std::int64_t output_offset, std::int64_t output_count,
                     const InnerFactory& build_inner)
    : dtype_(dtype),
      output_(output),
      output_offset_(output_offset),
      output_count_(output_count),
      widened_(ctx.scratch.acquire(static_cast<std::size_t>(input_count) * sizeof(float))) {
  zs::widen(input, dtype, widened_.as<float>(), input_count);
  inner_ = build_inner(widened_.as<float>());
}

bool WidenedOp::progress() {
  if (!inner_->progress()) return false;
  zs::narrow(widened_.as<float>() + output_offset_, output_, dtype_, output_count_);
  return true;
}

void WidenedOp::abandon() noexcept { inner_->abandon(); }

std::string WidenedOp::describe() const {
  return inner_->describe() + " (widened from " + to_string(dtype_) + ")";
}

}  // namespace zs::detail
