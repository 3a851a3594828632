#pragma once
// Modules with explicit forward and backward (no autograd tape): forward caches what its
// backward needs, backward *accumulates* parameter gradients (so micro-steps add up) and
// returns the gradient of its input. A gradient the engine marks stale (Parameter::grad_stale,
// PyTorch's `.grad is None`) holds nothing of this step: a module that says so
// (writes_stale_gradients) overwrites it, any other gets it zeroed first by the engine.
//
// Writing your own module: derive from Module, hold your weights as Parameter members, list
// them in parameters(), implement forward/backward. Read parameter values through
// `param.value` at call time: the engine points it into its flat buffers and, under ZeRO-3,
// only while the module's unit is gathered. See docs/custom-modules.md.

#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "zeroshard/nn/tensor.hpp"

namespace zs::nn {

struct Parameter {
  std::string name;  // unique within the model, e.g. "fc1.weight" (set by the parent's naming)
  Shape shape;
  Tensor value;
  Tensor grad;
  /// False for biases and norm gains: optimizers skip weight decay on them (a per-group
  /// setting, as PyTorch users configure by hand).
  bool weight_decay = true;
  /// True while `grad` holds nothing of the current step (PyTorch's `.grad is None` after
  /// zero_grad(set_to_none=True)): its contents are undefined, and the first backward to use
  /// the parameter must write the gradient whole instead of adding to it (claim_gradient,
  /// accumulable_gradient). The engine sets it instead of clearing its gradient buffers every
  /// step (a pass of 4 bytes per parameter saved) and zeroes whatever is still stale before a
  /// reduction reads it. False for standalone storage (allocate_parameters zeroes it).
  bool grad_stale = false;

  Parameter(std::string n, Shape s, bool decay = true);
  std::int64_t numel() const { return numel_of(shape); }
};

/// Passed to forward: training mode and the random stream for dropout.
struct ForwardContext {
  bool training = true;
  std::mt19937_64* random = nullptr;
  /// Called between blocks of long computations so that communication in flight advances
  /// while a layer computes (the engine sets it; it must stay valid until the matching
  /// backward has run). Null: nothing to advance.
  const std::function<void()>* progress = nullptr;
  /// False when nothing will read the gradient with respect to this forward's input: the
  /// batch the engine feeds its first unit (PyTorch skips the same product for an input that
  /// does not require grad). A module may then skip computing it, and its backward returns
  /// an empty tensor (Linear saves one of its three GEMMs). The engine and Sequential set it
  /// false for leaf modules only (no children()), so a container never sees false and need
  /// not handle it; a container that does set it must give false only to the child reading
  /// its input, and only if that child is a leaf.
  bool input_requires_grad = true;
};

/// What a forward on an input of a given shape produces and caches, predicted from shapes
/// alone: the engine's memory planner (zeroshard/runtime/memory_plan.hpp) sums these before the
/// first step to predict activation memory.
struct ActivationPlan {
  Shape output;            // the forward's output shape
  std::int64_t bytes = 0;  // what activation_bytes() reports after that forward
  std::int64_t kept = 0;   // ... and after release_activations(/*keep_output=*/true) (checkpointing)
};

class Module {
 public:
  explicit Module(std::string name) : name_(std::move(name)) {}
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual const Tensor& forward(const Tensor& input, const ForwardContext& context) = 0;
  virtual const Tensor& backward(const Tensor& grad_output) = 0;
  /// This module's own parameters (not its children's).
  virtual std::vector<Parameter*> parameters() { return {}; }
  /// Direct children, for containers.
  virtual std::vector<Module*> children() { return {}; }
  /// Bytes of cached activations held for backward.
  virtual std::int64_t activation_bytes() const { return 0; }
  /// The output shape and activation_bytes() of a forward on an input of shape `input`
  /// (training: dropout active), without running it. nullopt: this module cannot tell (the
  /// default, or an input shape it would refuse); the planner then reports activations as not
  /// predicted. Override it together with activation_bytes() in a module that caches tensors.
  virtual std::optional<ActivationPlan> plan_activations(const Shape& input, bool training) const;
  /// Frees what forward cached for backward (activation checkpointing: the engine runs forward
  /// again from the unit's saved input before backward). With `keep_output` the last
  /// forward's output stays valid (a unit's output, read downstream). Backward may not follow
  /// until forward runs again. A module that caches nothing keeps the default, a no-op.
  virtual void release_activations(bool keep_output) { (void)keep_output; }
  /// Initialises this module's own parameters (values must be bound). Layers use PyTorch's
  /// default initialisers.
  virtual void reset_parameters(std::mt19937_64& /*random*/) {}

  /// True if this module's backward honours Parameter::grad_stale for every parameter it
  /// lists: it writes a stale gradient whole (claim_gradient) or zeroes it before adding to it
  /// (accumulable_gradient). The built-in layers do. False (the default, right for a module
  /// that simply adds into `grad`): the engine zeroes this module's stale gradients before its
  /// backward (prepare_gradients_for_backward), so such a module stays correct.
  virtual bool writes_stale_gradients() const { return false; }

  const std::string& name() const { return name_; }
  /// Gives each parameter its own value and gradient storage (standalone use, tests); the
  /// engine instead points them into its flat buffers.
  void allocate_parameters();

 private:
  std::string name_;
};

/// plan_activations of `modules` run one after another on `input` (bytes summed, the last
/// output); nullopt if any of them cannot tell.
std::optional<ActivationPlan> plan_chain(const std::vector<const Module*>& modules, const Shape& input, bool training);

/// Every parameter of `module` and its descendants, in a fixed depth-first order.
std::vector<Parameter*> all_parameters(Module& module);
/// `context` for `module`'s forward, with input_requires_grad = `input_gradient_needed` if
/// `module` is a leaf (no children()), true otherwise: a container could hand false on to
/// children that read other inputs. Sequential and the engine pass contexts through this.
ForwardContext context_for_input(const ForwardContext& context, Module& module, bool input_gradient_needed);
/// How a backward must write a parameter's gradient.
enum class GradientWrite {
  overwrite,   // the gradient was stale: write it whole (`=`, a GEMM with beta 0)
  accumulate,  // it holds this step's earlier contributions: add to it (`+=`)
};
/// Claims `p.grad` for a backward whose result covers the whole gradient: overwrite if it was
/// stale, else accumulate; clears grad_stale either way. Not thread-safe for one parameter.
GradientWrite claim_gradient(Parameter& p);
/// `p.grad`, ready to be added into (for kernels that add piecewise: scatters, row sums):
/// zeroed first if it was stale; clears grad_stale.
Tensor& accumulable_gradient(Parameter& p);
/// Zeroes the stale gradients of the parameters listed by `module` and its descendants whose
/// class does not write stale gradients itself (writes_stale_gradients() false), so that a
/// module that adds into `grad` reads zeros. The engine calls it before each module's backward.
void prepare_gradients_for_backward(Module& module);
/// Calls reset_parameters on `module` and its descendants depth-first with one random stream
/// seeded by `seed`: every rank passing the same seed gets the same values.
void initialize_parameters(Module& module, std::uint64_t seed);
/// The same, with a caller's stream (the engine initialises unit by unit).
void initialize_parameters(Module& module, std::mt19937_64& random);

}  // namespace zs::nn
