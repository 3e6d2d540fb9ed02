#pragma once
// nn::Sequential<T>: runs its children in order, each one's output the next one's input, as
// torch.nn.Sequential. Children pushed without a name are named by their position "0", "1",
// ... (PyTorch's naming), so state_dict keys read "0.weight", "1.running_mean", ...
//
// A BatchNorm2d directly followed by a ReLU or ReLU6 runs as one fused pass
// (BatchNorm2d::forward_fused): the same values, one pass over memory fewer each way. A
// Conv2d directly followed by a BatchNorm2d hands it the batch statistics' first pass
// (BatchNorm2d::forward_conv): again the same values, one pass fewer in training.
//
//   auto net = std::make_shared<nn::Sequential<>>(
//       std::make_shared<nn::Conv2d<>>(3, 16, 3), std::make_shared<nn::ReLU<>>());
#include <cstdint>
#include <memory>
#include <string>

#include "trit/nn/activation.hpp"
#include "trit/nn/batch_norm.hpp"
#include "trit/nn/conv2d.hpp"
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
    auto at = [&](size_t i) { return i < size_t(end) ? children[i].second.get() : nullptr; };
    for (size_t i = size_t(begin); i < size_t(end); ++i) {
      // [conv ->] bn [-> relu or relu6] as one call, the others one by one
      auto* conv = dynamic_cast<Conv2d<T>*>(at(i));
      auto* bn = dynamic_cast<BatchNorm2d<T>*>(at(conv ? i + 1 : i));
      if (!bn) {
        h = at(i)->forward(h);
        continue;
      }
      if (conv) ++i;  // i is the BatchNorm2d now
      BatchNormActivation activation = BatchNormActivation::none;
      if (dynamic_cast<ReLU<T>*>(at(i + 1))) activation = BatchNormActivation::relu, ++i;
      else if (dynamic_cast<ReLU6<T>*>(at(i + 1))) activation = BatchNormActivation::relu6, ++i;
      h = conv ? bn->forward_conv(*conv, h, activation) : bn->forward_fused(h, activation);
    }
    return h;
  }
  std::string describe() const override { return "Sequential"; }
};

}  // namespace trit::nn
