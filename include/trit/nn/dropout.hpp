#pragma once
// nn::Dropout<T>: in training, zeroes each element with probability p and scales the rest by
// 1 / (1 - p); in eval, the identity. As torch.nn.Dropout. Draws from the Generator given at
// construction (global_generator() by default), which must outlive the module.
#include <sstream>
#include <string>

#include "trit/core/rng.hpp"
#include "trit/nn/module.hpp"
#include "trit/ops/activation.hpp"

namespace trit::nn {

template <class T = float>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5, Generator& gen = global_generator()) : p_(p), gen_(&gen) {
    check(p >= 0 && p < 1, "Dropout", "p must be in [0, 1), got ", p);
  }
  Tensor<T> forward(const Tensor<T>& x) override {
    return trit::dropout(x, p_, this->is_training(), *gen_);
  }
  std::string describe() const override {
    std::ostringstream s;
    s << "Dropout(p=" << p_ << ")";
    return s.str();
  }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace trit::nn
