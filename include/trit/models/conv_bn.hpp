#pragma once
// Convolution + BatchNorm building blocks shared by the ResNets and MobileNetV2, as
// Sequentials named the way torchvision names them ("0" conv, "1" BatchNorm2d, "2" activation).
#include <cstdint>
#include <memory>

#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/sequential.hpp"

namespace trit::models {

// torchvision ResNet's downsample: Sequential(conv 1x1 C -> O stride S without bias,
// BatchNorm2d(O)); x [N, C, H, W] -> [N, O, ceil(H/S), ceil(W/S)].
template <class T = float>
std::shared_ptr<nn::Sequential<T>> make_projection(int64_t in_channels, int64_t out_channels,
                                                   int64_t stride) {
  return std::make_shared<nn::Sequential<T>>(
      std::make_shared<nn::Conv2d<T>>(in_channels, out_channels, 1,
                                      nn::Conv2dOptions{.stride = stride, .bias = false}),
      std::make_shared<nn::BatchNorm2d<T>>(out_channels));
}

// torchvision's Conv2dNormActivation with ReLU6 (MobileNetV2's ConvBNReLU): Sequential(
// conv K x K C -> O, stride S, padding (K-1)/2, groups G, no bias; BatchNorm2d(O); ReLU6).
// G = C = O is a depthwise conv.
template <class T = float>
std::shared_ptr<nn::Sequential<T>> make_conv_bn_relu6(int64_t in_channels, int64_t out_channels,
                                                      int64_t kernel_size, int64_t stride = 1,
                                                      int64_t groups = 1) {
  return std::make_shared<nn::Sequential<T>>(
      std::make_shared<nn::Conv2d<T>>(
          in_channels, out_channels, kernel_size,
          nn::Conv2dOptions{
              .stride = stride, .padding = (kernel_size - 1) / 2, .groups = groups, .bias = false}),
      std::make_shared<nn::BatchNorm2d<T>>(out_channels), std::make_shared<nn::ReLU6<T>>());
}

}  // namespace trit::models
