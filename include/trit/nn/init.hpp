#pragma once
// Weight initialisation, in place, drawn in element order from a Generator (reproducible):
// PyTorch's defaults for Conv2d and Linear, and the Kaiming / constant fills models use.
//
// fan_in of a weight [O, I, K...] is I * prod(K...), fan_out is O * prod(K...) (PyTorch's
// _calculate_fan_in_and_fan_out). PyTorch's default Conv2d / Linear initialisation is
//   weight: kaiming_uniform_(w, a = sqrt(5))  ->  uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
//   bias:   uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
#include <cmath>
#include <cstdint>
#include <string>

#include "trit/core/error.hpp"
#include "trit/core/rng.hpp"
#include "trit/core/tensor.hpp"

namespace trit::nn::init {

enum class FanMode { fan_in, fan_out };

// fan_in or fan_out of a weight with at least 2 dimensions.
template <class T>
int64_t fan(const Tensor<T>& w, FanMode mode) {
  check(w.dim() >= 2, "nn::init", "fan needs a weight of rank >= 2, got ", to_string(w.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < w.dim(); ++d) receptive *= w.size(d);
  return (mode == FanMode::fan_in ? w.size(1) : w.size(0)) * receptive;
}

// Every element uniform in [low, high).
template <class T>
void uniform_(Tensor<T>& t, double low, double high, Generator& gen = global_generator()) {
  check(low <= high, "nn::init::uniform_", "low ", low, " > high ", high);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = T(gen.uniform(low, high));
}

// Every element normal(mean, stddev).
template <class T>
void normal_(Tensor<T>& t, double mean, double stddev, Generator& gen = global_generator()) {
  check(stddev >= 0, "nn::init::normal_", "stddev must be >= 0, got ", stddev);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = T(gen.normal(mean, stddev));
}

template <class T>
void constant_(Tensor<T>& t, double value) { t.fill(T(value)); }

// Gain of leaky_relu with negative slope a: sqrt(2 / (1 + a^2)) (a = 0: ReLU's sqrt(2)).
inline double leaky_relu_gain(double a) { return std::sqrt(2.0 / (1.0 + a * a)); }

// Uniform in [-bound, bound], bound = gain(a) * sqrt(3 / fan).
template <class T>
void kaiming_uniform_(Tensor<T>& w, double a = 0.0, FanMode mode = FanMode::fan_in,
                      Generator& gen = global_generator()) {
  double bound = leaky_relu_gain(a) * std::sqrt(3.0 / double(fan(w, mode)));
  uniform_(w, -bound, bound, gen);
}

// Normal(0, gain(a) / sqrt(fan)); torchvision's ResNet uses mode fan_out, a = 0.
template <class T>
void kaiming_normal_(Tensor<T>& w, double a = 0.0, FanMode mode = FanMode::fan_in,
                     Generator& gen = global_generator()) {
  normal_(w, 0.0, leaky_relu_gain(a) / std::sqrt(double(fan(w, mode))), gen);
}

// PyTorch's default for Conv2d / Linear: weight kaiming_uniform_(a = sqrt(5)), then the bias
// (if defined) uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)).
template <class T>
void default_layer_init_(Tensor<T>& weight, Tensor<T>& bias, Generator& gen = global_generator()) {
  kaiming_uniform_(weight, std::sqrt(5.0), FanMode::fan_in, gen);
  if (bias.defined()) {
    double bound = 1.0 / std::sqrt(double(fan(weight, FanMode::fan_in)));
    uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace trit::nn::init
