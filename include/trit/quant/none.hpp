#pragma once
// quant::None: the identity policy, the default of every optimizer. It quantizes nothing, so
// optim::SGD<> is plain SGD and keeps no latent copies.
#include <string>

#include "trit/optim/quantizer.hpp"

namespace trit::quant {

struct None {
  template <class T>
  bool quantizes(const optim::ParameterInfo<T>&) const { return false; }
  template <class T>
  void on_gradient(optim::QuantizedParameter<T>&, const optim::TrainingProgress&) {}
  template <class T>
  void project(optim::QuantizedParameter<T>&, const optim::TrainingProgress&) {}
  void on_epoch(const optim::TrainingProgress&) {}
};

static_assert(optim::WeightQuantizer<None, float> && optim::WeightQuantizer<None, double>);

}  // namespace trit::quant
