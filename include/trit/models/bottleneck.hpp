#pragma once
// models::Bottleneck: the 1x1-3x3-1x1 residual block of ResNet-50, as torchvision's
// Bottleneck ("ResNet v1.5": the stride sits on the 3x3 conv2, not on conv1), expansion 4.
//
//   x [N, C, H, W]
//   conv1 1x1 C -> P, no bias                    -> bn1 -> relu
//   conv2 3x3 P -> P, stride S, padding 1, no bias -> bn2 -> relu
//   conv3 1x1 P -> 4P, no bias                   -> bn3
//   + shortcut: x itself, or downsample(x) when given (S != 1 or C != 4P)
//   -> relu                                         y [N, 4P, H/S, W/S]
//
// Children, in torchvision's order and names: conv1, bn1, conv2, bn2, conv3, bn3, relu and,
// when given, downsample (Sequential "0" = 1x1 conv, "1" = BatchNorm2d: make_projection()
// in conv_bn.hpp).
// Only torchvision's plain ResNet setting is built (groups 1, base width 64: width = P).
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
class Bottleneck : public nn::Module<T> {
 public:
  static constexpr int64_t expansion = 4;

  // in_channels C, planes P (output 4P), stride S; downsample maps x to [N, 4P, H/S, W/S]
  // (null: identity, which needs S == 1 and C == 4P).
  Bottleneck(int64_t in_channels, int64_t planes, int64_t stride = 1,
             std::shared_ptr<nn::Module<T>> downsample_module = nullptr)
      : in_(in_channels), planes_(planes), stride_(stride) {
    const int64_t out = planes * expansion;
    check(downsample_module || (stride == 1 && in_channels == out), "Bottleneck", "a block from ",
          in_channels, " to ", out, " channels with stride ", stride, " needs a downsample module");
    const nn::Conv2dOptions no_bias{.bias = false};
    conv1 = this->register_module("conv1",
                                  std::make_shared<nn::Conv2d<T>>(in_channels, planes, 1, no_bias));
    bn1 = this->register_module("bn1", std::make_shared<nn::BatchNorm2d<T>>(planes));
    conv2 = this->register_module(
        "conv2",
        std::make_shared<nn::Conv2d<T>>(
            planes, planes, 3, nn::Conv2dOptions{.stride = stride, .padding = 1, .bias = false}));
    bn2 = this->register_module("bn2", std::make_shared<nn::BatchNorm2d<T>>(planes));
    conv3 =
        this->register_module("conv3", std::make_shared<nn::Conv2d<T>>(planes, out, 1, no_bias));
    bn3 = this->register_module("bn3", std::make_shared<nn::BatchNorm2d<T>>(out));
    relu = this->register_module("relu", std::make_shared<nn::ReLU<T>>());
    if (downsample_module) downsample = this->register_module("downsample", downsample_module);
  }

  // x [N, C, H, W] -> [N, 4P, H/S, W/S]
  Tensor<T> forward(const Tensor<T>& x) override {
    // each conv -> bn -> relu (and conv3 -> bn3 -> + shortcut -> relu) as a conv and one
    // fused BatchNorm pass (BatchNorm2d::forward_conv)
    Tensor<T> h = bn1->forward_conv(*conv1, x, BatchNormActivation::relu);
    h = bn2->forward_conv(*conv2, h, BatchNormActivation::relu);
    Tensor<T> shortcut = downsample ? downsample->forward(x) : x;
    return bn3->forward_conv(*conv3, h, BatchNormActivation::relu, shortcut);
  }

  std::string describe() const override {
    return "Bottleneck(" + std::to_string(in_) + ", " + std::to_string(planes_) +
           ", stride=" + std::to_string(stride_) + ")";
  }

  std::shared_ptr<nn::Conv2d<T>> conv1, conv2, conv3;
  std::shared_ptr<nn::BatchNorm2d<T>> bn1, bn2, bn3;
  std::shared_ptr<nn::ReLU<T>> relu;
  std::shared_ptr<nn::Module<T>> downsample;  // null: identity shortcut

 private:
  int64_t in_, planes_, stride_;
};

}  // namespace trit::models
