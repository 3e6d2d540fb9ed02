#pragma once
// Activation layers: parameter-free modules wrapping the ops of trit/ops/activation.hpp.
// Each maps x of any shape to the same shape, elementwise.
#include <sstream>
#include <string>

#include "trit/nn/module.hpp"
#include "trit/ops/activation.hpp"

namespace trit::nn {

// max(x, 0)
template <class T = float>
class ReLU : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return trit::relu(x); }
  std::string describe() const override { return "ReLU()"; }
};

// min(max(x, 0), 6)
template <class T = float>
class ReLU6 : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return trit::relu6(x); }
  std::string describe() const override { return "ReLU6()"; }
};

// x for x >= 0, negative_slope * x otherwise.
template <class T = float>
class LeakyReLU : public Module<T> {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Tensor<T> forward(const Tensor<T>& x) override { return trit::leaky_relu(x, T(slope_)); }
  std::string describe() const override {
    std::ostringstream s;
    s << "LeakyReLU(negative_slope=" << slope_ << ")";
    return s.str();
  }

 private:
  double slope_;
};

// 1 / (1 + exp(-x))
template <class T = float>
class Sigmoid : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return trit::sigmoid(x); }
  std::string describe() const override { return "Sigmoid()"; }
};

template <class T = float>
class Tanh : public Module<T> {
 public:
  Tensor<T> forward(const Tensor<T>& x) override { return trit::tanh(x); }
  std::string describe() const override { return "Tanh()"; }
};

}  // namespace trit::nn
