#pragma once
// Pooling layers over x [N, C, H, W], as torch.nn's, wrapping trit/ops/pool.hpp.
// stride 0 means "equal to the kernel size" (PyTorch's default stride=None).
#include <cstdint>
#include <string>

#include "trit/nn/module.hpp"
#include "trit/ops/pool.hpp"

namespace trit::nn {

namespace detail {
// "MaxPool2d(kernel_size=2, stride=2, padding=0)"
inline std::string pool_description(const std::string& name, int64_t kernel, int64_t stride,
                                    int64_t padding) {
  return name + "(kernel_size=" + std::to_string(kernel) +
         ", stride=" + std::to_string(stride ? stride : kernel) +
         ", padding=" + std::to_string(padding) + ")";
}
}  // namespace detail

// Maximum over K x K windows.
template <class T = float>
class MaxPool2d : public Module<T> {
 public:
  explicit MaxPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0)
      : kernel_(kernel_size), stride_(stride), padding_(padding) {
    check(kernel_size > 0 && stride >= 0 && padding >= 0, "MaxPool2d", "bad geometry: kernel ",
          kernel_size, ", stride ", stride, ", padding ", padding);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    return trit::max_pool2d(x, kernel_, stride_, padding_);
  }
  std::string describe() const override {
    return detail::pool_description("MaxPool2d", kernel_, stride_, padding_);
  }

 private:
  int64_t kernel_, stride_, padding_;
};

// Mean over K x K windows (padding counted as zeros, PyTorch's count_include_pad=True).
template <class T = float>
class AvgPool2d : public Module<T> {
 public:
  explicit AvgPool2d(int64_t kernel_size, int64_t stride = 0, int64_t padding = 0)
      : kernel_(kernel_size), stride_(stride), padding_(padding) {
    check(kernel_size > 0 && stride >= 0 && padding >= 0, "AvgPool2d", "bad geometry: kernel ",
          kernel_size, ", stride ", stride, ", padding ", padding);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    return trit::avg_pool2d(x, kernel_, stride_, padding_);
  }
  std::string describe() const override {
    return detail::pool_description("AvgPool2d", kernel_, stride_, padding_);
  }

 private:
  int64_t kernel_, stride_, padding_;
};

// Mean over adaptive windows giving an output of [N, C, out_h, out_w] whatever H, W.
template <class T = float>
class AdaptiveAvgPool2d : public Module<T> {
 public:
  explicit AdaptiveAvgPool2d(int64_t output_size) : AdaptiveAvgPool2d(output_size, output_size) {}
  AdaptiveAvgPool2d(int64_t out_h, int64_t out_w) : out_h_(out_h), out_w_(out_w) {
    check(out_h > 0 && out_w > 0, "AdaptiveAvgPool2d", "output size must be > 0, got ", out_h,
          " x ", out_w);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    return trit::adaptive_avg_pool2d(x, out_h_, out_w_);
  }
  std::string describe() const override {
    return "AdaptiveAvgPool2d(output_size=(" + std::to_string(out_h_) + ", " +
           std::to_string(out_w_) + "))";
  }

 private:
  int64_t out_h_, out_w_;
};

}  // namespace trit::nn
