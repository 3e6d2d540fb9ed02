#pragma once
// nn::Conv2d<T>: 2-d convolution of x [N, C, H, W] with a K x K kernel, as torch.nn.Conv2d.
// Parameters "weight" [O, C/G, K, K] and (unless bias is off) "bias" [O], initialised as
// PyTorch's default.
#include <cstdint>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/nn/init.hpp"
#include "trit/nn/module.hpp"
#include "trit/ops/conv.hpp"

namespace trit::nn {

// The layer's geometry; `bias` on by default as in PyTorch (off before BatchNorm).
struct Conv2dOptions {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  int64_t groups = 1;
  bool bias = true;
};

template <class T = float>
class Conv2d : public Module<T> {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size,
         const Conv2dOptions& options = {}, Generator& gen = global_generator())
      : in_(in_channels), out_(out_channels), kernel_(kernel_size), options_(options) {
    const auto& o = options;
    check(in_channels > 0 && out_channels > 0 && kernel_size > 0, "Conv2d",
          "channels and kernel_size must be > 0, got ", in_channels, ", ", out_channels, ", ",
          kernel_size);
    check(o.stride > 0 && o.dilation > 0 && o.padding >= 0 && o.groups > 0, "Conv2d",
          "bad geometry: stride ", o.stride, ", padding ", o.padding, ", dilation ", o.dilation,
          ", groups ", o.groups);
    check(in_channels % o.groups == 0 && out_channels % o.groups == 0, "Conv2d",
          "channels ", in_channels, " -> ", out_channels, " are not divisible by groups ",
          o.groups);
    weight = this->register_parameter(
        "weight",
        Tensor<T>::empty({out_channels, in_channels / o.groups, kernel_size, kernel_size}));
    if (o.bias) bias = this->register_parameter("bias", Tensor<T>::empty({out_channels}));
    init::default_layer_init_(weight, bias, gen);
  }

  // x [N, C, H, W] -> [N, O, H', W']
  Tensor<T> forward(const Tensor<T>& x) override { return forward_measured(x, nullptr); }

  // forward, also measuring the output planes' moments into `moments` when not null (for
  // the BatchNorm2d that follows, see BatchNorm2d::forward_conv).
  Tensor<T> forward_measured(const Tensor<T>& x, kernels::PlaneMoments* moments) {
    return trit::conv2d(x, weight, bias,
                        trit::Conv2dOptions{.stride = options_.stride,
                                            .padding = options_.padding,
                                            .dilation = options_.dilation,
                                            .groups = options_.groups},
                        moments);
  }

  // "Conv2d(3, 16, kernel_size=3, stride=1, padding=1, bias=False)"; dilation and groups
  // appear when not 1.
  std::string describe() const override {
    std::string s = "Conv2d(" + std::to_string(in_) + ", " + std::to_string(out_) +
                    ", kernel_size=" + std::to_string(kernel_) +
                    ", stride=" + std::to_string(options_.stride) +
                    ", padding=" + std::to_string(options_.padding);
    if (options_.dilation != 1) s += ", dilation=" + std::to_string(options_.dilation);
    if (options_.groups != 1) s += ", groups=" + std::to_string(options_.groups);
    if (!options_.bias) s += ", bias=False";
    return s + ")";
  }

  const Conv2dOptions& options() const { return options_; }
  int64_t in_channels() const { return in_; }
  int64_t out_channels() const { return out_; }
  int64_t kernel_size() const { return kernel_; }

  Tensor<T> weight;  // [O, C/G, K, K]
  Tensor<T> bias;    // [O], undefined without bias

 private:
  int64_t in_, out_, kernel_;
  Conv2dOptions options_;
};

}  // namespace trit::nn
