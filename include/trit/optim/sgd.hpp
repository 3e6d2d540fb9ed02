#pragma once
// optim::SGD<Q, T>: stochastic gradient descent with momentum, dampening, Nesterov and L2
// weight decay, exactly PyTorch's torch.optim.SGD rule, on the latent weights of policy Q.
//
//   optim::SGD<> sgd(model, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
//   loss.backward(); sgd.step(); sgd.zero_grad();
//
// Per parameter, with g the gradient and p the latent weight:
//   d = g + weight_decay * p
//   if momentum != 0:  b = d on the first step, else b = momentum * b + (1 - dampening) * d
//                      d = nesterov ? d + momentum * b : b
//   p -= lr * d
// State: p.state = {b} once momentum is on.
#include <cmath>
#include <cstdint>
#include <utility>

#include "trit/optim/optimizer.hpp"
#include "trit/quant/none.hpp"

namespace trit::optim {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;

  // Throws trit::Error naming the bad field: negative values, or Nesterov without momentum or
  // with dampening (as PyTorch refuses).
  void validate() const {
    check(lr >= 0 && std::isfinite(lr), "SGD", "lr must be >= 0, got ", lr);
    check(momentum >= 0, "SGD", "momentum must be >= 0, got ", momentum);
    check(weight_decay >= 0, "SGD", "weight_decay must be >= 0, got ", weight_decay);
    check(!nesterov || (momentum > 0 && dampening == 0), "SGD",
          "nesterov needs momentum > 0 and dampening 0, got momentum ", momentum,
          " and dampening ", dampening);
  }
};

template <class Quantizer = quant::None, class T = float>
  requires WeightQuantizer<Quantizer, T>
class SGD : public Optimizer<Quantizer, T> {
  using Base = Optimizer<Quantizer, T>;

 public:
  SGD(const typename Base::NamedTensors& parameters, const SGDOptions& options,
      Quantizer policy = Quantizer{})
      : Base(parameters, (options.validate(), options.lr), std::move(policy)),
        options_(options) {}
  SGD(const nn::Module<T>& module, const SGDOptions& options, Quantizer policy = Quantizer{})
      : SGD(module.named_parameters(), options, std::move(policy)) {}

  const SGDOptions& options() const { return options_; }

 protected:
  // One pass over the parameter (no temporaries): MobileNetV2's 2.2M parameters took 1.8 ms
  // a step as a chain of whole-array expressions, most of it moving their temporaries.
  void update(QuantizedParameter<T>& p, int64_t /*n*/) override {
    const T lr = T(this->lr()), momentum = T(options_.momentum);
    const T dampening = T(options_.dampening), decay = T(options_.weight_decay);
    const bool nesterov = options_.nesterov, first = momentum != 0 && p.state.empty();
    if (first) p.state.push_back(Tensor<T>::empty(p.latent.shape()));
    T* __restrict w = p.latent.data();
    const T* __restrict g = p.grad.data();
    T* __restrict b = momentum != 0 ? p.state[0].data() : nullptr;
    const int64_t n = p.latent.numel();
    for (int64_t i = 0; i < n; ++i) {
      T d = decay != 0 ? g[i] + decay * w[i] : g[i];
      if (b) {
        b[i] = first ? d : momentum * b[i] + (1 - dampening) * d;
        d = nesterov ? d + momentum * b[i] : b[i];
      }
      w[i] -= lr * d;
    }
  }

 private:
  SGDOptions options_;
};

}  // namespace trit::optim
