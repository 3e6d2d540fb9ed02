#pragma once
// optim::Adam<Q, T> and optim::AdamW<Q, T>: Adam with PyTorch's bias correction, with L2
// weight decay folded into the gradient (Adam) or decoupled from it (AdamW), exactly
// torch.optim.Adam / AdamW (amsgrad off), on the latent weights of policy Q.
//
// Per parameter, on its n-th update, with g the gradient and p the latent weight:
//   Adam:   g = g + weight_decay * p          AdamW:  p = p * (1 - lr * weight_decay)
//   m = beta1 * m + (1 - beta1) * g
//   v = beta2 * v + (1 - beta2) * g^2
//   p -= lr / (1 - beta1^n) * m / (sqrt(v) / sqrt(1 - beta2^n) + eps)
// State: p.state = {m, v}, zeros before the first update.
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "trit/optim/optimizer.hpp"
#include "trit/quant/none.hpp"

namespace trit::optim {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

// The same fields; only the default weight decay differs (PyTorch's AdamW uses 0.01).
struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

namespace detail {

// Throws trit::Error naming `where` and the bad field.
template <class Options>
void validate_adam(const Options& o, const std::string& where) {
  check(o.lr >= 0 && std::isfinite(o.lr), where, "lr must be >= 0, got ", o.lr);
  check(o.beta1 >= 0 && o.beta1 < 1, where, "beta1 must be in [0, 1), got ", o.beta1);
  check(o.beta2 >= 0 && o.beta2 < 1, where, "beta2 must be in [0, 1), got ", o.beta2);
  check(o.eps >= 0, where, "eps must be >= 0, got ", o.eps);
  check(o.weight_decay >= 0, where, "weight_decay must be >= 0, got ", o.weight_decay);
}

// The shared rule; `Decoupled` picks AdamW's weight decay.
template <class Quantizer, class T, class Options, bool Decoupled>
  requires WeightQuantizer<Quantizer, T>
class AdamRule : public Optimizer<Quantizer, T> {
  using Base = Optimizer<Quantizer, T>;

 public:
  AdamRule(const typename Base::NamedTensors& parameters, const Options& options,
           Quantizer policy)
      : Base(parameters, (validate_adam(options, Decoupled ? "AdamW" : "Adam"), options.lr),
             std::move(policy)),
        options_(options) {}

  const Options& options() const { return options_; }

 protected:
  void update(QuantizedParameter<T>& p, int64_t n) override {
    const double lr = this->lr();
    const T beta1 = T(options_.beta1), beta2 = T(options_.beta2);
    const T decay = T(options_.weight_decay);
    if (p.state.empty()) {
      p.state.push_back(Tensor<T>::zeros(p.latent.shape()));  // m
      p.state.push_back(Tensor<T>::zeros(p.latent.shape()));  // v
    }
    auto w = p.latent.array();
    auto m = p.state[0].array();
    auto v = p.state[1].array();
    typename Tensor<T>::Array g = p.grad.array();
    if (decay != 0) {
      if constexpr (Decoupled)
        w *= T(1 - lr * options_.weight_decay);
      else
        g += decay * w;
    }
    m = beta1 * m + (1 - beta1) * g;
    v = beta2 * v + (1 - beta2) * g.square();
    const double bias1 = 1 - std::pow(options_.beta1, double(n));
    const double bias2 = 1 - std::pow(options_.beta2, double(n));
    const T step_size = T(lr / bias1);
    const T bias2_sqrt = T(std::sqrt(bias2));
    w -= step_size * m / (v.sqrt() / bias2_sqrt + T(options_.eps));
  }

 private:
  Options options_;
};

}  // namespace detail

template <class Quantizer = quant::None, class T = float>
  requires WeightQuantizer<Quantizer, T>
class Adam : public detail::AdamRule<Quantizer, T, AdamOptions, false> {
  using Rule = detail::AdamRule<Quantizer, T, AdamOptions, false>;

 public:
  Adam(const typename Rule::NamedTensors& parameters, const AdamOptions& options = {},
       Quantizer policy = Quantizer{})
      : Rule(parameters, options, std::move(policy)) {}
  Adam(const nn::Module<T>& module, const AdamOptions& options = {},
       Quantizer policy = Quantizer{})
      : Rule(module.named_parameters(), options, std::move(policy)) {}
};

template <class Quantizer = quant::None, class T = float>
  requires WeightQuantizer<Quantizer, T>
class AdamW : public detail::AdamRule<Quantizer, T, AdamWOptions, true> {
  using Rule = detail::AdamRule<Quantizer, T, AdamWOptions, true>;

 public:
  AdamW(const typename Rule::NamedTensors& parameters, const AdamWOptions& options = {},
        Quantizer policy = Quantizer{})
      : Rule(parameters, options, std::move(policy)) {}
  AdamW(const nn::Module<T>& module, const AdamWOptions& options = {},
        Quantizer policy = Quantizer{})
      : Rule(module.named_parameters(), options, std::move(policy)) {}
};

}  // namespace trit::optim
