#pragma once
// Optimizer<Q, T>: what every optimizer (SGD, Adam, AdamW) shares — the parameter records, the
// step that calls the weight-quantizer policy Q around the algorithm's own update, zero_grad,
// the learning rate and the training progress the policy's schedules read.
//
// Contract (see trit/optim/quantizer.hpp for the policy side):
// - Built from a module's named_parameters() or any list of (name, tensor) pairs. For each
//   one the policy is asked `quantizes(info)` once (see ParameterInfo). A quantized parameter gets its own
//   full-precision `latent` clone; for the others `latent` and `weight` are the same tensor
//   (same storage), so no memory is spent.
// - step(), for each parameter whose weight has a gradient (others are skipped, as PyTorch
//   skips parameters with grad None):
//     p.grad = weight.grad();  [quantized] q.on_gradient(p, progress);
//     update(p, n)             the algorithm's rule on p.latent with p.grad and p.state;
//     [quantized] q.project(p, progress);
//   then progress().step++. No graph is recorded during the step.
// - The update never writes into p.grad, so weight.grad() reads the same after a step.
// - The training loop may set progress().fraction / .epoch; on_epoch(progress) stores it and
//   forwards it to the policy.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "trit/autograd/grad_mode.hpp"
#include "trit/core/error.hpp"
#include "trit/core/tensor.hpp"
#include "trit/nn/module.hpp"
#include "trit/optim/quantizer.hpp"

namespace trit::optim {

// The learning rate every optimizer holds, without its template arguments: what the LR
// schedulers (trit/optim/scheduler.hpp) read and write.
class LearningRate {
 public:
  virtual ~LearningRate() = default;
  double lr() const { return lr_; }
  void set_lr(double lr) {
    check(lr >= 0, "optimizer", "learning rate must be >= 0, got ", lr);
    lr_ = lr;
  }

 protected:
  explicit LearningRate(double lr) { set_lr(lr); }

 private:
  double lr_;
};

template <class Q, class T>
  requires WeightQuantizer<Q, T>
class Optimizer : public LearningRate {
 public:
  using NamedTensors = std::vector<std::pair<std::string, Tensor<T>>>;

  // One record per named tensor, in the given order; `policy` is moved in.
  Optimizer(const NamedTensors& parameters, double lr, Q policy)
      : LearningRate(lr), policy_(std::move(policy)) {
    params_.reserve(parameters.size());
    for (const auto& [name, tensor] : parameters)
      check(tensor.defined(), "optimizer", "parameter '", name, "' is an undefined tensor");
    for (const ParameterInfo<T>& info : describe_parameters(parameters)) {
      QuantizedParameter<T> p;
      p.name = info.name;
      p.weight = info.tensor;
      p.quantized = static_cast<bool>(policy_.quantizes(info));
      p.latent = p.quantized ? info.tensor.clone() : info.tensor;
      params_.push_back(std::move(p));
    }
    // The forward pass computes with projected weights from the very first step.
    NoGradGuard no_grad;
    for (auto& p : params_)
      if (p.quantized) policy_.project(p, progress_);
  }
  Optimizer(const nn::Module<T>& module, double lr, Q policy)
      : Optimizer(module.named_parameters(), lr, std::move(policy)) {}

  // One optimisation step over every parameter that has a gradient (see the contract above).
  void step() {
    NoGradGuard no_grad;
    for (size_t i = 0; i < params_.size(); ++i) {
      QuantizedParameter<T>& p = params_[i];
      Tensor<T> g = p.weight.grad();
      if (!g.defined()) continue;
      check(g.shape() == p.weight.shape(), "optimizer", "gradient of '", p.name, "' has shape ",
            to_string(g.shape()), " but the parameter has ", to_string(p.weight.shape()));
      p.grad = g;
      if (p.quantized) policy_.on_gradient(p, progress_);
      update(p, ++p.updates);
      if (p.quantized) policy_.project(p, progress_);
    }
    ++progress_.step;
  }

  // Drops every parameter's gradient (PyTorch's zero_grad(set_to_none=True)).
  void zero_grad() {
    for (auto& p : params_) p.weight.zero_grad();
  }

  // Epoch boundary: remembers `progress` and lets the policy run its schedules.
  void on_epoch(const TrainingProgress& progress) {
    progress_ = progress;
    policy_.on_epoch(progress_);
  }

  Q& policy() { return policy_; }
  const Q& policy() const { return policy_; }
  std::vector<QuantizedParameter<T>>& parameters() { return params_; }
  const std::vector<QuantizedParameter<T>>& parameters() const { return params_; }
  // Where training stands; the loop may set fraction and epoch, step() counts steps.
  TrainingProgress& progress() { return progress_; }
  const TrainingProgress& progress() const { return progress_; }

 protected:
  // The algorithm's rule: update p.latent in place from p.grad, keeping its state in p.state.
  // `n` counts this parameter's updates including this one (1 on the first), for bias
  // corrections.
  virtual void update(QuantizedParameter<T>& p, int64_t n) = 0;

 private:
  std::vector<QuantizedParameter<T>> params_;
  Q policy_;
  TrainingProgress progress_;
};

}  // namespace trit::optim
