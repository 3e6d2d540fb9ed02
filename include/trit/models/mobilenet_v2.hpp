#pragma once
// models::MobileNetV2 (Sandler et al. 2018), exactly torchvision's mobilenet_v2: structure,
// parameter names, counts (3,504,872 with K = 1000, width 1.0) and initialisation.
//
//   x [N, C, H, W]
//   features.0   ConvBNReLU6 3x3 C -> 32w, stride 2
//   features.1.. InvertedResidual blocks from the table below (t expand ratio, c channels
//                times the width, n blocks, s stride of the first block of the row)
//   features.18  ConvBNReLU6 1x1 -> last_channel = 1280 * max(1, width)
//   adaptive average pool to 1x1 (no module) -> flatten
//   classifier   Sequential(0: Dropout(0.2), 1: Linear(last_channel -> K))   logits [N, K]
//
// Channel counts go through make_divisible(c * width, 8) as torchvision's _make_divisible.
//
// small_input (the usual CIFAR variant, 32x32 or 28x28 images): exactly two strides change,
// features.0 (stride 2 -> 1) and the first block of the second table row, features.2
// (t=6, c=24: stride 2 -> 1). The remaining stride-2 blocks (features.4, 7, 14) take 32x32
// to 4x4. Parameter names and shapes do not change.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/models/conv_bn.hpp"
#include "trit/models/init.hpp"
#include "trit/models/inverted_residual.hpp"
#include "trit/nn/dropout.hpp"
#include "trit/nn/linear.hpp"
#include "trit/nn/sequential.hpp"
#include "trit/ops/pool.hpp"
#include "trit/ops/shape.hpp"

namespace trit::models {

// torchvision's _make_divisible: v rounded to the nearest multiple of `divisor` (at least
// `divisor`), rounded up a step more if that lost over 10% of v.
inline int64_t make_divisible(double v, int64_t divisor = 8) {
  int64_t rounded =
      std::max<int64_t>(divisor, static_cast<int64_t>(v + divisor / 2.0) / divisor * divisor);
  if (double(rounded) < 0.9 * v) rounded += divisor;
  return rounded;
}

template <class T = float>
class MobileNetV2 : public nn::Module<T> {
 public:
  MobileNetV2(int64_t num_classes = 1000, double width_mult = 1.0, bool small_input = false,
              int64_t in_channels = 3, double dropout = 0.2, Generator& gen = global_generator())
      : num_classes_(num_classes),
        width_(width_mult),
        small_input_(small_input),
        in_channels_(in_channels) {
    check(num_classes > 0 && in_channels > 0 && width_mult > 0, "mobilenet_v2",
          "num_classes, in_channels and width_mult must be > 0, got ", num_classes, ", ",
          in_channels, ", ", width_mult);
    // t (expand ratio), c (channels at width 1), n (blocks), s (first block's stride)
    struct Row {
      int64_t t, c, n, s;
    };
    const Row rows[] = {{1, 16, 1, 1}, {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                        {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
    int64_t channels = make_divisible(32 * width_mult);
    last_channel_ = make_divisible(1280 * std::max(1.0, width_mult));

    features = this->register_module("features", std::make_shared<nn::Sequential<T>>());
    features->push_back(make_conv_bn_relu6<T>(in_channels, channels, 3, small_input ? 1 : 2));
    for (int row = 0; row < 7; ++row) {
      const int64_t out = make_divisible(rows[row].c * width_mult);
      for (int64_t i = 0; i < rows[row].n; ++i) {
        int64_t stride = i == 0 ? rows[row].s : 1;
        if (small_input && row == 1 && i == 0) stride = 1;  // the CIFAR variant
        features->push_back(
            std::make_shared<InvertedResidual<T>>(channels, out, stride, double(rows[row].t)));
        channels = out;
      }
    }
    features->push_back(make_conv_bn_relu6<T>(channels, last_channel_, 1));
    classifier = this->register_module(
        "classifier", std::make_shared<nn::Sequential<T>>(
                          std::make_shared<nn::Dropout<T>>(dropout),
                          std::make_shared<nn::Linear<T>>(last_channel_, num_classes, true, gen)));
    init_like_torchvision_<T>(*this, {.linear = LinearInit::normal_001}, gen);
  }

  // x [N, C, H, W] -> logits [N, K]
  Tensor<T> forward(const Tensor<T>& x) override {
    check(x.dim() == 4 && x.size(1) == in_channels_, "mobilenet_v2", "expected x [N, ",
          in_channels_, ", H, W], got ", to_string(x.shape()));
    Tensor<T> h = features->forward(x);
    return classifier->forward(flatten(adaptive_avg_pool2d(h, 1, 1), 1));
  }

  // "mobilenet_v2(num_classes=10, width_mult=0.5, small_input=true, in_channels=3)"
  std::string describe() const override {
    std::ostringstream s;
    s << "mobilenet_v2(num_classes=" << num_classes_ << ", width_mult=" << width_
      << ", small_input=" << (small_input_ ? "true" : "false") << ", in_channels=" << in_channels_
      << ")";
    return s.str();
  }

  int64_t last_channel() const { return last_channel_; }

  std::shared_ptr<nn::Sequential<T>> features;    // features.0 .. features.18
  std::shared_ptr<nn::Sequential<T>> classifier;  // 0: Dropout, 1: Linear

 private:
  int64_t num_classes_;
  double width_;
  bool small_input_;
  int64_t in_channels_;
  int64_t last_channel_ = 0;
};

// torchvision's mobilenet_v2(num_classes, width_mult), with the CIFAR variant under
// small_input and C = in_channels input channels.
template <class T = float>
std::shared_ptr<MobileNetV2<T>> mobilenet_v2(int64_t num_classes = 1000, double width_mult = 1.0,
                                             bool small_input = false, int64_t in_channels = 3,
                                             Generator& gen = global_generator()) {
  return std::make_shared<MobileNetV2<T>>(num_classes, width_mult, small_input, in_channels, 0.2,
                                          gen);
}

}  // namespace trit::models
