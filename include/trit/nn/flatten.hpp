#pragma once
// nn::Flatten<T>: merges dimensions start_dim..end_dim into one, as torch.nn.Flatten
// (defaults: [N, C, H, W] -> [N, C*H*W]).
#include <cstdint>
#include <string>

#include "trit/nn/module.hpp"
#include "trit/ops/shape.hpp"

namespace trit::nn {

template <class T = float>
class Flatten : public Module<T> {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1)
      : start_(start_dim), end_(end_dim) {}
  Tensor<T> forward(const Tensor<T>& x) override { return trit::flatten(x, start_, end_); }
  std::string describe() const override {
    return "Flatten(start_dim=" + std::to_string(start_) + ", end_dim=" + std::to_string(end_) +
           ")";
  }

 private:
  int64_t start_, end_;
};

}  // namespace trit::nn
