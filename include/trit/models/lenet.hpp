#pragma once
// models::LeNet: a LeNet-5-style CNN for small grey or colour images (Fashion-MNIST, MNIST).
//
//   x [N, C, H, W]                       (28x28 or 32x32)
//   conv1  5x5, 20 channels, padding 2   -> ReLU -> 2x2 max-pool
//   conv2  5x5, 50 channels              -> ReLU -> 2x2 max-pool
//   fc1    50*5*5 (or 50*6*6 at 32x32) -> 500 -> ReLU
//   fc2    500 -> num_classes            logits [N, num_classes]
//
// Parameter names follow the PyTorch twin in bench/train_torch.py (conv1.weight, fc2.bias...).
#include <cstdint>
#include <memory>
#include <string>

#include "trit/nn/conv2d.hpp"
#include "trit/nn/linear.hpp"
#include "trit/ops/activation.hpp"
#include "trit/ops/pool.hpp"
#include "trit/ops/shape.hpp"

namespace trit::models {

template <class T = float>
class LeNet : public nn::Module<T> {
 public:
  LeNet(int64_t num_classes = 10, int64_t in_channels = 1, int64_t input_size = 28)
      : num_classes_(num_classes), in_channels_(in_channels) {
    check(input_size >= 12, "LeNet", "input size ", input_size, " is too small (>= 12)");
    // conv1 keeps the size (padding 2), pool halves it; conv2 takes 4, pool halves again.
    int64_t side = (input_size / 2 - 4) / 2;
    conv1 = this->register_module("conv1", std::make_shared<nn::Conv2d<T>>(
                                               in_channels, 20, 5, nn::Conv2dOptions{.padding = 2}));
    conv2 = this->register_module("conv2", std::make_shared<nn::Conv2d<T>>(20, 50, 5));
    fc1 = this->register_module("fc1", std::make_shared<nn::Linear<T>>(50 * side * side, 500));
    fc2 = this->register_module("fc2", std::make_shared<nn::Linear<T>>(500, num_classes));
  }

  Tensor<T> forward(const Tensor<T>& x) override {
    Tensor<T> h = max_pool2d(relu(conv1->forward(x)), 2);
    h = max_pool2d(relu(conv2->forward(h)), 2);
    h = relu(fc1->forward(flatten(h, 1)));
    return fc2->forward(h);
  }

  std::string describe() const override {
    return "LeNet(num_classes=" + std::to_string(num_classes_) +
           ", in_channels=" + std::to_string(in_channels_) + ")";
  }

  std::shared_ptr<nn::Conv2d<T>> conv1, conv2;
  std::shared_ptr<nn::Linear<T>> fc1, fc2;

 private:
  int64_t num_classes_, in_channels_;
};

}  // namespace trit::models
