#pragma once
// nn::Sequential<T>: runs its children in order, each one's output the next one's input, as
// torch.nn.Sequential. Children pushed without a name are named by their position "0", "1",
// ... (PyTorch's naming), so state_dict keys read "0.weight", "1.running_mean", ...
//
// A BatchNorm2d directly followed by a ReLU or ReLU6 runs as one fused pass
// (BatchNorm2d::forward_fused): the same values, one pass over memory fewer each way.
//
//   auto net = std::make_shared<nn::Sequential<>>(
//       std::make_shared<nn::Conv2d<>>(3, 16, 3), std::make_shared<nn::ReLU<>>());
#include <cstdint>
#include <memory>
#include <string>

#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/module.hpp"

namespace trit::nn {

template <class T = float>
class Sequential : public Module<T> {
 public:
  Sequential() = default;
  template <class... Modules>
  explicit Sequential(std::shared_ptr<Modules>... modules) {
    (push_back(std::move(modules)), ...);
  }

  // Appends `module` named by its position. Returns it, typed, for further use.
  template <class M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    return push_back(std::to_string(size()), std::move(module));
  }
  template <class M>
  std::shared_ptr<M> push_back(const std::string& name, std::shared_ptr<M> module) {
    check(module != nullptr, "Sequential", "push_back of a null module '", name, "'");
    return this->register_module(name, std::move(module));
  }

  int64_t size() const { return static_cast<int64_t>(this->children().size()); }
  // The i-th child (0-based).
  Module<T>& operator[](int64_t i) const {
    check(i >= 0 && i < size(), "Sequential", "index ", i, " out of range for ", size(),
          " modules");
    return *this->children()[i].second;
  }

  Tensor<T> forward(const Tensor<T>& x) override { return forward_range(x, 0, size()); }

  // Runs children [begin, end) only (a block that fuses its last child with what follows).
  Tensor<T> forward_range(const Tensor<T>& x, int64_t begin, int64_t end) {
    check(0 <= begin && begin <= end && end <= size(), "Sequential", "range [", begin, ", ", end,
          ") out of ", size(), " modules");
    const auto& children = this->children();
    Tensor<T> h = x;
    for (size_t i = size_t(begin); i < size_t(end); ++i) {
      Module<T>* child = children[i].second.get();
      Module<T>* next = i + 1 < size_t(end) ? children[i + 1].second.get() : nullptr;
      auto* bn = dynamic_cast<BatchNorm2d<T>*>(child);
      if (bn && next && dynamic_cast<ReLU<T>*>(next)) {
        h = bn->forward_fused(h, BatchNormActivation::relu), ++i;
      } else if (bn && next && dynamic_cast<ReLU6<T>*>(next)) {
        h = bn->forward_fused(h, BatchNormActivation::relu6), ++i;
      } else {
        h = child->forward(h);
      }
    }
    return h;
  }
  std::string describe() const override { return "Sequential"; }
};

}  // namespace trit::nn
