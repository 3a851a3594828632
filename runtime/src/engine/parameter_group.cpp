#include "parameter_group.hpp"

#include <algorithm>

namespace zs::detail {

std::int64_t ParameterGroup::parameter_count() const {
  std::int64_t count = 0;
  for (const nn::Parameter* p : params) count += p->numel();
  return count;
}

std::vector<ParameterGroup*> ParameterGroup::needs() {
  std::vector<ParameterGroup*> groups{this};
  groups.insert(groups.end(), borrowed_from.begin(), borrowed_from.end());
  return groups;
}

void ParameterGroup::release_activations() {
  for (std::size_t i = 0; i < modules.size(); ++i) modules[i]->release_activations(i + 1 == modules.size());
}

void ParameterGroup::bind() {
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& slot = layout.tensors()[i];
    nn::Parameter& p = *params[i];
    p.value = params_full.empty() ? Tensor() : Tensor::view(params_full.data() + slot.offset, p.shape);
    p.grad = grads_full.empty() ? Tensor() : Tensor::view(grads_full.data() + slot.offset, p.shape);
  }
}

void ParameterGroup::mark_gradients_unwritten() {
  if (grads_full.empty()) return;
  std::int64_t written_up_to = 0;  // slots are in layout order, ascending offsets
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& slot = layout.tensors()[i];
    std::fill(grads_full.data() + written_up_to, grads_full.data() + slot.offset, 0.0f);
    written_up_to = slot.end();
    params[i]->grad_stale = true;
  }
  std::fill(grads_full.data() + written_up_to, grads_full.data() + padded_elems(), 0.0f);
}

void ParameterGroup::zero_unwritten_shard() {
  if (grads_shard_unwritten) grads_shard.fill(0.0f);
  grads_shard_unwritten = false;
}

void ParameterGroup::zero_unwritten_gradients() {
  if (grads_full.empty()) return;
  for (nn::Parameter* p : params)
    if (p->grad_stale) nn::accumulable_gradient(*p);
}

}  // namespace zs::detail
