#pragma once
// The weight initialisation torchvision gives its classification models, applied to a whole
// module tree after construction (the layers' own PyTorch-default init is overwritten):
//
//   init_like_torchvision_(model, {.linear = LinearInit::normal_001}, gen)
//     every Conv2d: weight kaiming_normal_(mode = fan_out, ReLU gain sqrt(2)), bias zeros
//     every BatchNorm2d: weight ones, bias zeros (already so after construction)
//     every Linear: kept at PyTorch's default (ResNet), or normal(0, 0.01) with zero bias
//                   (MobileNetV2)
// Modules are visited depth first in registration order, so a model built and initialised
// from the same Generator seed always has the same weights.
#include <functional>

#include "trit/core/rng.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
#include "trit/nn/init.hpp"
#include "trit/nn/linear.hpp"
#include "trit/nn/module.hpp"

namespace trit::models {

// Calls f(module) on `root` and every module below it, depth first, in registration order.
template <class T>
void for_each_module(nn::Module<T>& root, const std::function<void(nn::Module<T>&)>& f) {
  f(root);
  for (auto& [name, child] : root.children()) for_each_module(*child, f);
}

enum class LinearInit {
  pytorch_default,  // kaiming_uniform_(a = sqrt(5)) weight, uniform bias (ResNet)
  normal_001,       // weight normal(0, 0.01), bias zeros (MobileNetV2)
};

struct TorchvisionInit {
  LinearInit linear = LinearInit::pytorch_default;
};

template <class T>
void init_like_torchvision_(nn::Module<T>& root, const TorchvisionInit& options = {},
                            Generator& gen = global_generator()) {
  for_each_module<T>(root, [&](nn::Module<T>& m) {
    if (auto* conv = dynamic_cast<nn::Conv2d<T>*>(&m)) {
      nn::init::kaiming_normal_(conv->weight, 0.0, nn::init::FanMode::fan_out, gen);
      if (conv->bias.defined()) conv->bias.fill(T(0));
    } else if (auto* bn = dynamic_cast<nn::BatchNorm2d<T>*>(&m)) {
      bn->weight.fill(T(1));
      bn->bias.fill(T(0));
    } else if (auto* linear = dynamic_cast<nn::Linear<T>*>(&m)) {
      if (options.linear == LinearInit::normal_001) {
        nn::init::normal_(linear->weight, 0.0, 0.01, gen);
        if (linear->bias.defined()) linear->bias.fill(T(0));
      }
    }
  });
}

}  // namespace trit::models
