#pragma once
// models::InvertedResidual: MobileNetV2's block, as torchvision's InvertedResidual.
//
//   x [N, C, H, W], hidden width E = round(C * t) for expand ratio t
//   conv.0  ConvBNReLU6 1x1 C -> E                 (only when t != 1)
//   conv.i  ConvBNReLU6 3x3 depthwise E -> E, stride S
//   conv.i+1 conv 1x1 E -> O, no bias              (linear bottleneck: no activation)
//   conv.i+2 BatchNorm2d(O)
//   + x when S == 1 and C == O (residual)          y [N, O, H/S, W/S]
//
// One child, the Sequential "conv", so parameter names are torchvision's: with expansion
// conv.0.0.weight (expand conv), conv.0.1.* (its BN), conv.1.0.weight (depthwise),
// conv.1.1.*, conv.2.weight (projection), conv.3.* (its BN); without expansion (t = 1) the
// depthwise ConvBNReLU6 is conv.0 and the projection conv.1, conv.2.
#include <cmath>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "trit/models/conv_bn.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/sequential.hpp"

namespace trit::models {

template <class T = float>
class InvertedResidual : public nn::Module<T> {
 public:
  // in_channels C, out_channels O, stride S (1 or 2), expand_ratio t >= 1.
  InvertedResidual(int64_t in_channels, int64_t out_channels, int64_t stride, double expand_ratio)
      : in_(in_channels), out_(out_channels), stride_(stride), expand_ratio_(expand_ratio) {
    check(stride == 1 || stride == 2, "InvertedResidual", "stride must be 1 or 2, got ", stride);
    check(in_channels > 0 && out_channels > 0 && expand_ratio >= 1, "InvertedResidual",
          "need channels > 0 and expand_ratio >= 1, got ", in_channels, ", ", out_channels, ", ",
          expand_ratio);
    const int64_t hidden = static_cast<int64_t>(std::llround(double(in_channels) * expand_ratio));
    use_residual_ = stride == 1 && in_channels == out_channels;
    conv = this->register_module("conv", std::make_shared<nn::Sequential<T>>());
    if (expand_ratio != 1) conv->push_back(make_conv_bn_relu6<T>(in_channels, hidden, 1));
    conv->push_back(make_conv_bn_relu6<T>(hidden, hidden, 3, stride, /*groups=*/hidden));
    project_ = conv->push_back(
        std::make_shared<nn::Conv2d<T>>(hidden, out_channels, 1, nn::Conv2dOptions{.bias = false}));
    project_bn_ = conv->push_back(std::make_shared<nn::BatchNorm2d<T>>(out_channels));
  }

  // x [N, C, H, W] -> [N, O, H/S, W/S]
  Tensor<T> forward(const Tensor<T>& x) override {
    if (!use_residual_) return conv->forward(x);
    // x + bn(projection(...)): the last BatchNorm2d adds the residual in its own pass
    Tensor<T> h = conv->forward_range(x, 0, conv->size() - 2);
    return project_bn_->forward_conv(*project_, h, BatchNormActivation::none, x);
  }

  std::string describe() const override {
    std::ostringstream s;
    s << "InvertedResidual(" << in_ << ", " << out_ << ", stride=" << stride_
      << ", expand_ratio=" << expand_ratio_ << ")";
    return s.str();
  }

  bool use_residual() const { return use_residual_; }

  std::shared_ptr<nn::Sequential<T>> conv;

 private:
  int64_t in_, out_, stride_;
  double expand_ratio_;
  bool use_residual_ = false;
  std::shared_ptr<nn::Conv2d<T>> project_;          // conv's last two children: the
  std::shared_ptr<nn::BatchNorm2d<T>> project_bn_;  // projection and its BatchNorm2d
};

}  // namespace trit::models
