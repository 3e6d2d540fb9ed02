#pragma once
// models::BasicBlock: the two-conv residual block of ResNet-18/34 and the CIFAR ResNets,
// as torchvision's BasicBlock (expansion 1).
//
//   x [N, C, H, W]
//   conv1 3x3 C -> P, stride S, padding 1, no bias -> bn1 -> relu
//   conv2 3x3 P -> P, padding 1, no bias           -> bn2
//   + shortcut: x itself, or downsample(x) when given (S != 1 or C != P)
//   -> relu                                           y [N, P, H/S, W/S]
//
// Children, in torchvision's order and names: conv1, bn1, relu, conv2, bn2 and, when given,
// downsample (torchvision: Sequential "0" = 1x1 conv, "1" = BatchNorm2d, built by
// make_projection() in conv_bn.hpp; the CIFAR ResNets may pass the parameter-free
// ShortcutA instead).
#include <cstdint>
#include <memory>
#include <string>

#include "trit/models/conv_bn.hpp"
#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/ops/elementwise.hpp"

namespace trit::models {

template <class T = float>
class BasicBlock : public nn::Module<T> {
 public:
  static constexpr int64_t expansion = 1;

  // in_channels C, planes P, stride S; downsample maps x to [N, P, H/S, W/S] (null: identity,
  // which needs S == 1 and C == P).
  BasicBlock(int64_t in_channels, int64_t planes, int64_t stride = 1,
             std::shared_ptr<nn::Module<T>> downsample_module = nullptr)
      : in_(in_channels), planes_(planes), stride_(stride) {
    check(downsample_module || (stride == 1 && in_channels == planes), "BasicBlock",
          "a block from ", in_channels, " to ", planes, " channels with stride ", stride,
          " needs a downsample module");
    const nn::Conv2dOptions conv3x3{.stride = stride, .padding = 1, .bias = false};
    conv1 = this->register_module("conv1",
                                  std::make_shared<nn::Conv2d<T>>(in_channels, planes, 3, conv3x3));
    bn1 = this->register_module("bn1", std::make_shared<nn::BatchNorm2d<T>>(planes));
    relu = this->register_module("relu", std::make_shared<nn::ReLU<T>>());
    conv2 = this->register_module(
        "conv2", std::make_shared<nn::Conv2d<T>>(planes, planes, 3,
                                                 nn::Conv2dOptions{.padding = 1, .bias = false}));
    bn2 = this->register_module("bn2", std::make_shared<nn::BatchNorm2d<T>>(planes));
    if (downsample_module) downsample = this->register_module("downsample", downsample_module);
  }

  // x [N, C, H, W] -> [N, P, H/S, W/S]
  Tensor<T> forward(const Tensor<T>& x) override {
    // relu(bn(conv(x))) and relu(bn(conv(h)) + shortcut) as convs and fused BatchNorm
    // passes (BatchNorm2d::forward_conv)
    Tensor<T> h = bn1->forward_conv(*conv1, x, BatchNormActivation::relu);
    Tensor<T> shortcut = downsample ? downsample->forward(x) : x;
    return bn2->forward_conv(*conv2, h, BatchNormActivation::relu, shortcut);
  }

  std::string describe() const override {
    return "BasicBlock(" + std::to_string(in_) + ", " + std::to_string(planes_) +
           ", stride=" + std::to_string(stride_) + ")";
  }

  std::shared_ptr<nn::Conv2d<T>> conv1, conv2;
  std::shared_ptr<nn::BatchNorm2d<T>> bn1, bn2;
  std::shared_ptr<nn::ReLU<T>> relu;
  std::shared_ptr<nn::Module<T>> downsample;  // null: identity shortcut

 private:
  int64_t in_, planes_, stride_;
};

}  // namespace trit::models
