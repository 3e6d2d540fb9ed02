#pragma once
// nn::Linear<T>: y = x W^T + b for x [N, in], W [out, in], b [out]. Parameters "weight" and
// (unless bias is off) "bias", initialised as PyTorch's torch.nn.Linear.
#include <cstdint>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/nn/init.hpp"
#include "trit/nn/module.hpp"
#include "trit/ops/linalg.hpp"

namespace trit::nn {

template <class T = float>
class Linear : public Module<T> {
 public:
  Linear(int64_t in_features, int64_t out_features, bool with_bias = true,
         Generator& gen = global_generator())
      : in_(in_features), out_(out_features) {
    check(in_features > 0 && out_features > 0, "Linear", "features must be > 0, got in ",
          in_features, " and out ", out_features);
    weight = this->register_parameter("weight", Tensor<T>::empty({out_features, in_features}));
    if (with_bias) bias = this->register_parameter("bias", Tensor<T>::empty({out_features}));
    init::default_layer_init_(weight, bias, gen);
  }

  // x [N, in] -> [N, out]
  Tensor<T> forward(const Tensor<T>& x) override { return trit::linear(x, weight, bias); }

  std::string describe() const override {
    return "Linear(in_features=" + std::to_string(in_) + ", out_features=" +
           std::to_string(out_) + ", bias=" + (bias.defined() ? "True" : "False") + ")";
  }

  Tensor<T> weight;  // [out, in]
  Tensor<T> bias;    // [out], undefined without bias

 private:
  int64_t in_, out_;
};

}  // namespace trit::nn
