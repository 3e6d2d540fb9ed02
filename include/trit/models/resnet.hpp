#pragma once
// models::ResNet: the ImageNet ResNets of torchvision (He et al. 2015, v1.5 bottleneck), with
// torchvision's structure, parameter names and counts, and a small-input variant.
//
//   x [N, C, H, W]
//   conv1   7x7 C -> 64, stride 2, padding 3, no bias -> bn1 -> relu
//   maxpool 3x3, stride 2, padding 1
//   layer1..layer4: blocks at 64, 128, 256, 512 planes; the first block of layer2..4 has
//           stride 2 and, where the shape changes, a 1x1 conv + BN downsample
//   avgpool adaptive to 1x1 -> flatten -> fc  512 * expansion -> K   logits [N, K]
//
//   resnet18: BasicBlock  [2, 2, 2, 2]   11,689,512 parameters with K = 1000
//   resnet34: BasicBlock  [3, 4, 6, 3]   21,797,672
//   resnet50: Bottleneck  [3, 4, 6, 3]   25,557,032
//
// small_input (CIFAR-sized images, 32x32 or 28x28): conv1 is 3x3, stride 1, padding 1 and
// maxpool is an Identity, so layer1 sees the full resolution (32 -> 32, 16, 8, 4). The
// parameter names stay the same; only conv1.weight's shape changes ([64, C, 3, 3]).
// Initialisation as torchvision: convs kaiming_normal_(fan_out), BN ones/zeros, fc PyTorch's
// default (init.hpp).
#include <array>
#include <cstdint>
#include <memory>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/models/basic_block.hpp"
#include "trit/models/bottleneck.hpp"
#include "trit/models/conv_bn.hpp"
#include "trit/models/init.hpp"
#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/identity.hpp"
#include "trit/nn/linear.hpp"
#include "trit/nn/pooling.hpp"
#include "trit/nn/sequential.hpp"
#include "trit/ops/shape.hpp"

namespace trit::models {

enum class ResNetBlock { basic, bottleneck };

// What a ResNet is made of: block type and number of blocks per stage.
struct ResNetLayout {
  ResNetBlock block = ResNetBlock::basic;
  std::array<int64_t, 4> blocks = {2, 2, 2, 2};
};

template <class T = float>
class ResNet : public nn::Module<T> {
 public:
  ResNet(const std::string& name, const ResNetLayout& layout, int64_t num_classes = 1000,
         int64_t in_channels = 3, bool small_input = false, Generator& gen = global_generator())
      : name_(name),
        num_classes_(num_classes),
        in_channels_(in_channels),
        small_input_(small_input) {
    check(num_classes > 0 && in_channels > 0, name, "num_classes and in_channels must be > 0, got ",
          num_classes, " and ", in_channels);
    const int64_t expansion =
        layout.block == ResNetBlock::basic ? BasicBlock<T>::expansion : Bottleneck<T>::expansion;
    conv1 = this->register_module(
        "conv1", small_input
                     ? std::make_shared<nn::Conv2d<T>>(
                           in_channels, 64, 3, nn::Conv2dOptions{.padding = 1, .bias = false}, gen)
                     : std::make_shared<nn::Conv2d<T>>(
                           in_channels, 64, 7,
                           nn::Conv2dOptions{.stride = 2, .padding = 3, .bias = false}, gen));
    bn1 = this->register_module("bn1", std::make_shared<nn::BatchNorm2d<T>>(64));
    relu = this->register_module("relu", std::make_shared<nn::ReLU<T>>());
    if (small_input)
      maxpool = this->register_module("maxpool", std::make_shared<nn::Identity<T>>());
    else
      maxpool = this->register_module("maxpool", std::make_shared<nn::MaxPool2d<T>>(3, 2, 1));

    // torchvision's _make_layer: the first block of a stage takes the stride and, where the
    // shape changes, a projection; the others map planes * expansion to itself.
    int64_t channels = 64;
    const int64_t planes[4] = {64, 128, 256, 512};
    for (int stage = 0; stage < 4; ++stage) {
      auto layer = std::make_shared<nn::Sequential<T>>();
      for (int64_t b = 0; b < layout.blocks[stage]; ++b) {
        const int64_t stride = (stage > 0 && b == 0) ? 2 : 1;
        const int64_t out = planes[stage] * expansion;
        std::shared_ptr<nn::Module<T>> downsample;
        if (stride != 1 || channels != out) downsample = make_projection<T>(channels, out, stride);
        if (layout.block == ResNetBlock::basic)
          layer->push_back(
              std::make_shared<BasicBlock<T>>(channels, planes[stage], stride, downsample));
        else
          layer->push_back(
              std::make_shared<Bottleneck<T>>(channels, planes[stage], stride, downsample));
        channels = out;
      }
      layers[stage] = this->register_module("layer" + std::to_string(stage + 1), layer);
    }
    avgpool = this->register_module("avgpool", std::make_shared<nn::AdaptiveAvgPool2d<T>>(1));
    fc = this->register_module("fc",
                               std::make_shared<nn::Linear<T>>(channels, num_classes, true, gen));
    init_like_torchvision_<T>(*this, {}, gen);
  }

  // x [N, C, H, W] -> logits [N, K]
  Tensor<T> forward(const Tensor<T>& x) override {
    check(x.dim() == 4 && x.size(1) == in_channels_, name_, "expected x [N, ", in_channels_,
          ", H, W], got ", to_string(x.shape()));
    Tensor<T> h = maxpool->forward(bn1->forward_fused(conv1->forward(x), BatchNormActivation::relu));
    for (auto& layer : layers) h = layer->forward(h);
    return fc->forward(flatten(avgpool->forward(h), 1));
  }

  // "resnet18(num_classes=10, in_channels=3, small_input=true)"
  std::string describe() const override {
    return name_ + "(num_classes=" + std::to_string(num_classes_) +
           ", in_channels=" + std::to_string(in_channels_) +
           ", small_input=" + (small_input_ ? "true" : "false") + ")";
  }

  std::shared_ptr<nn::Conv2d<T>> conv1;
  std::shared_ptr<nn::BatchNorm2d<T>> bn1;
  std::shared_ptr<nn::ReLU<T>> relu;
  std::shared_ptr<nn::Module<T>> maxpool;  // MaxPool2d, or Identity with small_input
  std::array<std::shared_ptr<nn::Sequential<T>>, 4> layers;  // layer1..layer4
  std::shared_ptr<nn::AdaptiveAvgPool2d<T>> avgpool;
  std::shared_ptr<nn::Linear<T>> fc;

 private:
  std::string name_;
  int64_t num_classes_, in_channels_;
  bool small_input_;
};

// ResNet-18 / 34 / 50 as torchvision's resnet18/34/50 (weights=None), K = num_classes.
template <class T = float>
std::shared_ptr<ResNet<T>> resnet18(int64_t num_classes = 1000, int64_t in_channels = 3,
                                    bool small_input = false, Generator& gen = global_generator()) {
  return std::make_shared<ResNet<T>>("resnet18", ResNetLayout{ResNetBlock::basic, {2, 2, 2, 2}},
                                     num_classes, in_channels, small_input, gen);
}
template <class T = float>
std::shared_ptr<ResNet<T>> resnet34(int64_t num_classes = 1000, int64_t in_channels = 3,
                                    bool small_input = false, Generator& gen = global_generator()) {
  return std::make_shared<ResNet<T>>("resnet34", ResNetLayout{ResNetBlock::basic, {3, 4, 6, 3}},
                                     num_classes, in_channels, small_input, gen);
}
template <class T = float>
std::shared_ptr<ResNet<T>> resnet50(int64_t num_classes = 1000, int64_t in_channels = 3,
                                    bool small_input = false, Generator& gen = global_generator()) {
  return std::make_shared<ResNet<T>>("resnet50",
                                     ResNetLayout{ResNetBlock::bottleneck, {3, 4, 6, 3}},
                                     num_classes, in_channels, small_input, gen);
}

}  // namespace trit::models
