#pragma once
// models::CifarResNet: the CIFAR-10 ResNets of He et al. 2016 ("Deep Residual Learning",
// section 4.2), depth 6n + 2: resnet20 (n = 3), resnet32 (5), resnet56 (9).
//
//   x [N, C, H, W]                 (32x32 CIFAR, 28x28 Fashion-MNIST...)
//   conv1  3x3 C -> 16, padding 1, no bias -> bn1 -> relu
//   layer1 n BasicBlocks at 16 channels
//   layer2 n BasicBlocks at 32 channels, the first with stride 2
//   layer3 n BasicBlocks at 64 channels, the first with stride 2
//   avgpool adaptive to 1x1 -> flatten -> fc 64 -> K                  logits [N, K]
//
// The two blocks that change shape (first of layer2 and layer3) take a shortcut:
//   CifarShortcut::A  parameter-free ShortcutA (subsample + zero channels, the paper's
//                     choice for CIFAR): resnet20 with K = 10 has 269,722 parameters
//   CifarShortcut::B  1x1 conv + BN projection, torchvision's downsample: 272,474
// Names follow torchvision's ResNet (conv1, bn1, layer1.0.conv1.weight, ...,
// layer2.0.downsample.0.weight with option B, fc.weight); the twin PyTorch definition is in
// tests/reference/make_models.py. Initialisation as torchvision's ResNet (init.hpp).
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/models/basic_block.hpp"
#include "trit/models/conv_bn.hpp"
#include "trit/models/init.hpp"
#include "trit/models/shortcut_a.hpp"
#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/linear.hpp"
#include "trit/nn/pooling.hpp"
#include "trit/nn/sequential.hpp"
#include "trit/ops/shape.hpp"

namespace trit::models {

enum class CifarShortcut { A, B };

inline std::string shortcut_name(CifarShortcut s) { return s == CifarShortcut::A ? "A" : "B"; }

// "A" or "B" (either case) -> the option; anything else raises trit::Error.
inline CifarShortcut parse_shortcut(const std::string& name) {
  if (name == "A" || name == "a") return CifarShortcut::A;
  if (name == "B" || name == "b") return CifarShortcut::B;
  check(false, "--shortcut", "unknown shortcut option '", name, "'; use A or B");
  return CifarShortcut::A;
}

template <class T = float>
class CifarResNet : public nn::Module<T> {
 public:
  // blocks_per_stage n (depth 6n + 2), K = num_classes, C = in_channels.
  CifarResNet(int64_t blocks_per_stage, int64_t num_classes = 10, int64_t in_channels = 3,
              CifarShortcut shortcut = CifarShortcut::A, Generator& gen = global_generator())
      : n_(blocks_per_stage),
        num_classes_(num_classes),
        in_channels_(in_channels),
        shortcut_(shortcut) {
    check(blocks_per_stage > 0 && num_classes > 0 && in_channels > 0, name(),
          "blocks per stage, num_classes and in_channels must be > 0, got ", blocks_per_stage, ", ",
          num_classes, ", ", in_channels);
    conv1 = this->register_module(
        "conv1", std::make_shared<nn::Conv2d<T>>(
                     in_channels, 16, 3, nn::Conv2dOptions{.padding = 1, .bias = false}, gen));
    bn1 = this->register_module("bn1", std::make_shared<nn::BatchNorm2d<T>>(16));
    relu = this->register_module("relu", std::make_shared<nn::ReLU<T>>());
    int64_t channels = 16;
    const int64_t planes[3] = {16, 32, 64};
    for (int stage = 0; stage < 3; ++stage) {
      auto layer = std::make_shared<nn::Sequential<T>>();
      for (int64_t b = 0; b < blocks_per_stage; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        std::shared_ptr<nn::Module<T>> downsample;
        if (stride != 1 || channels != planes[stage]) {
          if (shortcut == CifarShortcut::A)
            downsample = std::make_shared<ShortcutA<T>>(channels, planes[stage], stride);
          else
            downsample = make_projection<T>(channels, planes[stage], stride);
        }
        layer->push_back(
            std::make_shared<BasicBlock<T>>(channels, planes[stage], stride, downsample));
        channels = planes[stage];
      }
      layers[stage] = this->register_module("layer" + std::to_string(stage + 1), layer);
    }
    avgpool = this->register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d<T>>(1));
    fc = this->register_module("fc", std::make_shared<nn::Linear<T>>(64, num_classes, true, gen));
    init_like_torchvision_<T>(*this, {}, gen);
  }

  // x [N, C, H, W] -> logits [N, K]
  Tensor<T> forward(const Tensor<T>& x) override {
    check(x.dim() == 4 && x.size(1) == in_channels_, name(), "expected x [N, ", in_channels_,
          ", H, W], got ", to_string(x.shape()));
    Tensor<T> h = bn1->forward_fused(conv1->forward(x), BatchNormActivation::relu);
    for (auto& layer : layers) h = layer->forward(h);
    return fc->forward(flatten(avgpool->forward(h), 1));
  }

  // "resnet20" for n = 3
  std::string name() const { return "resnet" + std::to_string(6 * n_ + 2); }

  // "resnet20(num_classes=10, in_channels=1, shortcut=A)"
  std::string describe() const override {
    return name() + "(num_classes=" + std::to_string(num_classes_) +
           ", in_channels=" + std::to_string(in_channels_) +
           ", shortcut=" + shortcut_name(shortcut_) + ")";
  }

  std::shared_ptr<nn::Conv2d<T>> conv1;
  std::shared_ptr<nn::BatchNorm2d<T>> bn1;
  std::shared_ptr<nn::ReLU<T>> relu;
  std::array<std::shared_ptr<nn::Sequential<T>>, 3> layers;  // layer1..layer3
  std::shared_ptr<nn::AdaptiveAvgPool2d<T>> avgpool;
  std::shared_ptr<nn::Linear<T>> fc;

 private:
  int64_t n_, num_classes_, in_channels_;
  CifarShortcut shortcut_;
};

// ResNet-20 / 32 / 56 for CIFAR-sized images.
template <class T = float>
std::shared_ptr<CifarResNet<T>> resnet20(int64_t num_classes = 10, int64_t in_channels = 3,
                                         CifarShortcut shortcut = CifarShortcut::A,
                                         Generator& gen = global_generator()) {
  return std::make_shared<CifarResNet<T>>(3, num_classes, in_channels, shortcut, gen);
}
template <class T = float>
std::shared_ptr<CifarResNet<T>> resnet32(int64_t num_classes = 10, int64_t in_channels = 3,
                                         CifarShortcut shortcut = CifarShortcut::A,
                                         Generator& gen = global_generator()) {
  return std::make_shared<CifarResNet<T>>(5, num_classes, in_channels, shortcut, gen);
}
template <class T = float>
std::shared_ptr<CifarResNet<T>> resnet56(int64_t num_classes = 10, int64_t in_channels = 3,
                                         CifarShortcut shortcut = CifarShortcut::A,
                                         Generator& gen = global_generator()) {
  return std::make_shared<CifarResNet<T>>(9, num_classes, in_channels, shortcut, gen);
}

}  // namespace trit::models
