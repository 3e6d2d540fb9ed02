#pragma once
// nn::Identity<T>: returns its input (a placeholder, e.g. a ResNet shortcut without
// projection).
#include <string>

#include "trit/nn/module.hpp"

namespace trit::nn {

template <class T = float>
class Identity : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return x; }
  std::string describe() const override { return "Identity()"; }
};

}  // namespace trit::nn
