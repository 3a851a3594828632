// Links ZeroShard::nn alone (no MPI, HDF5 or comm): one Linear forward and backward.
#include <cstdio>

#include <zeroshard/nn/layers.hpp>

int main() {
  zs::nn::Linear fc("fc", 3, 2);
  fc.allocate_parameters();
  zs::nn::initialize_parameters(fc, 1);
  zs::Tensor x({4, 3});
  x.fill(1.0f);
  const zs::Tensor& y = fc.forward(x, zs::nn::ForwardContext{.training = false});
  zs::Tensor grad(y.shape());
  grad.fill(1.0f);
  const zs::Tensor& dx = fc.backward(grad);
  const bool ok = y.shape() == zs::Shape{4, 2} && dx.shape() == zs::Shape{4, 3};
  std::printf("consumer nn: %s\n", ok ? "ok" : "WRONG");
  return ok ? 0 : 1;
}
