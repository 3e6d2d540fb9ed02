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
#include <utility>
#include <vector>

#include "trit/core/tensor.hpp"

namespace trit::optim {

// Where training stands, for schedules. fraction = done / total in [0, 1]. The training loop
// sets epoch, fraction and steps_per_epoch; the optimizer counts steps.
struct TrainingProgress {
  int64_t step = 0;             // optimizer steps taken before this one
  int64_t epoch = 0;            // epochs finished
  double fraction = 0.0;        // of the whole run
  int64_t steps_per_epoch = 0;  // 0 when unknown

  // Epochs done as a real number (2.5 = half-way through the third epoch), for ramps that
  // should move every step rather than jump at epoch boundaries.
  double epochs() const {
    return steps_per_epoch > 0 ? double(step) / double(steps_per_epoch) : double(epoch);
  }
};

// What a policy is told about a parameter when the optimizer is built, to decide whether to
// quantize it. Position facts are computed over the whole parameter list, so selection rules
// ("every conv and linear weight except the first conv") need no guessing from names.
template <class T>
struct ParameterInfo {
  std::string name;         // dotted name, "layer1.0.conv1.weight"
  Tensor<T> tensor;         // the parameter (its shape tells conv [O,C,K,K] from linear [O,I])
  int64_t index = 0;        // position in the optimizer's list
  bool is_conv_weight = false;    // rank 4
  bool is_linear_weight = false;  // rank 2
  bool is_first_conv = false;     // the first rank-4 parameter (the stem)
  bool is_last_linear = false;    // the last rank-2 parameter (the classifier)
};

// ParameterInfo for each (name, tensor), in order.
template <class T>
std::vector<ParameterInfo<T>> describe_parameters(
    const std::vector<std::pair<std::string, Tensor<T>>>& parameters) {
  std::vector<ParameterInfo<T>> infos;
  int64_t first_conv = -1, last_linear = -1;
  for (size_t i = 0; i < parameters.size(); ++i) {
    ParameterInfo<T> info;
    info.name = parameters[i].first;
    info.tensor = parameters[i].second;
    info.index = static_cast<int64_t>(i);
    info.is_conv_weight = info.tensor.dim() == 4;
    info.is_linear_weight = info.tensor.dim() == 2;
    if (info.is_conv_weight && first_conv < 0) first_conv = info.index;
    if (info.is_linear_weight) last_linear = info.index;
    infos.push_back(std::move(info));
  }
  if (first_conv >= 0) infos[first_conv].is_first_conv = true;
  if (last_linear >= 0) infos[last_linear].is_last_linear = true;
  return infos;
}

// What a quantizer policy sees of one parameter. The optimizer owns these records.
template <class T>
struct QuantizedParameter {
  std::string name;                // dotted name, "layer1.0.conv1.weight"
  Tensor<T> weight;                // the module's tensor: what forward computes with
  Tensor<T> latent;                // full-precision weights the optimizer updates
  Tensor<T> grad;                  // gradient the update applies to `latent`
  bool quantized = false;          // false: latent and weight are one tensor
  std::vector<Tensor<T>> state;    // optimizer state on the latent (momentum; Adam's m, v)
  int64_t updates = 0;             // updates applied so far (Adam's bias correction)
};

template <class Q, class T>
concept WeightQuantizer = requires(Q q, const ParameterInfo<T>& info, QuantizedParameter<T>& p,
                                   const TrainingProgress& progress) {
  // Asked once per parameter when the optimizer is built: quantize this one? A policy that
  // says yes keeps its per-parameter state from here on (keyed by info.name).
  { q.quantizes(info) } -> std::convertible_to<bool>;
  q.on_gradient(p, progress);  // before the update (quantized parameters only)
  q.project(p, progress);      // after the update (quantized parameters only)
  q.on_epoch(progress);
};

}  // namespace trit::optim
