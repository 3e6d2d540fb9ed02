#pragma once
// nn::BatchNorm2d<T>: per-channel batch normalisation of x [N, C, H, W], as
// torch.nn.BatchNorm2d (affine, tracking running statistics).
//
// Registered as PyTorch names them, so state_dict keys match torchvision: parameters "weight"
// (ones) and "bias" (zeros), buffers "running_mean" (zeros), "running_var" (ones) and
// "num_batches_tracked" (a one-element scalar tensor, shape [] as in PyTorch, counting
// training forwards).
// Training: normalises with the batch's statistics and updates the running ones
// (running = (1 - momentum) * running + momentum * batch, unbiased variance). Eval: uses the
// running statistics.
#include <cstdint>
#include <sstream>
#include <string>

#include "trit/nn/module.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/ops/batch_norm.hpp"

namespace trit::nn {

template <class T = float>
class BatchNorm2d : public Module<T> {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1)
      : num_features_(num_features), eps_(eps), momentum_(momentum) {
    check(num_features > 0, "BatchNorm2d", "num_features must be > 0, got ", num_features);
    check(eps > 0, "BatchNorm2d", "eps must be > 0, got ", eps);
    check(momentum >= 0 && momentum <= 1, "BatchNorm2d", "momentum must be in [0, 1], got ",
          momentum);
    weight = this->register_parameter("weight", Tensor<T>::ones({num_features}));
    bias = this->register_parameter("bias", Tensor<T>::zeros({num_features}));
    running_mean = this->register_buffer("running_mean", Tensor<T>::zeros({num_features}));
    running_var = this->register_buffer("running_var", Tensor<T>::ones({num_features}));
    num_batches_tracked = this->register_buffer("num_batches_tracked", Tensor<T>::zeros({}));
  }

  // x [N, C, H, W] -> same shape.
  Tensor<T> forward(const Tensor<T>& x) override {
    return forward_fused(x, BatchNormActivation::none);
  }

  // The normalisation fused with what follows it: act(bn(x) + residual) in one pass, with
  // act ReLU or ReLU6 and residual (x's shape) optional; the same values as the modules run
  // one after the other (see ops/batch_norm.hpp). nn::Sequential calls it for a BatchNorm2d
  // followed by a ReLU or ReLU6, the ResNet blocks for bn -> (+ shortcut) -> relu.
  Tensor<T> forward_fused(const Tensor<T>& x, BatchNormActivation activation,
                          const Tensor<T>& residual = Tensor<T>(),
                          const kernels::PlaneMoments* moments = nullptr) {
    Tensor<T> y = trit::batch_norm(x, weight, bias, running_mean, running_var, this->is_training(),
                                   momentum_, eps_, activation, residual, moments);
    if (this->is_training()) num_batches_tracked.data()[0] += T(1);
    return y;
  }

  // forward_fused(conv(x), activation, residual): in training the convolution measures its
  // output planes' moments as it writes them, so the normalisation skips its own pass over
  // memory for the batch statistics (the same values). nn::Sequential calls it for a Conv2d
  // followed by a BatchNorm2d, the ResNet and MobileNetV2 blocks for their conv -> bn pairs.
  Tensor<T> forward_conv(Conv2d<T>& conv, const Tensor<T>& x,
                         BatchNormActivation activation = BatchNormActivation::none,
                         const Tensor<T>& residual = Tensor<T>()) {
    if (!this->is_training()) return forward_fused(conv.forward(x), activation, residual);
    kernels::PlaneMoments moments;
    const Tensor<T> h = conv.forward_measured(x, &moments);
    return forward_fused(h, activation, residual, &moments);
  }

  // "BatchNorm2d(16, eps=1e-05, momentum=0.1)"
  std::string describe() const override {
    std::ostringstream s;
    s << "BatchNorm2d(" << num_features_ << ", eps=" << eps_ << ", momentum=" << momentum_ << ")";
    return s.str();
  }

  int64_t num_features() const { return num_features_; }
  double eps() const { return eps_; }
  double momentum() const { return momentum_; }

  Tensor<T> weight, bias;                // [C] gamma, beta
  Tensor<T> running_mean, running_var;   // [C]
  Tensor<T> num_batches_tracked;         // [] training forwards so far

 private:
  int64_t num_features_;
  double eps_, momentum_;
};

}  // namespace trit::nn
