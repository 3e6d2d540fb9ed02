#pragma once
// The weight-quantizer concept: the policy an optimizer takes as its template argument
// (optim::SGD<quant::PTQ>). It is how trit compresses a network while it trains.
//
// Ownership (see shared notes on the quantizers):
// - The module's parameter tensor (`weight`) always holds exactly what the forward pass uses:
//   ternary, power-of-two or full-precision values. Autograd therefore returns dL/d(weight).
// - For each parameter the policy quantizes, the optimizer keeps a full-precision `latent`
//   copy; momentum and Adam moments live on the latent. For other parameters `latent` and
//   `weight` are the same tensor.
// - Per-parameter state of the method (masks, scales, thresholds, mixtures) lives in the
//   policy, keyed by the parameter's dotted name.
//
// One optimizer step, for every parameter p:
//   1. q.on_gradient(p, progress)   p.grad holds dL/d(weight); the policy may rewrite it into
//                                   the gradient for the latent (straight-through estimator).
//   2. the optimizer's own update of p.latent with p.grad (SGD, Adam, ...), unchanged per method.
//   3. q.project(p, progress)       the policy writes p.weight from p.latent.
// At each epoch boundary the training loop calls optimizer.on_epoch(progress), which calls
// q.on_epoch(progress) (schedules: sparsity ramps, re-initialisation, mixture refits).
#include <concepts>
#include <cstdint>
#include <string>
#include <vector>

#include "trit/core/tensor.hpp"

namespace trit::optim {

// Where training stands, for schedules. fraction = done / total in [0, 1].
struct TrainingProgress {
  int64_t step = 0;   // optimizer steps taken before this one
  int64_t epoch = 0;  // epochs finished
  double fraction = 0.0;
};

// What a quantizer policy sees of one parameter. The optimizer owns these records.
template <class T>
struct QuantizedParameter {
  std::string name;                // dotted name, "layer1.0.conv1.weight"
  Tensor<T> weight;                // the module's tensor: what forward computes with
  Tensor<T> latent;                // full-precision weights the optimizer updates
  Tensor<T> grad;                  // gradient the update applies to `latent`
  bool quantized = false;          // false: latent and weight are one tensor
  std::vector<Tensor<T>> state;    // optimizer state on the latent (momentum; Adam's m, v)
};

template <class Q, class T>
concept WeightQuantizer = requires(Q q, const std::string& name, const Tensor<T>& tensor,
                                   QuantizedParameter<T>& p, const TrainingProgress& progress) {
  // Asked once per parameter when the optimizer is built: quantize this one?
  { q.quantizes(name, tensor) } -> std::convertible_to<bool>;
  q.on_gradient(p, progress);  // before the update (quantized parameters only)
  q.project(p, progress);      // after the update (quantized parameters only)
  q.on_epoch(progress);
};

}  // namespace trit::optim
